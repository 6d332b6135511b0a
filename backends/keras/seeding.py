"""Keras's global seed, without importing TensorFlow into an engine that does not run on it.

``keras.utils.set_random_seed`` seeds Python's and NumPy's generators and Keras's own, and also TensorFlow's
wherever TensorFlow is importable ("many workflows leverage tf.data pipelines"), importing it to do so. In a
Keras/JAX or Keras/torch row that was TensorFlow's whole import inside the row's own process, after its warm
server had forked it: 1,700 modules, about 6 s of every such row's wall time on the 2-core AMD VM (2026-12-06),
and TensorFlow's memory in the row's peak host RSS, which a Keras/JAX user without tf.data never pays. Those
engines feed Keras from NumPy (``backends/keras/input.py``): no TensorFlow generator is ever read in them, so
leaving it unseeded changes no draw.
"""

from __future__ import annotations

import keras


class _Absent:
    """What Keras's lazy ``tensorflow`` module answers when TensorFlow is not installed."""

    available = False


def set_random_seed(seed: int, tensorflow: bool) -> None:
    """``keras.utils.set_random_seed(seed)``; ``tensorflow``: TensorFlow's generator too (the TF engine's)."""
    from keras.src.utils import rng_utils

    lazy = getattr(rng_utils, "tf", None)  # Keras 3's LazyModule("tensorflow"), read at the call
    if tensorflow or lazy is None:
        keras.utils.set_random_seed(seed)
        return
    rng_utils.tf = _Absent()
    try:
        keras.utils.set_random_seed(seed)
    finally:
        rng_utils.tf = lazy
