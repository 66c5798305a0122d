"""Every computation traced step by step, the seeds' worked examples, four renderers.

A :class:`Trace` is a list of :class:`Step` (name, formula in LaTeX and plain text,
values, meaning), produced by running crossent's own functions on the input::

    from crossent import explain
    trace = explain.cross_entropy([[1.4, 3.2, 5.0]], [2])   # same arguments as ce.cross_entropy
    print(explain.to_text(trace))                          # also to_json, to_markdown, to_html
    print(explain.to_text(explain.translate(trace, "zh"))) # in Simplified Chinese
    explain.examples.get("seed000-cross-entropy")          # the seeds' worked examples

One trace function per loss (same name and arguments as the loss), plus
``cross_entropy_grad`` (seed 001's softmax − one-hot), ``entropy``,
``kl_divergence`` and ``softmax_inverse``. :func:`explain` picks one by name.
"""

from __future__ import annotations

from typing import Any

from . import examples
from ._i18n import LANGS, translate
from ._report import list_examples, load_array, report
from ._trace import Check, Step, Trace
from ._traces import (
    binary_cross_entropy,
    binary_cross_entropy_with_logits,
    cross_entropy,
    cross_entropy_grad,
    entropy,
    kl_divergence,
    nll_loss,
    sigmoid_focal_loss,
    softmax_focal_loss,
    softmax_inverse,
)
from .render import FORMATS, render, to_html, to_json, to_markdown, to_text

__all__ = [
    "Trace",
    "Step",
    "Check",
    "cross_entropy",
    "cross_entropy_grad",
    "nll_loss",
    "binary_cross_entropy",
    "binary_cross_entropy_with_logits",
    "sigmoid_focal_loss",
    "softmax_focal_loss",
    "entropy",
    "kl_divergence",
    "softmax_inverse",
    "explain",
    "TRACERS",
    "examples",
    "render",
    "to_text",
    "to_json",
    "to_markdown",
    "to_html",
    "FORMATS",
    "report",
    "load_array",
    "list_examples",
    "resolve",
    "translate",
    "LANGS",
]

# name -> (trace function, names of its array arguments)
TRACERS: dict[str, tuple[Any, tuple[str, ...]]] = {
    "cross_entropy": (cross_entropy, ("logits", "target")),
    "cross_entropy_grad": (cross_entropy_grad, ("logits", "target")),
    "nll_loss": (nll_loss, ("log_probs", "target")),
    "binary_cross_entropy": (binary_cross_entropy, ("probs", "target")),
    "binary_cross_entropy_with_logits": (binary_cross_entropy_with_logits, ("logits", "target")),
    "sigmoid_focal_loss": (sigmoid_focal_loss, ("logits", "target")),
    "softmax_focal_loss": (softmax_focal_loss, ("logits", "target")),
    "entropy": (entropy, ("p",)),
    "kl_divergence": (kl_divergence, ("p", "q")),
    "softmax_inverse": (softmax_inverse, ("p",)),
}

_ALIASES = {
    "ce": "cross_entropy", "nll": "nll_loss", "bce": "binary_cross_entropy",
    "bce_with_logits": "binary_cross_entropy_with_logits", "bce_logits":
    "binary_cross_entropy_with_logits", "grad": "cross_entropy_grad", "gradient":
    "cross_entropy_grad", "kl": "kl_divergence", "kl_div": "kl_divergence", "reverse_softmax":
    "softmax_inverse", "focal": "sigmoid_focal_loss",
}


def resolve(name: str) -> str:
    """The canonical trace name for ``name`` (hyphens or underscores; short aliases).

    >>> resolve("bce-with-logits")
    'binary_cross_entropy_with_logits'
    """
    key = name.strip().lower().replace("-", "_")
    key = _ALIASES.get(key, key)
    if key not in TRACERS:
        raise ValueError(
            f"unknown computation {name!r}; expected one of {', '.join(TRACERS)} "
            f"(or an alias: {', '.join(_ALIASES)})"
        )
    return key


def explain(name: str, *arrays: Any, **options: Any) -> Trace:
    """Trace the computation ``name`` on ``arrays`` with ``options`` (the function's own).

    >>> from crossent.explain import explain
    >>> round(float(explain("cross-entropy", [[1.4, 3.2, 5.0]], [2]).value), 4)
    0.1762
    """
    function, _ = TRACERS[resolve(name)]
    return function(*arrays, **options)
