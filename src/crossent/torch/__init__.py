"""PyTorch-only parts of crossent (``import crossent.torch as ct``).

- :func:`cross_entropy` / :class:`CrossEntropyLoss`: ``F.cross_entropy`` on CPU tensors
  through the fused kernel (loss and gradient in one sweep), PyTorch's numbers.
- :func:`linear_cross_entropy` / :class:`LinearCrossEntropyLoss`: the loss of a linear
  output layer over a large vocabulary, chunked so the ``N × V`` logits never exist.
- :func:`linear_distillation_loss` / :class:`LinearDistillationLoss`: KL, JSD or TVD from a
  teacher (logits, its own linear layer, or top-k), fused with the student's linear layer.
- :func:`vocab_parallel_cross_entropy`, :func:`vocab_parallel_linear_cross_entropy`:
  a vocabulary sharded across a torch.distributed process group.
"""

from ._cross_entropy import CrossEntropyLoss, cross_entropy
from ._distill import LinearDistillationLoss, linear_distillation_loss
from ._linear import (
    LinearCrossEntropyLoss,
    LinearCrossEntropyOutput,
    count_targets,
    linear_cross_entropy,
)
from ._vocab_parallel import vocab_parallel_cross_entropy, vocab_parallel_linear_cross_entropy

__all__ = [
    "cross_entropy",
    "CrossEntropyLoss",
    "linear_cross_entropy",
    "LinearCrossEntropyLoss",
    "LinearCrossEntropyOutput",
    "count_targets",
    "linear_distillation_loss",
    "LinearDistillationLoss",
    "vocab_parallel_cross_entropy",
    "vocab_parallel_linear_cross_entropy",
]
