"""bench: one task spec, run by every registered backend, measured and reported once.

Sub-packages, in the direction imports may go (tests/test_architecture.py checks it):

- ``bench.core``: the contract (spec, catalog, backend roles, phase contract, records, paths);
  imports nothing else of the project.
- ``bench.measure``: clocks, statistics, MFU and the performance columns.
- ``bench.phases``: transfer, explain, decouple: what runs on the trained model.
- ``bench.report``: results.csv, summary.md, plots, compare.
- ``bench.history``: the store of every run, change points and regressions over time, the dashboard;
  imports ``bench.core`` and ``bench.report`` (the page shell), never a framework.
- ``bench.run``: command line, runner, worker servers, worker.

``backends/`` holds one folder per backend and the one registry (``backends/__init__.py``);
``datasets/`` loads data. Module map from the flat layout (old -> new; also docs/module-map.txt):

bench.spec -> bench.core.spec; bench.catalog -> bench.core.catalog; bench.preprocess -> bench.core.preprocess;
bench.runpaths -> bench.core.runpaths; bench.record -> bench.core.record; bench.results -> bench.core.results;
bench.metrics -> bench.core.metrics; bench.progress -> bench.core.progress; backends.base -> bench.core.backend;
bench.cli, runner, forkserver, worker, data_cli, environment, rssprobe, gpucheck -> bench.run.<same>;
bench.timing, steady, stats, mfu, perf, inputpath -> bench.measure.<same>;
bench.transfer, explain, decouple -> bench.phases.<same>;
bench.report -> bench.report.summary; bench.report_models -> bench.report.models;
bench.report_transfer -> bench.report.transfer;
bench.decouple_plots, explain_plots, plotting, compare -> bench.report.<same>;
bench.convert -> backends.convert; backends.torch_<x> -> backends.torch.<x>; new: bench.core.phase.
Names that moved: bench.worker.Trained -> bench.core.phase.Trained; bench.explain.minmax ->
bench.core.preprocess.minmax; bench.worker.KNOWN_DIFFERENCES, bench.perf.FLOPS_SOURCES and the backend
branches of bench.perf.knob_columns -> each backend's BackendInfo (backends.describe(name)).
bench.run.runner's options and plan, resume, task data and run-folder names -> bench.run.plan, resume,
task_data, runfolder (each name in docs/module-map.txt).
"""
