"""The Keras builders by catalog id: ``models`` registers into it, ``backend`` reads it (no cycle between them)."""

from __future__ import annotations

from bench.core.catalog import model_registry

MODELS, register_model = model_registry()  # builders by catalog id, as timm's @register_model
