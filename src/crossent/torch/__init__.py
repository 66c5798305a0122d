"""PyTorch-only parts of crossent (``import crossent.torch as ct``).

- :func:`cross_entropy` / :class:`CrossEntropyLoss`: ``F.cross_entropy`` on CPU tensors
  through the fused kernel (loss and gradient in one sweep), PyTorch's numbers.
"""

from ._cross_entropy import CrossEntropyLoss, cross_entropy

__all__ = [
    "cross_entropy",
    "CrossEntropyLoss",
]
