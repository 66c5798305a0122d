"""JAX-only parts of crossent (``import crossent.jax as cj``; not imported by ``import crossent``).

- :func:`linear_cross_entropy`: the loss of a linear output layer over a large vocabulary,
  a ``jax.custom_vjp`` over token chunks, so the ``N × V`` logits never exist.
- :func:`linear_distillation_loss`: KL / reverse KL / JSD / TVD distillation from teacher
  logits, a teacher linear layer or a top-k sparse teacher, over the same token chunks.
- :func:`count_targets`: its 'mean' divisor, for ``normalizer=`` across micro-batches.
"""

from ._distillation import linear_distillation_loss
from ._linear import LinearCrossEntropyOutput, count_targets, linear_cross_entropy

__all__ = [
    "linear_cross_entropy",
    "linear_distillation_loss",
    "count_targets",
    "LinearCrossEntropyOutput",
]
