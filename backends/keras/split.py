"""Engine-free graph helpers for the gradient computations: a model cut at a layer, the class score.

Every engine computes Grad-CAM's gradient the same way: ``act = trunk(x)``, ``logits = head(act)``,
d(score)/d(act); only how the gradient is taken (GradientTape, jax.grad, torch.autograd) differs.
"""

from __future__ import annotations

from typing import Any

import keras


def split_at(model: keras.Model, layer: str) -> tuple[keras.Model, keras.Model]:
    """(trunk, head): inputs -> ``layer``'s post-activation output (Keras fuses it into Conv2D) -> logits.

    The catalog's Grad-CAM layers are cut points: everything after them reads only their output.
    """
    names = [lay.name for lay in model.layers]
    if layer not in names:
        raise KeyError(f"model has no layer {layer!r} (layers: {', '.join(names)})")
    target = model.get_layer(layer)
    # A nested model's ``.output`` is its own inner graph's; its call inside ``model`` is an inbound node.
    for tensor in [target.output] + [node.output_tensors[0] for node in target._inbound_nodes]:
        try:
            return keras.Model(model.inputs, tensor), keras.Model(tensor, model.outputs)
        except ValueError:
            continue
    raise ValueError(f"layer {layer!r} is not a cut point between the model's inputs and its logits")


def class_score(logits: Any, columns: Any, signs: Any) -> Any:
    """Sum over the batch of sign * logit[column]: each image's score depends on that image alone.

    In float32 whatever the model computes in: under a mixed policy (``precision = "mixed_bf16"``) the
    head's logits are bfloat16, and the signs float32."""
    logits = keras.ops.cast(logits, "float32")
    picked = keras.ops.take_along_axis(logits, keras.ops.expand_dims(columns, 1), axis=1)[:, 0]
    return keras.ops.sum(picked * signs)


def tap(tap_model: keras.Model, x: Any, batch_size: int) -> list[Any]:
    """Run a multi-output sub-model eagerly in inference mode (``predict`` would trace a new function each time)."""
    import numpy as np

    parts = [tap_model([x[i : i + batch_size]], training=False) for i in range(0, len(x), batch_size)]
    parts = [p if isinstance(p, (list, tuple)) else [p] for p in parts]  # one output comes back unwrapped
    n = len(tap_model.outputs)
    return [np.concatenate([keras.ops.convert_to_numpy(p[j]) for p in parts]).astype(np.float32) for j in range(n)]
