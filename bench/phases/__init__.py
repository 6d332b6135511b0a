"""What runs after training, on the trained model: one module per phase.

Each phase module exports ``PHASE``, an object satisfying ``bench.core.phase.Phase``: its
``run`` (in the worker, on a ``Trained``) and the record ``columns`` it adds. ``PHASES`` lists
them in the order the worker runs them. How the report shows a phase is registered in
``bench.report.sections``, downstream. Phases import ``bench.core``, ``bench.measure`` and
``datasets``; never ``bench.report``, a framework or a backend module.
"""

from __future__ import annotations

from bench.core.phase import Phase
from bench.phases import decouple, explain, transfer

PHASES: tuple[Phase, ...] = (transfer.PHASE, explain.PHASE, decouple.PHASE)
