"""What runs after training, on the trained model: one module per phase.

Each phase module exports ``PHASE``, an object satisfying ``bench.core.phase.Phase``: its
``run`` (in the worker, on a ``Trained``), the record ``columns`` it adds, and what the report
calls for its part (``summary_section``, ``task_lines``, ``plot_jobs``; the drawing itself
lives in ``bench.report``). ``PHASES`` lists them in the order the worker runs them and the
report shows them. Phases import ``bench.core``, ``bench.measure``, ``datasets`` and their
own plot modules in ``bench.report``; never a framework or a backend module.
"""

from __future__ import annotations

from bench.core.phase import Phase
from bench.phases import decouple, explain, transfer

PHASES: tuple[Phase, ...] = (transfer.PHASE, explain.PHASE, decouple.PHASE)
