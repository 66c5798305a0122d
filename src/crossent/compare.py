"""``crossent.compare``: one input, every framework's number for the "same" loss, and why.

For a loss family (softmax cross-entropy, binary cross-entropy) and one input,
:func:`compare` evaluates crossent's native loss, each framework's convention
through :mod:`crossent.compat` (PyTorch, Keras on each backend, TensorFlow,
optax, scikit-learn), and — for each framework installed here — the real
framework, then gives a one-line reason for every value that differs from
crossent's native one (e.g. "Keras clips p to [1e-7, 1-1e-7]"). Each value is
that framework's usual scalar: its own 'mean' (PyTorch, Keras's
``sum_over_batch_size``, scikit-learn) or the mean of its per-example losses
(TensorFlow, optax, which do not reduce).

Real frameworks are imported lazily, here only; Keras can run one backend per
process (the one ``KERAS_BACKEND`` selects), so only that backend's row gets a
real value.
"""

from __future__ import annotations

import contextlib
import contextvars
import importlib
import importlib.util
import math
import os
import re
import sys
import tempfile
import warnings
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np

from . import _registry
from . import _validate as v
from . import activations as _activations
from . import divergences as _divergences
from . import losses as _losses
from ._array import to_numpy
from .compat import keras as K
from .compat import optax as O
from .compat import sklearn as S
from .compat import tf as TF
from .compat import torch as T

__all__ = ["compare", "Comparison", "Row", "LOSSES"]

# the losses compared: softmax cross-entropy and binary cross-entropy, each from logits or
# probabilities (``inputs``), and the KL divergence of distillation (a student's logits
# against a teacher's)
_COMPARED = tuple(_registry.resolve(name) for name in ("cross_entropy", "binary_cross_entropy",
                                                       "kl_divergence_with_logits"))
LOSSES = tuple(entry.name for entry in _COMPARED)
_RTOL = 1e-5  # relative difference below which two conventions "agree"


@dataclass
class Row:
    """One convention's answer for the input."""

    convention: str  # who computes it, e.g. "Keras SparseCategoricalCrossentropy (jax)"
    call: str  # the call that reproduces it (crossent.compat or the framework)
    value: float | None  # crossent's reproduction of the convention
    real: float | None = None  # the real framework's value, when it is installed
    real_status: str = "not installed"  # "matches" | "MISMATCH" | "not installed" | reason
    reason: str = ""  # why ``value`` differs from crossent's native value ("" if it does not)
    error: str | None = None  # the error this convention raises for the input, if any


@dataclass
class Comparison:
    """The result of :func:`compare`: the input and one :class:`Row` per convention."""

    loss: str
    inputs: Literal["logits", "probs"]
    target_kind: Literal["index", "probability"]
    options: dict[str, Any]
    rows: list[Row] = field(default_factory=list)

    @property
    def native(self) -> Row:
        return self.rows[0]

    def to_dict(self) -> dict[str, Any]:
        """Plain data (for ``--format json``): NaN and inf become strings."""
        data = asdict(self)
        for row in data["rows"]:
            for key in ("value", "real"):
                value = row[key]
                if isinstance(value, float) and not math.isfinite(value):
                    row[key] = str(value)
        return data


# --- evaluating a convention ------------------------------------------------------------


def _scalar(value: Any) -> float:
    return float(np.asarray(to_numpy(value), dtype=np.float64).mean())


@contextlib.contextmanager
def _warnings_ignored() -> Iterator[None]:
    with warnings.catch_warnings():  # expected ones (rows not summing to 1) are reasons
        warnings.simplefilter("ignore")
        yield


def _evaluate(function: Callable[[], Any]) -> tuple[float | None, str | None]:
    try:
        with _warnings_ignored():
            return _scalar(function()), None
    except Exception as error:  # a convention that refuses the input is a result too
        message = (str(error).splitlines() or [""])[0]
        return None, f"{type(error).__name__}: {message[:160]}"


def _same(first: float | None, second: float | None) -> bool:
    if first is None or second is None:
        return first is second
    if math.isnan(first) or math.isnan(second):
        return math.isnan(first) and math.isnan(second)
    if math.isinf(first) or math.isinf(second):
        return first == second
    return abs(first - second) <= _RTOL * max(abs(first), abs(second), 1e-12)


# --- the real frameworks (lazy) ------------------------------------------------------------


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


