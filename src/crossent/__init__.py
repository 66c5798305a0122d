"""crossent: the cross-entropy family of losses, exact on any array library.

The public API, listed once::

    import crossent as ce
    ce.softmax, ce.log_softmax, ce.sigmoid, ce.log_sigmoid, ce.logit, ce.softmax_inverse
    ce.nll_loss, ce.cross_entropy, ce.binary_cross_entropy,
    ce.binary_cross_entropy_with_logits, ce.sigmoid_focal_loss, ce.softmax_focal_loss
    ce.value_and_grad
    ce.information   # probability space: self_information, entropy, cross_entropy, ...
    ce.grad          # analytic gradients of every loss
    ce.metrics       # binary_accuracy, categorical_accuracy, sparse_categorical_accuracy
    ce.explain       # step-by-step traces, the seeds' worked examples, renderers
    ce.advise        # warnings about the classic misuses (double softmax, multi-hot CE, ...)
    ce.compare       # every framework's value for one input, and why they differ
    crossent.compat  # torch, keras, tf, optax, sklearn: each framework's own numbers
    crossent.evaluate  # log loss at any scale: mergeable state, files, Dask (import it)

Inputs may be NumPy, PyTorch, JAX or CuPy arrays (or lists); results come back
in the same library. Class axis -1 by default; PyTorch's layout with ``axis=1``
or :mod:`crossent.compat.torch`.
"""

from . import explain, grad, information, metrics
from .activations import log_sigmoid, log_softmax, logit, sigmoid, softmax, softmax_inverse
from .advise import advise
from .compare import compare
from .grad import value_and_grad
from .losses import (
    binary_cross_entropy,
    binary_cross_entropy_with_logits,
    cross_entropy,
    nll_loss,
    sigmoid_focal_loss,
    softmax_focal_loss,
)

__version__ = "0.1.0"

__all__ = [
    "softmax",
    "log_softmax",
    "sigmoid",
    "log_sigmoid",
    "logit",
    "softmax_inverse",
    "nll_loss",
    "cross_entropy",
    "binary_cross_entropy",
    "binary_cross_entropy_with_logits",
    "sigmoid_focal_loss",
    "softmax_focal_loss",
    "value_and_grad",
    "information",
    "grad",
    "metrics",
    "explain",
    "advise",
    "compare",
]
