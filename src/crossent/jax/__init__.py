"""JAX-only parts of crossent (``import crossent.jax as cj``; not imported by ``import crossent``).

- :func:`linear_cross_entropy`: the loss of a linear output layer over a large vocabulary,
  a ``jax.custom_vjp`` over token chunks, so the ``N × V`` logits never exist.
- :func:`count_targets`: its 'mean' divisor, for ``normalizer=`` across micro-batches.
"""

from ._linear import LinearCrossEntropyOutput, count_targets, linear_cross_entropy

__all__ = ["linear_cross_entropy", "count_targets", "LinearCrossEntropyOutput"]
