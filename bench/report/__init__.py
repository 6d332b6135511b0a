"""From a run's files to what a reader sees: results.csv, summary.md, plots and compare.

``summary`` writes the report (tables of every backend side by side, then each phase's
section through ``bench.phases.PHASES``); ``models``, ``zoo`` (the zoo sweep), ``transfer``, ``explain_plots``,
``decouple_plots`` draw and describe their parts; ``plotting`` renders plot jobs;
``compare`` sets two runs against each other; ``page`` writes the run's index.html
with ``html``, the shell it shares with the history dashboard (``bench.history``). Modules here read run files through
``bench.core`` and may import ``bench.measure``; they import no framework (matplotlib only,
inside the drawing functions) and no backend module.
"""
