"""PyTorch-only parts of crossent (``import crossent.torch as ct``).

- :func:`linear_cross_entropy` / :class:`LinearCrossEntropyLoss`: the loss of a linear
  output layer over a large vocabulary, chunked so the ``N × V`` logits never exist.
"""

from ._linear import LinearCrossEntropyLoss, LinearCrossEntropyOutput, linear_cross_entropy

__all__ = [
    "linear_cross_entropy",
    "LinearCrossEntropyLoss",
    "LinearCrossEntropyOutput",
]
