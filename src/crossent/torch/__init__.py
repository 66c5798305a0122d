"""PyTorch-only parts of crossent: large-vocabulary and vocabulary-parallel losses.

::

    import crossent.torch as ct
    ct.vocab_parallel_cross_entropy, ct.vocab_parallel_linear_cross_entropy
"""

from ._vocab_parallel import vocab_parallel_cross_entropy, vocab_parallel_linear_cross_entropy

__all__ = [
    "vocab_parallel_cross_entropy",
    "vocab_parallel_linear_cross_entropy",
]
