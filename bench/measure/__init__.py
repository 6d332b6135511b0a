"""How the suite measures: clocks and statistics, written once for every backend.

``timing`` (synchronised clock, epoch summaries), ``steady`` (the step clock inside the
training call), ``stats`` (intervals), ``inputpath`` (the input path's share of
a step), ``mfu`` and ``perf`` (FLOPs, peak FLOP/s, MFU and the per-row performance
columns). Modules here import ``bench.core``, each other and the backends' description
registry (``backends``, framework-free); never a framework or a backend module.
"""
