"""The contract everything else depends on, and that depends on nothing of the project.

What a task is (``spec``, ``catalog`` with ``architecture``: what the suite knows of a model;
``layers``: small CNNs written once as a list of layers; ``zoo``: the ImageNet architectures of
both ecosystems), what a backend must do (``backend``: the roles as
Protocols, and ``BackendInfo``, a backend's framework-free description), what a phase is
and what it works on (``phase``: the Phase protocol, the ``Trained`` record, and the ``SoFar`` a worker
writes as each stage of a row starts), the pixel
map both backends apply (``preprocess``), the record's columns (``record``), the one
implementation of every metric (``metrics``: the worker and the phases both score with it), the one
description of each results figure the reports show or judge (``metric_table``),
the run files (``results``: records.jsonl written by ``bench.run``, read by ``bench.report``)
and every path inside a run (``runpaths``). Modules here import only each other, the
standard library, numpy and pandas (the results table): never a
deep-learning framework, ``backends``, ``datasets`` or another part of ``bench``
(tests/test_architecture.py checks it).
"""