# What compare() was asked to report while a framework loads (seconds for TensorFlow).
_progress: contextvars.ContextVar[Callable[[str], None] | None] = contextvars.ContextVar(
    "crossent_compare_progress", default=None)

_FRAMEWORKS = {"torch": "PyTorch", "keras": "Keras", "tensorflow": "TensorFlow", "jax": "JAX",
               "optax": "optax", "sklearn.metrics": "scikit-learn"}

# TensorFlow's C++ runtime writes to the process's stderr while it loads, before its logging
# is set up, so TF_CPP_MIN_LOG_LEVEL does not silence these lines: absl's preamble, oneDNN's
# and the CPU-feature notice ("I0000 00:00:1796191720.251214   11718 port.cc:153] ...").
_NATIVE_LOG = re.compile(
    r"WARNING: All log messages before absl::InitializeLog\(\)|[IWE]\d{4} [\d:.]+ +\d+ [\w.]+:\d+\] "
    r"|To enable the following instructions: |rebuild TensorFlow with")


@contextlib.contextmanager
def _native_logs_dropped() -> Iterator[None]:
    """Run the block with file descriptor 2 captured; replay what it wrote but native log lines."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    try:
        saved = os.dup(2)
    except OSError:  # no stderr descriptor: nothing to filter
        yield
        return
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            kept = [line for line in captured.read().decode(errors="replace").splitlines(True)
                    if not _NATIVE_LOG.match(line)]
            if kept:
                os.write(2, "".join(kept).encode())


def _import(module: str, label: str | None = None) -> Any:
    """``module``, imported (saying so first, when compare() was given ``progress``)."""
    if module not in sys.modules:
        report = _progress.get()
        if report is not None:
            report(f"loading {label or _FRAMEWORKS.get(module, module)}")
        with _native_logs_dropped():
            return importlib.import_module(module)
    return sys.modules[module]


def _keras_backend_here() -> str | None:
    """The backend Keras runs on in this process (importing Keras if needed), or None."""
    if not _installed("keras"):
        return None
    backend = os.environ.get("KERAS_BACKEND", "tensorflow")
    backend_module = {"tensorflow": "tensorflow", "jax": "jax", "torch": "torch"}.get(backend, "")
    if backend_module and not _installed(backend_module):
        return None
    label = f"Keras and its backend, {_FRAMEWORKS.get(backend_module, backend)}"
    return str(_import("keras", label).backend.backend())


# --- the conventions of each loss ---------------------------------------------------------


@dataclass
class _Input:
    x: np.ndarray
    target: np.ndarray
    inputs: str
    kind: str
    label_smoothing: float
    ignore_index: int

    @property
    def one_hot(self) -> np.ndarray:
        if self.kind == "probability":
            return self.target
        return np.eye(self.x.shape[-1])[np.clip(self.target, 0, self.x.shape[-1] - 1)]


def _probability_reasons(
    data: _Input, framework: str, backend: str | None = None, categorical: bool = True
) -> list[str]:
    """Why a probability-input convention differs from the exact -log p (crossent native)."""
    p = data.x
    reasons = []
    if framework == "keras":
        if categorical and not np.allclose(p.sum(axis=-1), 1.0):
            reasons.append(
                "Keras clips p then renormalises (TensorFlow backend)"
                if backend == "tensorflow" and data.kind == "index"
                else "Keras renormalises each row to sum to 1"
            )
        if np.any(p < 1e-7) or np.any(p > 1 - 1e-7):
            reasons.append("Keras clips p to [1e-7, 1-1e-7]")
    elif framework == "sklearn":
        if np.any(p < 2.3e-16) or np.any(p > 1 - 2.3e-16):
            reasons.append("scikit-learn clips p to [eps, 1-eps], eps = 2.2e-16 (float64)")
    elif framework == "torch-bce":
        if np.any(np.log(np.where(p > 0, p, 1)) < -100) or np.any(p == 0) or np.any(p == 1):
            reasons.append("PyTorch clamps log p at -100")
    return reasons


def _no_ignore_index(data: _Input, framework: str, out_of_range: str) -> list[str]:
    """Why a framework without ignore_index differs where the target holds ignore_index."""
    if data.kind != "index" or not np.any(data.target == data.ignore_index):
        return []
    if 0 <= data.ignore_index < data.x.shape[-1]:
        return [f"{framework} has no ignore_index: class {data.ignore_index} is counted"]
    return [f"{framework} has no ignore_index: label {data.ignore_index} {out_of_range}"]


def _cross_entropy_rows(data: _Input, keras_here: str | None) -> list[tuple]:
    """(convention, call, compat function, real function or None, reasons) per convention."""
    x, t, ls = data.x, data.target, data.label_smoothing
    index = data.kind == "index"
    rows: list[tuple] = []
    if data.inputs == "logits":
        rows.append(("crossent (native)", "ce.cross_entropy(logits, target)",
                     lambda: _losses.cross_entropy(x, t, label_smoothing=ls,
                                                   ignore_index=data.ignore_index), None, []))
        torch_reasons = []
        if index and np.all(t == data.ignore_index):
            torch_reasons.append("PyTorch's mean over no counted target is 0/0 = NaN")
        if not index and np.any(np.isneginf(x) & (t == 0)) and ls == 0:
            torch_reasons.append("PyTorch sums target · log_softmax: 0 · (-inf) = NaN")
        rows.append(("PyTorch F.cross_entropy", "F.cross_entropy(input, target)",
                     lambda: T.cross_entropy(x, t, ignore_index=data.ignore_index,
                                             label_smoothing=ls),
                     _real_torch("cross_entropy", x, t, ignore_index=data.ignore_index,
                                 label_smoothing=ls), torch_reasons))
        inf_zero = np.any(np.isneginf(x) & (data.one_hot == 0)) and ls == 0
        for backend in ("tensorflow", "jax", "torch"):
            name = "SparseCategoricalCrossentropy" if index else "CategoricalCrossentropy"
            options: dict[str, Any] = {"from_logits": True}
            if not index:
                options["label_smoothing"] = ls
            reasons = []
            if inf_zero and (not index or backend == "jax"):
                reasons.append("Keras computes target · log_softmax: 0 · (-inf) = NaN")
            if index and ls:
                reasons.append("Keras's sparse loss has no label smoothing")
            reasons += _no_ignore_index(data, "Keras", "is out of range (ignore_class=None)")
            rows.append((f"Keras {name} ({backend})", f"keras.losses.{name}(from_logits=True)",
                         _bind(getattr(K, name), t, x, backend=backend, **options),
                         _real_keras(name, t, x, **options) if keras_here == backend else None,
                         reasons))
        if index:
            rows.append(("TensorFlow sparse_softmax_cross_entropy_with_logits (mean)",
                         "tf.nn.sparse_softmax_cross_entropy_with_logits(labels, logits)",
                         lambda: TF.sparse_softmax_cross_entropy_with_logits(t, x),
                         _real_tf("sparse_softmax_cross_entropy_with_logits", t, x),
                         (["TensorFlow has no label smoothing"] if ls else [])
                         + _no_ignore_index(data, "TensorFlow",
                                            "is out of range: an InvalidArgumentError")))
            rows.append(("optax softmax_cross_entropy_with_integer_labels (mean)",
                         "optax.losses.softmax_cross_entropy_with_integer_labels(logits, labels)",
                         lambda: O.softmax_cross_entropy_with_integer_labels(x, t),
                         _real_optax("softmax_cross_entropy_with_integer_labels", x, t),
                         (["optax has no label smoothing"] if ls else [])
                         # jnp.take_along_axis fills an out-of-range index with NaN
                         + _no_ignore_index(data, "optax", "is out of range: NaN")))
        else:
            reasons = (["TensorFlow computes labels · log_softmax: 0 · (-inf) = NaN"]
                       if inf_zero else [])
            rows.append(("TensorFlow softmax_cross_entropy_with_logits (mean)",
                         "tf.nn.softmax_cross_entropy_with_logits(labels, logits)",
                         lambda: TF.softmax_cross_entropy_with_logits(t, x),
                         _real_tf("softmax_cross_entropy_with_logits", t, x),
                         reasons + (["TensorFlow has no label smoothing"] if ls else [])))
            reasons = ["optax computes labels · log_softmax: 0 · (-inf) = NaN"] if inf_zero else []
            rows.append(("optax softmax_cross_entropy (mean)",
                         "optax.losses.softmax_cross_entropy(logits, labels)",
                         lambda: O.softmax_cross_entropy(x, t), _real_optax(
                             "softmax_cross_entropy", x, t),
                         reasons + (["optax has no label smoothing"] if ls else [])))
        return rows
    # probabilities: crossent's exact -Σ t log p (PyTorch users write nll_loss(log p))
    with np.errstate(divide="ignore"):
        log_p = np.log(x)
    rows.append(("crossent (native)", "ce.nll_loss(log(probs), target)",
                 lambda: _losses.nll_loss(log_p, t, ignore_index=data.ignore_index), None, []))
    if index:
        rows.append(("PyTorch F.nll_loss(torch.log(p))", "F.nll_loss(torch.log(input), target)",
                     lambda: T.nll_loss(log_p, t, ignore_index=data.ignore_index),
                     _real_torch("nll_loss", log_p, t, ignore_index=data.ignore_index),
                     ["PyTorch's mean over no counted target is 0/0 = NaN"]
                     if np.all(t == data.ignore_index) else []))
    for backend in ("tensorflow", "jax", "torch"):
        name = "SparseCategoricalCrossentropy" if index else "CategoricalCrossentropy"
        options = {} if index else {"label_smoothing": ls}
        reasons = _probability_reasons(data, "keras", backend)
        if ls and not index:
            reasons.append("Keras smooths the labels: t(1-ε) + ε/C")
        reasons += _no_ignore_index(data, "Keras", "is out of range (ignore_class=None)")
        rows.append((f"Keras {name} ({backend})", f"keras.losses.{name}()",
                     _bind(getattr(K, name), t, x, backend=backend, **options),
                     _real_keras(name, t, x, **options) if keras_here == backend else None,
                     reasons))
    if index or np.all((t == 0) | (t == 1)):
        labels = t if index else t.argmax(axis=-1)
        rows.append(("scikit-learn log_loss", "sklearn.metrics.log_loss(y_true, y_proba)",
                     lambda: S.log_loss(labels, x, labels=list(range(x.shape[-1]))),
                     _real_sklearn(labels, x, labels=list(range(x.shape[-1]))),
                     _probability_reasons(data, "sklearn")
                     + (["scikit-learn warns and does not renormalise rows that do not sum to 1"]
                        if not np.allclose(x.sum(axis=-1), 1.0) else [])
                     + _no_ignore_index(data, "scikit-learn", "is not one of labels: an error")))
    return rows


def _binary_rows(data: _Input, keras_here: str | None) -> list[tuple]:
    x, t, ls = data.x, data.target, data.label_smoothing
    rows: list[tuple] = []
    if data.inputs == "probs":
        rows.append(("crossent (native)", "ce.binary_cross_entropy(probs, target)",
                     lambda: _losses.binary_cross_entropy(x, t), None, []))
        rows.append(("PyTorch F.binary_cross_entropy", "F.binary_cross_entropy(input, target)",
                     lambda: T.binary_cross_entropy(x, t),
                     _real_torch("binary_cross_entropy", x, t), []))
        for backend in ("tensorflow", "jax", "torch"):
            reasons = _probability_reasons(data, "keras", backend, categorical=False)
            if reasons:
                reasons = ["Keras clips p to [1e-7, 1-1e-7] (PyTorch clamps log p at -100)"]
            if ls:
                reasons.append("Keras smooths binary labels towards 0.5: t(1-ε) + ε/2")
            rows.append((f"Keras BinaryCrossentropy ({backend})",
                         "keras.losses.BinaryCrossentropy()",
                         _bind(K.BinaryCrossentropy, t, x, backend=backend, label_smoothing=ls),
                         _real_keras("BinaryCrossentropy", t, x, label_smoothing=ls)
                         if keras_here == backend else None, reasons))
        if np.all((t == 0) | (t == 1)):
            reasons = []
            if np.any(x < 2.3e-16) or np.any(x > 1 - 2.3e-16):
                reasons.append("scikit-learn clips p to [eps, 1-eps], eps = 2.2e-16 "
                               "(PyTorch clamps log p at -100)")
            rows.append(("scikit-learn log_loss (each element a sample)",
                         "sklearn.metrics.log_loss(y_true.ravel(), y_proba.ravel())",
                         lambda: S.log_loss(t.ravel(), x.ravel(), labels=[0, 1]),
                         _real_sklearn(t.ravel(), x.ravel(), labels=[0, 1]), reasons))
        return rows
    rows.append(("crossent (native)", "ce.binary_cross_entropy_with_logits(logits, target)",
                 lambda: _losses.binary_cross_entropy_with_logits(x, t, label_smoothing=ls),
                 None, []))
    infinite = np.isinf(x).any()
    rows.append(("PyTorch F.binary_cross_entropy_with_logits",
                 "F.binary_cross_entropy_with_logits(input, target)",
                 lambda: T.binary_cross_entropy_with_logits(x, t),
                 _real_torch("binary_cross_entropy_with_logits", x, t),
                 (["PyTorch has no label smoothing here"] if ls else [])
                 + (["PyTorch's (1-t)·x + max(-x,0) + ... is NaN at infinite logits"]
                    if infinite else [])))
    for backend in ("tensorflow", "jax", "torch"):
        rows.append((f"Keras BinaryCrossentropy ({backend})",
                     "keras.losses.BinaryCrossentropy(from_logits=True)",
                     _bind(K.BinaryCrossentropy, t, x, backend=backend, from_logits=True,
                           label_smoothing=ls),
                     _real_keras("BinaryCrossentropy", t, x, from_logits=True, label_smoothing=ls)
                     if keras_here == backend else None,
                     ["Keras's backend multiplies 0 by an infinite log: NaN"] if infinite else []))
    rows.append(("TensorFlow sigmoid_cross_entropy_with_logits (mean)",
                 "tf.nn.sigmoid_cross_entropy_with_logits(labels, logits)",
                 lambda: TF.sigmoid_cross_entropy_with_logits(t, x),
                 _real_tf("sigmoid_cross_entropy_with_logits", t, x),
                 (["TensorFlow has no label smoothing"] if ls else [])
                 + (["max(x,0) - x·z + log1p(exp(-|x|)) is NaN at some infinite logits"]
                    if infinite else [])))
    rows.append(("optax sigmoid_binary_cross_entropy (mean)",
                 "optax.losses.sigmoid_binary_cross_entropy(logits, labels)",
                 lambda: O.sigmoid_binary_cross_entropy(x, t),
                 _real_optax("sigmoid_binary_cross_entropy", x, t),
                 (["optax has no label smoothing"] if ls else [])
                 + (["-y·log σ(x) is 0·(-inf) = NaN at some infinite logits"] if infinite else [])))
    return rows


def _kl_rows(data: _Input, keras_here: str | None) -> list[tuple]:
    """KL(p_t ‖ p_s) of a student's logits ``x`` against a teacher's logits ``target``."""
    x, t = data.x, data.target
    log_s, log_t = _activations.log_softmax(x), _activations.log_softmax(t)
    impossible = bool(np.isinf(log_t).any())  # a teacher class of probability 0
    rows: list[tuple] = [("crossent (native)",
                          "ce.kl_divergence_with_logits(student_logits, teacher_logits)",
                          lambda: _divergences.kl_divergence_with_logits(x, t), None, [])]
    rows.append(("PyTorch F.kl_div(log_target=True, reduction='batchmean')",
                 "F.kl_div(log_softmax(student), log_softmax(teacher), reduction='batchmean', "
                 "log_target=True)",
                 lambda: T.kl_div(log_s, log_t, reduction="batchmean", log_target=True),
                 _real_torch("kl_div", log_s, log_t, reduction="batchmean", log_target=True),
                 (["PyTorch's 'batchmean' divides by input.shape[0] only"] if x.ndim != 2 else [])
                 + (["PyTorch computes exp(t)·(t - x): 0·(-inf) = NaN where the teacher has "
                     "probability 0"] if impossible else [])))
    p_s, p_t = _activations.softmax(x), _activations.softmax(t)
    clipped = bool(np.any(p_s < 1e-7) or np.any(p_t < 1e-7))
    for backend in ("tensorflow", "jax", "torch"):
        rows.append((f"Keras KLDivergence ({backend})", "keras.losses.KLDivergence()(p_t, p_s)",
                     _bind(K.KLDivergence, p_t, p_s, backend=backend),
                     _real_keras("KLDivergence", p_t, p_s) if keras_here == backend else None,
                     ["Keras clips both distributions to [1e-7, 1]"] if clipped else []))

    def optax_reproduced() -> Any:
        per = _divergences.kl_divergence_with_logits(x, t, reduction="none")
        # optax multiplies exp(t) = 0 by t - x = -inf: NaN
        return np.where(np.isinf(log_t).any(axis=-1), np.nan, per)

    rows.append(("optax kl_divergence_with_log_targets (mean)",
                 "optax.losses.kl_divergence_with_log_targets(log_predictions, log_targets)",
                 optax_reproduced, _real_optax("kl_divergence_with_log_targets", log_s, log_t),
                 ["optax computes exp(t)·(t - x): 0·(-inf) = NaN where the teacher has "
                  "probability 0"] if impossible else []))
    return rows


def _bind(cls: Any, t: np.ndarray, x: np.ndarray, backend: str, **options: Any) -> Callable:
    return lambda: cls(backend=backend, **options)(t, x)


# real-framework calls: each returns a thunk, or None when the framework is not installed


def _real_torch(name: str, x: np.ndarray, t: np.ndarray, **options: Any) -> Callable | None:
    if not _installed("torch"):
        return None

    def run() -> Any:
        torch = _import("torch")
        return getattr(torch.nn.functional, name)(torch.tensor(x), torch.tensor(t), **options)

    return run


def _real_keras(name: str, t: np.ndarray, x: np.ndarray, **options: Any) -> Callable:
    def run() -> Any:
        return getattr(_import("keras").losses, name)(**options)(t, x)

    return run


def _real_tf(name: str, t: np.ndarray, x: np.ndarray) -> Callable | None:
    if not _installed("tensorflow"):
        return None

    def run() -> Any:
        tf = _import("tensorflow")
        return getattr(tf.nn, name)(labels=tf.constant(t), logits=tf.constant(x)).numpy()

    return run


def _real_optax(name: str, x: np.ndarray, t: np.ndarray) -> Callable | None:
    if not (_installed("optax") and _installed("jax")):
        return None

    def run() -> Any:
        jax, optax = _import("jax"), _import("optax")
        with jax.enable_x64(True):
            return np.asarray(getattr(optax.losses, name)(jax.numpy.asarray(x),
                                                          jax.numpy.asarray(t)))

    return run


def _real_sklearn(y: np.ndarray, p: np.ndarray, **options: Any) -> Callable | None:
    if not _installed("sklearn"):
        return None

    def run() -> Any:
        with _warnings_ignored():
            return _import("sklearn.metrics").log_loss(y, p, **options)

    return run


# --- the public function ------------------------------------------------------------------


def compare(
    loss: str,
    x: Any,
    target: Any,
    *,
    inputs: Literal["logits", "probs"] = "logits",
    label_smoothing: float = 0.0,
    ignore_index: int = -100,
    real: bool = True,
    progress: Callable[[str], None] | None = None,
) -> Comparison:
    """Every framework's value of ``loss`` for one input, and why each differs from crossent's.

    Args:
      loss: "cross_entropy" (softmax; integer or probability targets),
        "binary_cross_entropy" (element-wise sigmoid / probabilities) or
        "kl_divergence_with_logits" (``x`` a student's logits, ``target`` a teacher's, both
        ``[..., num_classes]``; logits only); "cross-entropy", "binary-cross-entropy" and
        the other aliases are accepted too.
      x: logits (``inputs="logits"``) or probabilities (``inputs="probs"``), classes last.
      target: class indices (the shape of ``x`` without its last axis) or probabilities /
        0-1 labels (the shape of ``x``).
      inputs: whether ``x`` holds logits or probabilities.
      label_smoothing: ε, passed to the conventions that have it (others say they do not).
      ignore_index: PyTorch's ignored class index.
      real: evaluate the real frameworks that are installed (imports them; seconds).
      progress: called with a line ("loading TensorFlow") before each framework is imported.

    Returns:
      A :class:`Comparison` whose first row is crossent's native value; every row holds
      the convention's value (reproduced by :mod:`crossent.compat`), the real framework's
      value where installed, and a one-line reason when it differs from the native one.

    Raises:
      ValueError, TypeError: for what crossent itself rejects (an option out of range,
      shapes that do not fit, fractional class indices, ...), with the core's message.

    Example (p = 0 for the target class: each framework saturates differently):

    >>> import crossent as ce
    >>> result = ce.compare("binary_cross_entropy", [[0.0, 0.9]], [[1.0, 0.0]], inputs="probs",
    ...                     real=False)
    >>> for row in result.rows[:3]:
    ...     print(f"{row.convention}: {row.value:.3f}")
    crossent (native): 51.151
    PyTorch F.binary_cross_entropy: 51.151
    Keras BinaryCrossentropy (tensorflow): 9.210
    >>> result.rows[2].reason
    'Keras clips p to [1e-7, 1-1e-7] (PyTorch clamps log p at -100)'
    """
    loss = _registry.resolve(loss, _COMPARED, what="loss").name  # also "cross-entropy", "bce"
    if inputs not in ("logits", "probs"):
        raise ValueError(f"inputs must be 'logits' or 'probs', got {inputs!r}")
    label_smoothing = v.check_unit_interval("label_smoothing", label_smoothing)
    ignore_index = v.check_ignore_index(ignore_index)
    x = np.asarray(x, dtype=np.float64)
    target = np.asarray(target)
    if x.ndim == 0:
        raise ValueError(f"{inputs} must have at least one dimension (classes last), got a scalar")
    if target.shape == x.shape:  # probabilities or 0-1 labels, which JSON may give as integers
        target = target.astype(np.float64)
    kind: Literal["index", "probability"] = "probability"
    if loss == "cross_entropy":  # class indices must be integers, as the core says
        kind = v.classify_target(np, inputs, x, target, x.ndim - 1)
    elif loss == "kl_divergence_with_logits":
        if inputs != "logits":
            raise ValueError(f"kl_divergence_with_logits compares logits (a student's and a "
                             f"teacher's), got inputs={inputs!r}; pass inputs='logits'")
        v.check_same_shape("target", target, inputs, x)
        target = target.astype(np.float64)
    else:
        v.check_same_shape("target", target, inputs, x)
    data = _Input(x, target, inputs, kind, label_smoothing, ignore_index)
    token = _progress.set(progress)
    try:
        keras_here = _keras_backend_here() if real else None
        rows = {"cross_entropy": _cross_entropy_rows, "binary_cross_entropy": _binary_rows,
                "kl_divergence_with_logits": _kl_rows}[loss](data, keras_here)
        result = Comparison(loss, inputs, kind, {"label_smoothing": label_smoothing,
                                                  "ignore_index": ignore_index})
        _, call, native, _, _ = rows[0]
        with _warnings_ignored():  # an input crossent rejects is an error, not a row
            native_value = _scalar(native())
        result.rows.append(Row("crossent (native)", call, native_value, real_status=""))
        for convention, call, ours, theirs, reasons in rows[1:]:
            result.rows.append(_row(convention, call, ours, theirs, reasons, native_value,
                                    real, keras_here))
    finally:
        _progress.reset(token)
    return result


def _row(convention: str, call: str, ours: Callable[[], Any], theirs: Callable[[], Any] | None,
         reasons: list[str], native_value: float, real: bool, keras_here: str | None) -> Row:
    """One convention's row: crossent's reproduction, the real framework's value, the reason."""
    value, error = _evaluate(ours)
    row = Row(convention, call, value, error=error)
    if not _same(value, native_value):
        row.reason = "; ".join(reasons) if reasons else "differs (no known reason: a bug?)"
    if theirs is not None and real:
        with _native_logs_dropped():
            row.real, real_error = _evaluate(theirs)
        if real_error is not None:  # the same behaviour when the reproduction raises too
            row.real_status = (f"raises too ({real_error.partition(':')[0]})" if error
                               else f"MISMATCH: raises {real_error}")
        elif error is not None:
            row.real_status = "MISMATCH: returns a value"
        else:
            row.real_status = "matches" if _same(row.real, value) else "MISMATCH"
    elif not real:
        row.real_status = "not evaluated (real=False)"
    elif convention.startswith("Keras"):
        row.real_status = (
            f"Keras runs on {keras_here} in this process" if keras_here else "not installed"
        )
    return row


def render_table(result: Comparison) -> Any:
    """A rich ``Table`` of ``result``: convention, value, real framework, reason."""
    from rich.markup import escape
    from rich.table import Table

    title = f"{result.loss} from {result.inputs} ({result.target_kind} targets)"
    table = Table(title=title, show_lines=False)
    table.add_column("convention")
    table.add_column("value", justify="right")
    table.add_column("real framework", justify="right")
    table.add_column("why it differs from crossent (native)")
    for row in result.rows:
        value = row.error or _format(row.value)
        real = _format(row.real) if row.real is not None else ""
        status = row.real_status
        real_cell = f"{real} ({status})" if real else status
        table.add_row(*(escape(cell) for cell in (row.convention, value, real_cell, row.reason)))
    return table


def _format(value: float | None) -> str:
    if value is None:
        return ""
    return f"{value:.6g}"
