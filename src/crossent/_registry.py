"""The losses and computations of crossent by name: one table, read by every adapter.

Each :class:`Entry` names a computation once: its canonical name, its aliases
(short names; the command line's hyphenated spellings are accepted for every
name), the public function, the private implementation that returns
``(loss, grad)`` in one pass (losses only), the names of its array arguments in
order, its family, and a one-line summary. :mod:`crossent.grad`
(``value_and_grad``), :mod:`crossent.advise`, :mod:`crossent.explain`,
:mod:`crossent.compare` and the ``crossent`` command all look names up here.

Functions are given by their dotted public path (``"crossent.cross_entropy"``)
and imported when first used, so this module imports nothing of crossent and
every module may import it (no cycle).

A new loss is one entry::

    Entry("kl_divergence_with_logits", "crossent.kl_divergence_with_logits",
          ("student_logits", "teacher_logits"), "divergence", aliases=("kl_logits",),
          implementation="crossent.divergences._kl_divergence_with_logits",
          summary="KL divergence between the softmaxes of two logit arrays")

>>> resolve("bce-with-logits").name
'binary_cross_entropy_with_logits'
>>> resolve("CE").public
'crossent.cross_entropy'
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

__all__ = ["Entry", "Family", "ENTRIES", "resolve", "entries", "losses", "by_function", "spelling"]

Family = Literal["class-axis", "element-wise", "divergence", "information", "activation",
                 "gradient"]
"""What a computation is: ``class-axis`` losses (softmax or log-probabilities over the class
axis against a target), ``element-wise`` losses (each element a yes/no question),
``divergence`` (between two distributions given as logits), ``information`` (probability
space), ``activation`` and ``gradient``."""


@functools.cache
def _load(path: str) -> Callable[..., Any]:
    module, _, attribute = path.rpartition(".")
    function: Callable[..., Any] = getattr(importlib.import_module(module), attribute)
    return function


@dataclass(frozen=True)
class Entry:
    """One computation of crossent, by name.

    Attributes:
      name: the canonical name (``cross_entropy``), also the name of its explain trace.
      public: the dotted path of the public function (``crossent.cross_entropy``).
      arrays: the names of its array arguments, in order (``("logits", "target")``).
      family: see :data:`Family`.
      aliases: other names accepted for it (``("ce",)``).
      implementation: the dotted path of the private function returning ``(loss, grad)``
        with ``compute_grad=True`` (losses only; ``None`` otherwise).
      summary: one line for help texts.
    """

    name: str
    public: str
    arrays: tuple[str, ...]
    family: Family
    aliases: tuple[str, ...] = ()
    implementation: str | None = None
    summary: str = ""

    @property
    def function(self) -> Callable[..., Any]:
        """The public function (imported on first use)."""
        return _load(self.public)

    @property
    def loss_and_grad(self) -> Callable[..., tuple[Any, Any]] | None:
        """The private implementation returning ``(loss, grad)``, or None for non-losses."""
        return None if self.implementation is None else _load(self.implementation)

    @property
    def is_loss(self) -> bool:
        return self.implementation is not None

    @property
    def takes_target(self) -> bool:
        """A loss of a prediction against a target (what :func:`crossent.advise` checks)."""
        return self.family in ("class-axis", "element-wise") and self.arrays[1:2] == ("target",)


ENTRIES: tuple[Entry, ...] = (
    Entry("cross_entropy", "crossent.cross_entropy", ("logits", "target"), "class-axis",
          aliases=("ce", "softmax_cross_entropy"),
          implementation="crossent.losses._cross_entropy",
          summary="softmax cross-entropy from logits (class indices or probabilities)"),
    Entry("nll_loss", "crossent.nll_loss", ("log_probs", "target"), "class-axis",
          aliases=("nll",), implementation="crossent.losses._nll_loss",
          summary="negative log-likelihood of log-probabilities"),
    Entry("binary_cross_entropy", "crossent.binary_cross_entropy", ("probs", "target"),
          "element-wise", aliases=("bce",),
          implementation="crossent.losses._binary_cross_entropy",
          summary="binary cross-entropy from probabilities (log clamped at -100)"),
    Entry("binary_cross_entropy_with_logits", "crossent.binary_cross_entropy_with_logits",
          ("logits", "target"), "element-wise",
          aliases=("bce_with_logits", "bce_logits", "sigmoid_cross_entropy"),
          implementation="crossent.losses._binary_cross_entropy_with_logits",
          summary="sigmoid + binary cross-entropy from logits, fused and stable"),
    Entry("sigmoid_focal_loss", "crossent.sigmoid_focal_loss", ("logits", "target"),
          "element-wise", aliases=("focal",),
          implementation="crossent.losses._sigmoid_focal_loss",
          summary="sigmoid focal loss (torchvision's)"),
    Entry("softmax_focal_loss", "crossent.softmax_focal_loss", ("logits", "target"),
          "class-axis", implementation="crossent.losses._softmax_focal_loss",
          summary="softmax focal loss over the class axis"),
    Entry("kl_divergence_with_logits", "crossent.kl_divergence_with_logits",
          ("student_logits", "teacher_logits"), "divergence", aliases=("kl_logits",),
          implementation="crossent.divergences._kl_divergence_with_logits",
          summary="KL divergence between the softmaxes of two logit arrays (distillation)"),
    Entry("jensen_shannon_divergence", "crossent.jensen_shannon_divergence",
          ("student_logits", "teacher_logits"), "divergence", aliases=("jsd",),
          implementation="crossent.divergences._jensen_shannon_divergence",
          summary="generalised Jensen-Shannon divergence of two logit arrays (Liger's beta)"),
    Entry("total_variation_distance", "crossent.total_variation_distance",
          ("student_logits", "teacher_logits"), "divergence", aliases=("tvd",),
          implementation="crossent.divergences._total_variation_distance",
          summary="total variation distance between the softmaxes of two logit arrays"),
    Entry("entropy", "crossent.information.entropy", ("p",), "information",
          summary="entropy of a distribution (nats, or bits with base 2)"),
    Entry("kl_divergence", "crossent.information.kl_divergence", ("p", "q"), "information",
          aliases=("kl", "kl_div"), summary="KL divergence of two distributions"),
    Entry("softmax_inverse", "crossent.softmax_inverse", ("p",), "activation",
          aliases=("reverse_softmax",), summary="logits whose softmax is p (seed 000)"),
    Entry("cross_entropy_grad", "crossent.grad.cross_entropy", ("logits", "target"),
          "gradient", aliases=("grad", "gradient"),
          summary="gradient of cross-entropy: softmax - one_hot (seed 001)"),
)

_BY_KEY: dict[str, Entry] = {}
for _entry in ENTRIES:
    for _key in (_entry.name, *_entry.aliases):
        if _key in _BY_KEY:
            raise RuntimeError(f"{_key!r} names both {_BY_KEY[_key].name} and {_entry.name}")
        _BY_KEY[_key] = _entry


def spelling(name: str) -> str:
    """A name as the command line writes it: ``binary-cross-entropy``."""
    return name.replace("_", "-")


def _listing(choices: tuple[Entry, ...]) -> str:
    names = ", ".join(entry.name for entry in choices)
    aliases = ", ".join(spelling(alias) for entry in choices for alias in entry.aliases)
    return names + (f" (aliases: {aliases})" if aliases else "")


def entries(*families: Family) -> tuple[Entry, ...]:
    """The entries of ``families`` (every entry when none is given), in table order."""
    return tuple(entry for entry in ENTRIES if not families or entry.family in families)


def losses() -> tuple[Entry, ...]:
    """The losses: entries with a ``(loss, grad)`` implementation."""
    return tuple(entry for entry in ENTRIES if entry.is_loss)


def resolve(name: object, choices: tuple[Entry, ...] = ENTRIES, *, what: str = "name") -> Entry:
    """The entry called ``name`` (any case; hyphens or underscores; an alias) among ``choices``.

    Raises ValueError naming the choices (and their aliases) otherwise.

    >>> resolve("Binary-Cross-Entropy").arrays
    ('probs', 'target')
    >>> resolve("hinge")
    Traceback (most recent call last):
    ...
    ValueError: unknown name 'hinge'; expected one of cross_entropy, nll_loss, ...
    """
    entry = None
    if isinstance(name, str):
        entry = _BY_KEY.get(name.strip().lower().replace("-", "_").replace(" ", "_"))
    if entry is None or entry not in choices:
        raise ValueError(f"unknown {what} {name!r}; expected one of {_listing(choices)}")
    return entry


def by_function(function: object) -> Entry | None:
    """The loss whose public function is ``function``, or None."""
    return next((entry for entry in losses() if entry.function is function), None)
