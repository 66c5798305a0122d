"""crossent: the cross-entropy family of losses, exact on any array library.

The public API, listed once::

    import crossent as ce
    ce.softmax, ce.log_softmax, ce.sigmoid, ce.log_sigmoid, ce.logit, ce.softmax_inverse
    ce.nll_loss, ce.cross_entropy, ce.binary_cross_entropy,
    ce.binary_cross_entropy_with_logits, ce.sigmoid_focal_loss, ce.softmax_focal_loss
    ce.kl_divergence_with_logits, ce.jensen_shannon_divergence, ce.total_variation_distance
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

import importlib
import sys
import types
from typing import TYPE_CHECKING, Any

from . import grad, information, metrics
from .activations import log_sigmoid, log_softmax, logit, sigmoid, softmax, softmax_inverse
from .divergences import (
    jensen_shannon_divergence,
    kl_divergence_with_logits,
    total_variation_distance,
)
from .grad import value_and_grad
from .losses import (
    binary_cross_entropy,
    binary_cross_entropy_with_logits,
    cross_entropy,
    nll_loss,
    sigmoid_focal_loss,
    softmax_focal_loss,
)

if TYPE_CHECKING:
    from . import compat as compat
    from . import experiments as experiments
    from . import explain
    from .advise import advise
    from .compare import compare

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
    "kl_divergence_with_logits",
    "jensen_shannon_divergence",
    "total_variation_distance",
    "value_and_grad",
    "information",
    "grad",
    "metrics",
    "explain",
    "advise",
    "compare",
]

# Loaded on first use, so that `import crossent` stays light: name -> (module, attribute or
# None for the module itself).
_LAZY: dict[str, tuple[str, str | None]] = {
    "explain": (".explain", None),
    "compat": (".compat", None),
    "experiments": (".experiments", None),
    "advise": (".advise", "advise"),
    "compare": (".compare", "compare"),
}


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'crossent' has no attribute {name!r}")
    module_name, attribute = _LAZY[name]
    module = importlib.import_module(module_name, __name__)
    value = module if attribute is None else getattr(module, attribute)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


class _Package(types.ModuleType):
    """``crossent`` itself: ``crossent.advise`` and ``crossent.compare`` are functions named like
    the modules that define them, and stay functions when those modules are first imported
    (the import system would bind the module to the package's attribute)."""

    def __setattr__(self, name: str, value: object) -> None:
        lazy = _LAZY.get(name)
        if lazy is not None and lazy[1] is not None and isinstance(value, types.ModuleType):
            value = getattr(value, lazy[1])
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
