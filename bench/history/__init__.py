"""A history of every run: one store across runs, commits, library versions and machines.

``metrics`` (which record columns are followed, which way is better, how a figure is normalised
by the machine's calibration), ``rows`` (a run folder as long rows: one per run, task, backend,
configuration and metric), ``store`` (the rows on disk under ``results/history/``: one Parquet file
per run, queried with DuckDB), ``annotations`` (notes that reset a series' baseline), ``changes``
(step detection, drift and the newest-point test on one series, numpy only), ``points`` (a series'
rows as column arrays, sliced from one take of the store's), ``check`` (every series of the store
through ``changes``, with what changed at each step) and ``dashboard``
(``results/history/index.html``). Modules here import ``bench.core`` (run files are read only
through ``bench.core.results`` and ``bench.core.runfiles``), ``bench.report`` (the page shell the
run page uses too) and each other; never a framework, a backend or ``bench.run``
(tests/test_architecture.py checks it).
"""
