"""From a run's files to what a reader sees: results.csv, summary.md, plots and compare.

``summary`` orchestrates the report: ``tables`` (every backend side by side), ``text`` (summary.md's
prose), ``figures`` (curves, overview), then the special sections registered in ``sections``
(``models``, each phase's ``transfer``, ``explain_plots``, ``decouple_plots``, ``zoo``, ``scaling``,
``tuning``, ``accuracy``), each its text and plot jobs; ``plotting`` renders plot jobs;
``compare`` sets two runs against each other; ``page`` writes the run's index.html with ``html``,
the shell it shares with the history dashboard (``bench.history``). Modules here read run files
through ``bench.core`` and may import ``bench.measure``, never ``bench.phases`` (the report is
downstream of it); they import no framework (matplotlib only, inside the drawing functions) and no
backend module.
"""
