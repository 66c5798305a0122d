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
``kl_divergence`` and ``softmax_inverse``, and the divergences of distillation
(``kl_divergence_with_logits``, which shows H(p, q) = H(p) + KL(p ‖ q),
``jensen_shannon_divergence``, ``total_variation_distance``). :func:`explain` picks one by name.
"""

from __future__ import annotations

from . import examples
from ._i18n import LANGS, translate
from ._names import TRACERS, explain, resolve
from ._report import list_examples, load_array, report
from ._trace import Check, Step, Trace
from ._traces import (
    binary_cross_entropy,
    binary_cross_entropy_with_logits,
    cross_entropy,
    cross_entropy_grad,
    entropy,
    jensen_shannon_divergence,
    kl_divergence,
    kl_divergence_with_logits,
    nll_loss,
    sigmoid_focal_loss,
    softmax_focal_loss,
    softmax_inverse,
    total_variation_distance,
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
    "kl_divergence_with_logits",
    "jensen_shannon_divergence",
    "total_variation_distance",
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
