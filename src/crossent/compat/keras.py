r"""Keras 3's cross-entropy numbers, computed by crossent's core.

Same names, argument order and defaults as ``keras.losses``; NumPy, PyTorch
(autograd flows through) and JAX arrays in, the same library out. What Keras
does differently from crossent's native losses, all reproduced here:

- **epsilon clipping** (``keras.config.epsilon() = 1e-7``): probabilities are
  clipped to :math:`[\epsilon, 1-\epsilon]` before the log, so p = 0 costs
  :math:`-\log 10^{-7} \approx 16.12`, not the -100 clamp of PyTorch;
- **renormalisation**: categorical probabilities are divided by their sum
  along ``axis`` first (``y_pred / sum(y_pred)``), so unnormalised rows give a
  finite, different loss — except sparse CE on the TensorFlow backend, which
  clips *then* renormalises (``keras/src/backend/tensorflow/nn.py``);
- **binary label smoothing** squeezes towards 0.5: :math:`t(1-\varepsilon) + \varepsilon/2`;
  categorical smoothing spreads :math:`\varepsilon / C` with ``C = y_true.shape[-1]``;
- ``binary_crossentropy`` and ``binary_focal_crossentropy`` return the **mean over
  the last axis** (shape ``[batch, d0, .. dN-1]``), not per element;
- the functions return **per-sample** losses; the ``Loss`` classes
  (:class:`CategoricalCrossentropy`, ...) reduce with ``"sum_over_batch_size"``
  (sum of the weighted losses / number of *elements*, masked elements excluded);
- ``ignore_class`` gives loss 0 and, in the classes, is left out of the divisor;
- **dtypes**: a Loss class's ``dtype`` (floatx = float32 by default) is the dtype of
  its result, except that on torch and NumPy a dividing reduction of a float64 Loss
  is taken and returned in float32 (``ops.divide_no_nan``); sparse CE on JAX and
  NumPy is promoted to the default float by its one-hot (a 16-bit ``y_pred`` gives
  float32). 16-bit inputs are computed in float32 and rounded once, where Keras
  rounds at each step: the values agree to a few 16-bit ulps.

Where a backend changes the numbers, functions take ``backend=`` ("tensorflow",
"jax", "torch", "numpy"); ``None`` means Keras's configured backend
(``KERAS_BACKEND``, then ``~/.keras/keras.json``, then "tensorflow").

Sources: keras/src/losses/losses.py (functions and classes),
keras/src/losses/loss.py (reductions), keras/src/backend/{tensorflow,jax,torch,numpy}/nn.py.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import numpy as np
from array_api_compat import is_numpy_namespace

from .. import _validate as v
from .. import information
from .._array import Array, is_floating, namespace, num_elements, static_shape
from .._plan import smooth_probabilities
from .._validate import check_non_negative, check_unit_interval
from ..activations import logit, sigmoid, softmax
from ..losses import (
    binary_cross_entropy,
    binary_cross_entropy_with_logits,
    cross_entropy,
    focal_power,
    nll_loss,
    sigmoid_focal_loss,
    smooth_binary_target,  # Keras's binary smoothing: squeeze towards 0.5
)
from ._common import (
    cast_to,
    float_input,
    keras_backend,
    like,
    log_softmax_nan,
    nan_where,
    require_floating,
    sigmoid_nan,
    tf_softmax_xent_gradient,
)

__all__ = [
    "EPSILON",
    "categorical_crossentropy",
    "sparse_categorical_crossentropy",
    "binary_crossentropy",
    "binary_focal_crossentropy",
    "categorical_focal_crossentropy",
    "kl_divergence",
    "CategoricalCrossentropy",
    "SparseCategoricalCrossentropy",
    "BinaryCrossentropy",
    "BinaryFocalCrossentropy",
    "CategoricalFocalCrossentropy",
    "KLDivergence",
]

EPSILON = 1e-7
"""``keras.config.epsilon()``: the fuzz factor of every clip (keras/src/backend/config.py)."""


# --- argument conversion --------------------------------------------------------


def _prediction(y_pred: object) -> tuple[Any, Array]:
    """``ops.convert_to_tensor(y_pred)``: lists become ``floatx()`` = float32."""
    y_pred = float_input(y_pred, name="y_pred")
    xp = namespace(y_pred)
    require_floating(xp, "y_pred", y_pred)
    return xp, y_pred


def _clip(xp: Any, probs: Array, upper: float = 1.0 - EPSILON) -> Array:
    """``clip(p, ε, 1 - ε)`` in ``p``'s dtype (in float16, 1 - 1e-7 rounds to 1, as in Keras)."""
    if is_numpy_namespace(xp):
        # NumPy's clip promotes ml_dtypes' bfloat16 to float32; bounds in p's dtype keep it
        lower_bound, upper_bound = (np.asarray(b, dtype=probs.dtype) for b in (EPSILON, upper))
        return np.minimum(np.maximum(probs, lower_bound), upper_bound)
    return xp.clip(probs, EPSILON, upper)


def _renormalise(xp: Any, probs: Array, axis: int) -> Array:
    """``y_pred / sum(y_pred, axis)``: Keras makes each row sum to one before clipping."""
    return probs / xp.sum(probs, axis=axis, keepdims=True)


def _keras_mean(xp: Any, losses: Array, axis: int, dtype: Any, backend: str) -> Array:
    """``ops.mean(losses, axis)`` in Keras's dtype rules, returned in ``dtype``.

    keras/src/backend/{torch,jax,tensorflow}/numpy.py ``mean`` computes in
    ``result_type(dtype, "float32")``, and keras/src/backend/common/dtypes.py maps
    float64 to float32 on every backend but TensorFlow: on torch and jax a float64
    mean is taken in float32 (then cast back), a loss of about 1e-7 relative.
    """
    keeps_float64 = backend in ("tensorflow", "numpy") and dtype == xp.float64
    compute_dtype = xp.float64 if keeps_float64 else xp.float32
    return cast_to(xp, xp.mean(cast_to(xp, losses, compute_dtype), axis=axis), dtype)


def _check_same_shape(y_true: Array, y_pred: Array) -> None:
    """Keras's check (keras/src/backend/*/nn.py), in its words: both arguments one shape."""
    true_shape, pred_shape = tuple(y_true.shape), tuple(y_pred.shape)
    if true_shape != pred_shape:
        raise ValueError(
            f"Arguments `target` and `output` must have the same shape. Received: "
            f"target.shape={true_shape}, output.shape={pred_shape}; y_true must have "
            f"y_pred's shape (one-hot or probabilities per class)"
        )


def _sparse_logits_nan(
    xp: Any, logits: Array, target: Array, axis: int, ignore_class: int | None, backend: str
) -> Array:
    """Where a backend's sparse categorical CE of logits is NaN (``log_softmax_nan``).

    Every backend's log_softmax is NaN over a row with a ``+inf`` logit. JAX and NumPy
    multiply ``one_hot(target) · log_softmax`` (keras/src/backend/jax/nn.py): a ``-inf``
    logit off the target is 0·(-inf) as well; torch and TensorFlow pick the target's
    entry (fused kernels). Keras replaces ignored positions' logits by 0 first.
    """
    moved = xp.moveaxis(logits, axis, -1) if axis not in (-1, logits.ndim - 1) else logits
    one_hot = None
    if backend in ("jax", "numpy"):
        classes = xp.arange(int(moved.shape[-1]), dtype=target.dtype)
        one_hot = xp.astype(classes == xp.expand_dims(target, axis=-1), moved.dtype)
    mask = log_softmax_nan(xp, moved, -1, one_hot)
    if ignore_class is not None:  # keras/src/losses/losses.py: ops.where(valid_mask, y_pred, 0)
        mask = mask & (target != ignore_class)
    return mask


def _smooth_categorical(y_true: Array, label_smoothing: float | Array) -> Array:
    # keras/src/losses/losses.py categorical_crossentropy: C is y_true.shape[-1], whatever `axis`
    return smooth_probabilities(y_true, label_smoothing, int(y_true.shape[-1]))


# --- functions (per-sample losses) -----------------------------------------------


def categorical_crossentropy(
    y_true: Array,
    y_pred: Array,
    from_logits: bool = False,
    label_smoothing: float = 0.0,
    axis: int = -1,
    *,
    backend: str | None = None,
) -> Array:
    r"""``keras.losses.categorical_crossentropy``: per-sample CE with one-hot/soft targets.

    .. math::
        t' = t (1-\varepsilon) + \varepsilon / C, \qquad
        \ell = \begin{cases}
          -\sum_c t'_c \log\operatorname{softmax}(z)_c & \texttt{from\_logits}\\
          -\sum_c t'_c \log \operatorname{clip}\big(p_c / \textstyle\sum_k p_k,\
            10^{-7},\ 1 - 10^{-7}\big)
            & \text{otherwise}
        \end{cases}

    Args:
      y_true: targets ``[..., num_classes]`` (one-hot or probabilities), cast to y_pred's dtype.
      y_pred: probabilities (renormalised along ``axis`` and clipped) or logits.
      from_logits: whether ``y_pred`` holds logits.
      label_smoothing: ε in [0, 1]; C is ``y_true.shape[-1]`` (Keras's choice, even if
        ``axis`` is not -1).
      axis: the class axis.
      backend: the values are the same on every backend; on "tensorflow" the gradient
        from logits is ``softmax - y_true`` (TensorFlow's kernel), which is the true
        gradient only when each row of ``y_true`` sums to 1.

    Returns:
      Per-sample losses, ``y_pred``'s shape without ``axis``, in ``y_pred``'s dtype.

    Example (the example of Keras's docstring: p = 0 is clipped to 1e-7, not -inf):

    >>> from crossent.compat import keras as K
    >>> K.categorical_crossentropy([[0, 1, 0], [0, 0, 1]], [[0.05, 0.95, 0], [0.1, 0.8, 0.1]])
    array([0.0513, 2.303 ], dtype=float32)

    NOTE: PyTorch's ``F.cross_entropy`` takes logits only, the class axis is 1, and it
    reduces to a mean; Keras's ``from_logits=False`` default reads probabilities.
    """
    keras_backend(backend)
    xp, y_pred = _prediction(y_pred)
    label_smoothing = check_unit_interval("label_smoothing", label_smoothing)
    y_true = like(xp, y_pred, y_true, y_pred.dtype, name="y_true")
    _check_same_shape(y_true, y_pred)
    y_true = _smooth_categorical(y_true, label_smoothing)
    if from_logits:
        losses = cross_entropy(y_pred, y_true, axis=axis, reduction="none")
        if backend == "tensorflow":  # tf.nn.softmax_cross_entropy_with_logits's gradient
            losses = tf_softmax_xent_gradient(xp, losses, y_pred, y_true, axis)
        # every backend computes target · log_softmax: NaN for +inf, or -inf at label 0
        losses = nan_where(xp, losses, log_softmax_nan(xp, y_pred, axis, y_true))
    else:
        probs = _clip(xp, _renormalise(xp, y_pred, axis))
        losses = information.cross_entropy(y_true, probs, axis=axis)
    return cast_to(xp, losses, y_pred.dtype)


def sparse_categorical_crossentropy(
    y_true: Array,
    y_pred: Array,
    from_logits: bool = False,
    ignore_class: int | None = None,
    axis: int = -1,
    *,
    backend: str | None = None,
) -> Array:
    r"""``keras.losses.sparse_categorical_crossentropy``: per-sample CE with integer targets.

    .. math::
        \ell = -\log q_{y}, \qquad q = \begin{cases}
          \operatorname{softmax}(z) & \texttt{from\_logits}\\
          \operatorname{clip}(p / \textstyle\sum_k p_k,\ \epsilon,\ 1-\epsilon)
            & \text{jax, torch, numpy backends}\\
          \operatorname{clip}(p, \epsilon, 1-\epsilon)
            / \textstyle\sum_k \operatorname{clip}(p_k, \epsilon, 1-\epsilon)
            & \text{tensorflow backend}
        \end{cases}

    The TensorFlow backend clips, takes the log and hands it to
    ``tf.nn.sparse_softmax_cross_entropy_with_logits``, which renormalises *after*
    the clip (keras/src/backend/tensorflow/nn.py); the other backends renormalise
    first. The two differ when a row does not sum to one or has entries below ε.

    Args:
      y_true: integer class indices, ``y_pred``'s shape without ``axis`` (a trailing
        axis of size 1 is squeezed, as Keras does); floating labels are cast to int.
      y_pred: probabilities or logits ``[..., num_classes]``.
      from_logits: whether ``y_pred`` holds logits.
      ignore_class: a class index whose positions get loss 0 (e.g. -1 or 255 for void).
      axis: the class axis (the TensorFlow backend supports only -1).
      backend: "tensorflow", "jax", "torch", "numpy", or None for Keras's configured one.

    Returns:
      Per-sample losses, ``y_pred``'s shape without ``axis``, in ``y_pred``'s dtype.

    Example (Keras's docstring; then an unnormalised row, where backends differ):

    >>> from crossent.compat import keras as K
    >>> K.sparse_categorical_crossentropy([1, 2], [[0.05, 0.95, 0], [0.1, 0.8, 0.1]])
    array([0.0513, 2.303 ], dtype=float32)
    >>> K.sparse_categorical_crossentropy([1], [[0.5, 0.0]], backend="torch")  # -log 1e-7
    array([16.1181], dtype=float32)
    >>> K.sparse_categorical_crossentropy([1], [[0.5, 0.0]], backend="tensorflow")  # -log 2e-7
    array([15.4249], dtype=float32)

    NOTE: with ``ignore_class`` Keras's functional form returns 0 at ignored positions;
    PyTorch's ``ignore_index`` is the same idea, but its 'mean' excludes them from the
    divisor, as :class:`SparseCategoricalCrossentropy` does.
    """
    backend = keras_backend(backend)
    if ignore_class is not None and (isinstance(ignore_class, bool)
                                     or not isinstance(ignore_class, (int, np.integer))):
        raise TypeError(
            f"ignore_class must be an int or None (Keras's argument), got {ignore_class!r}; "
            f"pass the integer class index to ignore"
        )
    xp, y_pred = _prediction(y_pred)
    y_true = like(xp, y_pred, y_true, name="y_true")
    if is_floating(xp, y_true.dtype):  # Keras casts labels to an integer dtype
        y_true = xp.astype(y_true, xp.int64)
    # keras/src/losses/losses.py: a trailing class axis of size 1 is squeezed
    if y_true.ndim == y_pred.ndim and int(y_true.shape[axis]) == 1:
        y_true = xp.squeeze(y_true, axis=axis)
    _check_sparse_labels(xp, y_true, y_pred, axis, ignore_class)
    if backend == "tensorflow" and axis not in (-1, y_pred.ndim - 1):
        raise ValueError(  # Keras's words first (keras/src/backend/tensorflow/nn.py)
            f"Only axis=-1 is currently supported. Received: axis={axis} (Keras's TensorFlow "
            f"backend, sparse categorical crossentropy); move the class axis last or pick "
            f"another backend"
        )
    if from_logits:
        losses = cross_entropy(
            y_pred, y_true, axis=axis, ignore_index=ignore_class, reduction="none"
        )
        losses = nan_where(
            xp, losses, _sparse_logits_nan(xp, y_pred, y_true, axis, ignore_class, backend)
        )
    elif backend == "tensorflow":
        # clip, log, then a softmax CE of the log: log_softmax renormalises the clipped p
        log_clipped = xp.log(_clip(xp, y_pred))
        losses = cross_entropy(
            log_clipped, y_true, axis=axis, ignore_index=ignore_class, reduction="none"
        )
    else:
        log_probs = xp.log(_clip(xp, _renormalise(xp, y_pred, axis)))
        losses = nll_loss(log_probs, y_true, axis=axis, ignore_index=ignore_class, reduction="none")
    # the loss is taken in y_pred's dtype, then promoted as the backend's one-hot product does
    losses = cast_to(xp, losses, y_pred.dtype)
    return cast_to(xp, losses, _sparse_result_dtype(xp, y_pred.dtype, backend))


def _sparse_result_dtype(xp: Any, dtype: Any, backend: str) -> Any:
    """The dtype of a backend's sparse categorical CE of ``y_pred`` in ``dtype``.

    JAX and NumPy (keras/src/backend/{jax,numpy}/nn.py) return
    ``-sum(one_hot(y_true) * log_prob)``, and the one-hot is in the default float:
    float32 on NumPy, ``jnp.float_`` on JAX (float64 under ``jax_enable_x64``). So a
    16-bit ``y_pred`` gives a float32 loss (float64 with x64), and with x64 a float32
    ``y_pred`` a float64 loss. torch and TensorFlow keep ``y_pred``'s dtype.
    """
    if backend == "numpy":
        return xp.result_type(dtype, xp.float32)
    if backend == "jax":
        return xp.result_type(dtype, xp.float64 if _jax_x64() else xp.float32)
    return dtype


def _jax_x64() -> bool:
    """Whether JAX's default float is float64 now (``jax_enable_x64``, also as a context)."""
    jax = sys.modules.get("jax")
    if jax is None:  # not imported: the environment variable JAX would read
        return os.environ.get("JAX_ENABLE_X64", "").lower() in ("1", "true", "yes", "on")
    return bool(jax.dtypes.canonicalize_dtype(np.float64) == np.float64)


def _check_sparse_labels(
    xp: Any, y_true: Array, y_pred: Array, axis: int, ignore_class: int | None
) -> None:
    """Integer labels of ``y_pred``'s shape without ``axis``, each a class or ``ignore_class``,
    in Keras's argument names (the core would say ``target`` and ``logits``)."""
    axis = v.check_axis("y_pred", axis, y_pred.ndim)
    shape = static_shape(y_pred)
    expected = shape[:axis] + shape[axis + 1:]
    found = static_shape(y_true)
    if None not in expected + found and found != expected:
        raise ValueError(  # Keras's words (keras/src/backend/tensorflow/nn.py), then the fix
            f"Arguments `target` and `output` must have the same shape up until the last "
            f"dimension: target.shape={found}, output.shape={shape}; y_true must hold one "
            f"integer class index per row of y_pred (shape {expected}); for one-hot y_true "
            f"use categorical_crossentropy"
        )
    v.check_class_indices(
        xp, y_true, int(y_pred.shape[axis]), axis, ignore_class, None,
        logits_name="y_pred", target_name="y_true", ignore_name="ignore_class",
    )


def binary_crossentropy(
    y_true: Array,
    y_pred: Array,
    from_logits: bool = False,
    label_smoothing: float = 0.0,
    axis: int = -1,
    *,
    backend: str | None = None,
) -> Array:
    r"""``keras.losses.binary_crossentropy``: element-wise BCE, averaged over ``axis``.

    .. math::
        t' = t (1-\varepsilon) + \varepsilon / 2, \qquad
        \ell = \operatorname{mean}_{\texttt{axis}}
               \Big(-t' \log \hat p - (1-t') \log(1 - \hat p)\Big),
        \quad \hat p = \operatorname{clip}(p, 10^{-7}, 1 - 10^{-7})

    With ``from_logits`` the stable form :math:`\max(x,0) - x t' + \log(1 + e^{-|x|})`
    is used (no clipping) on the tensorflow, jax and torch backends; Keras's numpy
    backend takes the sigmoid and clips (keras/src/backend/numpy/nn.py).

    Args:
      y_true: targets, ``y_pred``'s shape, cast to its dtype.
      y_pred: probabilities in [0, 1], or logits with ``from_logits=True``.
      from_logits: whether ``y_pred`` holds logits.
      label_smoothing: ε in [0, 1]; targets are squeezed towards 0.5.
      axis: the axis the per-element losses are averaged over (Keras: -1).
      backend: matters only for ``from_logits`` on "numpy"; None = Keras's configured one.

    Returns:
      ``y_pred``'s shape without ``axis``, in ``y_pred``'s dtype.

    Example (Keras's docstring; seed 004's one-output network, p clipped at 1 - 1e-7):

    >>> from crossent.compat import keras as K
    >>> K.binary_crossentropy([[0, 1], [0, 0]], [[0.6, 0.4], [0.4, 0.6]])
    array([0.916, 0.714 ], dtype=float32)
    >>> K.binary_crossentropy([[0.0]], [[1.0]])
    array([15.9424], dtype=float32)

    NOTE: PyTorch's ``F.binary_cross_entropy`` clamps log at -100 (p = 1, t = 0 costs 100)
    and averages over *all* elements; Keras clips p (cost 15.94) and averages over the
    last axis only.
    """
    backend = keras_backend(backend)
    xp, y_pred = _prediction(y_pred)
    label_smoothing = check_unit_interval("label_smoothing", label_smoothing)
    y_true = like(xp, y_pred, y_true, y_pred.dtype, name="y_true")
    _check_same_shape(y_true, y_pred)
    y_true = smooth_binary_target(y_true, label_smoothing)
    if from_logits and backend != "numpy":
        losses = binary_cross_entropy_with_logits(y_pred, y_true, reduction="none")
        losses = nan_where(xp, losses, sigmoid_nan(xp, y_pred, y_true, backend))
    else:
        probs = sigmoid(y_pred) if from_logits else y_pred
        losses = binary_cross_entropy(_clip(xp, probs), y_true, reduction="none")
    return _keras_mean(xp, losses, axis, y_pred.dtype, backend)


def binary_focal_crossentropy(
    y_true: Array,
    y_pred: Array,
    apply_class_balancing: bool = False,
    alpha: float = 0.25,
    gamma: float = 2.0,
    from_logits: bool = False,
    label_smoothing: float = 0.0,
    axis: int = -1,
    *,
    backend: str | None = None,
) -> Array:
    r"""``keras.losses.binary_focal_crossentropy``: focal BCE, averaged over ``axis``.

    .. math::
        p_t = t' p + (1 - t')(1 - p), \quad
        \ell = \operatorname{mean}_{\texttt{axis}}\Big(\alpha_t\,(1 - p_t)^{\gamma}\,
               \mathrm{BCE}(\operatorname{clip}(p, \epsilon, 1-\epsilon), t')\Big)

    with :math:`\alpha_t = \alpha t' + (1-\alpha)(1-t')` only if ``apply_class_balancing``.
    Unlike :func:`binary_crossentropy`, ``from_logits`` takes the sigmoid and then the
    *clipped* probability BCE (keras/src/losses/losses.py), so very confident logits
    saturate at -log(1e-7).

    Args:
      y_true: targets, ``y_pred``'s shape.
      y_pred: probabilities, or logits with ``from_logits=True``.
      apply_class_balancing: weight positives by ``alpha`` and negatives by ``1 - alpha``.
      alpha: balancing weight in [0, 1].
      gamma: focusing parameter >= 0.
      from_logits: whether ``y_pred`` holds logits.
      label_smoothing: ε in [0, 1] (towards 0.5).
      axis: the axis averaged over.
      backend: accepted for symmetry; every Keras backend gives these numbers.

    Returns:
      ``y_pred``'s shape without ``axis``, in ``y_pred``'s dtype.

    Example (Keras's docstring):

    >>> from crossent.compat import keras as K
    >>> K.binary_focal_crossentropy([[0, 1], [0, 0]], [[0.6, 0.4], [0.4, 0.6]], gamma=2)
    array([0.330, 0.206], dtype=float32)

    NOTE: the focal factor uses the unclipped p, the BCE the clipped one. Here the
    factor is computed from the clipped p: values agree to ~1e-7·γ, but at p exactly
    0 or 1 the gradient is 0 where Keras's is γ(1-p_t)^(γ-1)·16.1.
    """
    backend = keras_backend(backend)
    xp, y_pred = _prediction(y_pred)
    label_smoothing = check_unit_interval("label_smoothing", label_smoothing)
    y_true = smooth_binary_target(like(xp, y_pred, y_true, y_pred.dtype, name="y_true"), label_smoothing)
    alpha_or_none = alpha if apply_class_balancing else None
    if from_logits and backend == "tensorflow":
        # On TensorFlow, ops.sigmoid tags its output with the logits and the backend's
        # binary_crossentropy uses them (_get_logits in keras/src/backend/tensorflow/nn.py):
        # the BCE is the unclipped sigmoid_cross_entropy_with_logits, i.e. the core's focal loss.
        losses = sigmoid_focal_loss(
            y_pred, y_true, alpha=alpha_or_none, gamma=gamma, reduction="none"
        )
        losses = nan_where(xp, losses, sigmoid_nan(xp, y_pred, y_true, backend))
        return _keras_mean(xp, losses, axis, y_pred.dtype, backend)
    probs = sigmoid(y_pred) if from_logits else y_pred
    # the clipped probability as a logit: sigmoid(logit(clip(p))) is clip(p), so the core's
    # focal loss sees Keras's clipped BCE, -log(clip(p)) and -log(1 - clip(p))
    clipped_logits = logit(_clip(xp, cast_to(xp, probs, y_pred.dtype)))
    losses = sigmoid_focal_loss(
        clipped_logits, y_true, alpha=alpha_or_none, gamma=gamma, reduction="none"
    )
    return _keras_mean(xp, losses, axis, y_pred.dtype, backend)


def categorical_focal_crossentropy(
    y_true: Array,
    y_pred: Array,
    alpha: float = 0.25,
    gamma: float = 2.0,
    from_logits: bool = False,
    label_smoothing: float = 0.0,
    axis: int = -1,
    *,
    backend: str | None = None,
) -> Array:
    r"""``keras.losses.categorical_focal_crossentropy``: per-sample focal CE, probability space.

    .. math::
        q = \operatorname{clip}\big(p / \textstyle\sum_k p_k,\ \epsilon,\ 1-\epsilon\big),
        \qquad \ell = -\sum_c \alpha\, (1 - q_c)^{\gamma}\, t'_c \log q_c

    with :math:`p = \operatorname{softmax}(z)` for ``from_logits`` and
    :math:`t' = t(1-\varepsilon) + \varepsilon/C` (keras/src/losses/losses.py). Every class
    is modulated by its own :math:`(1 - q_c)^\gamma`, not only the target's.

    Args:
      y_true: targets ``[..., num_classes]`` (one-hot or probabilities), cast to y_pred's dtype.
      y_pred: probabilities (renormalised and clipped) or logits.
      alpha: weight of every class (a number, as Keras).
      gamma: focusing parameter >= 0.
      from_logits: whether ``y_pred`` holds logits.
      label_smoothing: ε in [0, 1]; C is ``y_true.shape[-1]``.
      axis: the class axis.
      backend: accepted for symmetry; every Keras backend gives these numbers.

    Returns:
      Per-sample losses, ``y_pred``'s shape without ``axis``, in ``y_pred``'s dtype.

    Example (values of Keras's own tests):

    >>> from crossent.compat import keras as K
    >>> K.categorical_focal_crossentropy([[1, 0, 0]], [[4.9, -0.5, 2.05]], from_logits=True,
    ...                                  label_smoothing=0.1)
    array([0.0669], dtype=float32)

    NOTE: :func:`crossent.softmax_focal_loss` (logits, no clipping) modulates only the
    target mass; with one-hot targets the two agree up to Keras's clip.
    """
    keras_backend(backend)
    xp, y_pred = _prediction(y_pred)
    label_smoothing = check_unit_interval("label_smoothing", label_smoothing)
    alpha = check_non_negative("alpha", alpha)
    gamma = check_non_negative("gamma", gamma)
    y_true = _smooth_categorical(like(xp, y_pred, y_true, y_pred.dtype, name="y_true"), label_smoothing)
    probs = softmax(y_pred, axis=axis) if from_logits else y_pred
    clipped = _clip(xp, _renormalise(xp, cast_to(xp, probs, y_pred.dtype), axis))
    # -Σ_c [α (1 - q_c)^γ t'_c] log q_c: the cross-entropy of q with the modulated target
    modulated = alpha * focal_power(xp, 1.0 - clipped, gamma) * y_true
    return cast_to(xp, information.cross_entropy(modulated, clipped, axis=axis), y_pred.dtype)


def kl_divergence(y_true: Array, y_pred: Array, *, backend: str | None = None) -> Array:
    r"""``keras.losses.kl_divergence``: :math:`\sum_c t_c \log(t_c / p_c)` over the last axis.

    .. math:: \ell = \sum_c \hat t_c \log\frac{\hat t_c}{\hat p_c}, \qquad
              \hat t = \operatorname{clip}(t, \epsilon, 1),\
              \hat p = \operatorname{clip}(p, \epsilon, 1)

    Both arguments are clipped, so a zero target contributes
    :math:`10^{-7}\log(10^{-7}/\hat p)` (not 0) and there is no renormalisation.

    Args:
      y_true: target probabilities ``[..., num_classes]``.
      y_pred: predicted probabilities, same shape.
      backend: accepted for symmetry; every Keras backend gives these numbers.

    Returns:
      ``y_pred``'s shape without the last axis, in ``y_pred``'s dtype.

    Example:

    >>> from crossent.compat import keras as K
    >>> K.kl_divergence([[0.5, 0.5]], [[0.9, 0.1]])
    array([0.5108], dtype=float32)

    NOTE: ``torch.nn.functional.kl_div(input, target)`` takes log-probabilities as
    ``input`` and no clipping; see :func:`crossent.compat.torch.kl_div`.
    """
    keras_backend(backend)
    xp, y_pred = _prediction(y_pred)
    y_true = like(xp, y_pred, y_true, y_pred.dtype, name="y_true")
    losses = information.kl_divergence(
        _clip(xp, y_true, upper=1.0), _clip(xp, y_pred, upper=1.0), axis=-1
    )
    return cast_to(xp, losses, y_pred.dtype)


# --- Loss classes (reduction, sample_weight, masks) ------------------------------------

_REDUCTIONS = ("sum_over_batch_size", "sum", "mean", "mean_with_sample_weight", "none", None)


def _same_rank(xp: Any, first: Array, second: Array) -> tuple[Array, Array]:
    """keras/src/losses/loss.py squeeze_or_expand_to_same_rank: fix a rank off by one."""
    if first.ndim == second.ndim + 1 and int(first.shape[-1]) == 1:
        if second.ndim == 1:
            second = xp.expand_dims(second, axis=-1)
        else:
            first = xp.squeeze(first, axis=-1)
    elif second.ndim == first.ndim + 1 and int(second.shape[-1]) == 1:
        if first.ndim == 1:
            first = xp.expand_dims(first, axis=-1)
        else:
            second = xp.squeeze(second, axis=-1)
    return first, second


def _divide_no_nan(xp: Any, numerator: Array, denominator: Array, backend: str) -> Array:
    """``ops.divide_no_nan``: 0 where the denominator is 0.

    On torch and NumPy, Keras divides in ``result_type(x1, x2, float)``, and
    keras/src/backend/common/dtypes.py maps float64 to float32 on every backend but
    TensorFlow: a float64 quotient is taken (and returned) in float32. TensorFlow keeps
    float64; JAX divides in the arguments' dtype.
    """
    if backend in ("torch", "numpy") and numerator.dtype == xp.float64:
        numerator, denominator = (cast_to(xp, x, xp.float32) for x in (numerator, denominator))
    safe = xp.where(denominator == 0, xp.ones_like(denominator), denominator)
    return xp.where(denominator == 0, xp.zeros_like(numerator), numerator / safe)


def _reduce_weighted(
    xp: Any, values: Array, sample_weight: Array | None, mask: Array | None,
    reduction: str | None, backend: str,
) -> Array:
    """keras/src/losses/loss.py reduce_weighted_values (with apply_mask and reduce_values)."""
    dtype = values.dtype
    if mask is not None:
        if reduction in ("mean", "sum_over_batch_size"):
            # masked entries weigh total / valid, so sum / total = sum over valid / valid
            total = num_elements(xp, mask, dtype)
            valid = xp.sum(xp.astype(mask, dtype))
            weight = _divide_no_nan(xp, total, valid, backend)
            float_mask = xp.where(mask, weight, xp.zeros_like(weight))
        else:
            float_mask = xp.astype(mask, dtype)
        if sample_weight is not None:
            float_mask, sample_weight = _same_rank(xp, float_mask, sample_weight)
            sample_weight = sample_weight * float_mask
        else:
            sample_weight = float_mask
    if sample_weight is not None:
        values, sample_weight = _same_rank(xp, values, sample_weight)
        values = values * sample_weight
    if reduction in (None, "none") or values.ndim == 0 or tuple(values.shape) == (0,):
        return values
    loss = xp.sum(values)
    if reduction == "sum":
        return loss
    if reduction == "mean_with_sample_weight" and sample_weight is not None:
        divisor = xp.astype(xp.sum(sample_weight), dtype)
    else:
        divisor = num_elements(xp, values, dtype)
    return _divide_no_nan(xp, loss, divisor, backend)


class _Loss:
    """keras.losses.Loss: cast to ``dtype`` (floatx), compute per-sample losses, reduce."""

    _function: Any = None

    def __init__(
        self, reduction: str | None = "sum_over_batch_size", dtype: Any = None, **options: Any
    ) -> None:
        if reduction not in _REDUCTIONS:
            raise ValueError(
                f"reduction must be one of {', '.join(repr(r) for r in _REDUCTIONS)}, "
                f"got {reduction!r}"
            )
        self.reduction = reduction
        self.dtype = dtype
        self.options = options

    def _mask(self, xp: Any, y_true: Array, y_pred: Array) -> Array | None:
        return None

    def __call__(self, y_true: Array, y_pred: Array, sample_weight: Array | None = None) -> Array:
        y_pred = float_input(y_pred, name="y_pred")
        xp = namespace(y_pred)
        dtype = _keras_dtype(xp, self.dtype)
        # Loss.__call__ converts both arguments to the loss's dtype (floatx = float32)
        y_pred = cast_to(xp, y_pred, dtype)
        y_true = like(xp, y_pred, y_true, dtype, name="y_true")
        # LossFunctionWrapper.call: squeeze or expand y_true / y_pred to the same rank
        y_true, y_pred = _same_rank(xp, y_true, y_pred)
        # reduce_weighted_values converts the losses to the Loss's dtype (a sparse CE on JAX
        # or NumPy may have promoted them)
        losses = cast_to(xp, type(self)._function(y_true, y_pred, **self.options), dtype)
        mask = self._mask(xp, y_true, y_pred)
        if sample_weight is not None:
            sample_weight = like(xp, y_pred, float_input(sample_weight), dtype)
        backend = keras_backend(self.options.get("backend"))
        return _reduce_weighted(xp, losses, sample_weight, mask, self.reduction, backend)


def _keras_dtype(xp: Any, dtype: Any) -> Any:
    """The Loss's ``dtype`` in ``xp``: None is floatx (float32); strings name a dtype.

    NumPy has no bfloat16: Keras uses ml_dtypes' (keras/src/backend/numpy/core.py), as
    here; the core computes 16-bit floats in float32 and returns the loss in bfloat16.
    """
    if dtype is None:
        return xp.float32
    if isinstance(dtype, str):
        if dtype == "bfloat16" and is_numpy_namespace(xp):
            try:
                import ml_dtypes
            except ImportError:
                raise ImportError(
                    "dtype='bfloat16' with NumPy arrays needs ml_dtypes (pip install ml_dtypes), "
                    "as Keras itself does"
                ) from None
            return np.dtype(ml_dtypes.bfloat16)
        return getattr(xp, dtype)
    return dtype


class CategoricalCrossentropy(_Loss):
    """``keras.losses.CategoricalCrossentropy``: :func:`categorical_crossentropy`, reduced.

    Example (Keras's docstring):

    >>> from crossent.compat import keras as K
    >>> y_true, y_pred = [[0, 1, 0], [0, 0, 1]], [[0.05, 0.95, 0], [0.1, 0.8, 0.1]]
    >>> float(K.CategoricalCrossentropy()(y_true, y_pred))
    1.177
    >>> float(K.CategoricalCrossentropy()(y_true, y_pred, sample_weight=[0.3, 0.7]))
    0.814
    """

    _function = staticmethod(categorical_crossentropy)

    def __init__(
        self,
        from_logits: bool = False,
        label_smoothing: float = 0.0,
        axis: int = -1,
        reduction: str | None = "sum_over_batch_size",
        name: str = "categorical_crossentropy",
        dtype: Any = None,
        *,
        backend: str | None = None,
    ) -> None:
        super().__init__(
            reduction, dtype, from_logits=from_logits, label_smoothing=label_smoothing,
            axis=axis, backend=backend,
        )
        self.name = name


class SparseCategoricalCrossentropy(_Loss):
    """``keras.losses.SparseCategoricalCrossentropy``: the sparse function, reduced.

    Positions of ``ignore_class`` are masked: with "sum_over_batch_size" they are left
    out of the divisor (keras/src/losses/loss.py apply_mask).

    Example:

    >>> from crossent.compat import keras as K
    >>> loss = K.SparseCategoricalCrossentropy(ignore_class=-1)
    >>> float(loss([1, -1], [[0.05, 0.95, 0], [0.1, 0.8, 0.1]]))
    0.0513
    """

    _function = staticmethod(sparse_categorical_crossentropy)

    def __init__(
        self,
        from_logits: bool = False,
        ignore_class: int | None = None,
        reduction: str | None = "sum_over_batch_size",
        axis: int = -1,
        name: str = "sparse_categorical_crossentropy",
        dtype: Any = None,
        *,
        backend: str | None = None,
    ) -> None:
        super().__init__(
            reduction, dtype, from_logits=from_logits, ignore_class=ignore_class, axis=axis,
            backend=backend,
        )
        self.name = name

    def _mask(self, xp: Any, y_true: Array, y_pred: Array) -> Array | None:
        ignore_class = self.options["ignore_class"]
        if ignore_class is None:
            return None
        labels = y_true
        if labels.ndim == y_pred.ndim and int(labels.shape[self.options["axis"]]) == 1:
            labels = xp.squeeze(labels, axis=self.options["axis"])
        return labels != ignore_class


class BinaryCrossentropy(_Loss):
    """``keras.losses.BinaryCrossentropy``: :func:`binary_crossentropy`, reduced.

    Example (Keras's docstring):

    >>> import numpy as np
    >>> from crossent.compat import keras as K
    >>> y_true = np.array([[0, 1], [0, 0]])
    >>> y_pred = np.array([[-18.6, 0.51], [2.94, -12.8]])
    >>> float(K.BinaryCrossentropy(from_logits=True)(y_true, y_pred))
    0.8654
    >>> float(K.BinaryCrossentropy(from_logits=True)(y_true, y_pred, sample_weight=[0.8, 0.2]))
    0.243
    >>> float(K.BinaryCrossentropy(from_logits=True, reduction="sum")(y_true, y_pred))
    1.730
    >>> K.BinaryCrossentropy(from_logits=True, reduction=None)(y_true, y_pred)
    array([0.235, 1.496 ], dtype=float32)
    """

    _function = staticmethod(binary_crossentropy)

    def __init__(
        self,
        from_logits: bool = False,
        label_smoothing: float = 0.0,
        axis: int = -1,
        reduction: str | None = "sum_over_batch_size",
        name: str = "binary_crossentropy",
        dtype: Any = None,
        *,
        backend: str | None = None,
    ) -> None:
        super().__init__(
            reduction, dtype, from_logits=from_logits, label_smoothing=label_smoothing,
            axis=axis, backend=backend,
        )
        self.name = name


class BinaryFocalCrossentropy(_Loss):
    """``keras.losses.BinaryFocalCrossentropy``: :func:`binary_focal_crossentropy`, reduced.

    Example:

    >>> from crossent.compat import keras as K
    >>> loss = K.BinaryFocalCrossentropy(gamma=2.0)
    >>> float(loss([[0, 1], [0, 0]], [[0.6, 0.4], [0.4, 0.6]]))
    0.268
    """

    _function = staticmethod(binary_focal_crossentropy)

    def __init__(
        self,
        apply_class_balancing: bool = False,
        alpha: float = 0.25,
        gamma: float = 2.0,
        from_logits: bool = False,
        label_smoothing: float = 0.0,
        axis: int = -1,
        reduction: str | None = "sum_over_batch_size",
        name: str = "binary_focal_crossentropy",
        dtype: Any = None,
        *,
        backend: str | None = None,
    ) -> None:
        super().__init__(
            reduction, dtype, apply_class_balancing=apply_class_balancing, alpha=alpha,
            gamma=gamma, from_logits=from_logits, label_smoothing=label_smoothing, axis=axis,
            backend=backend,
        )
        self.name = name


class CategoricalFocalCrossentropy(_Loss):
    """``keras.losses.CategoricalFocalCrossentropy``: :func:`categorical_focal_crossentropy`, reduced.

    Example (Keras's docstring):

    >>> from crossent.compat import keras as K
    >>> y_true, y_pred = [[0.0, 1.0, 0.0], [0.0, 0.0, 1.0]], [[0.05, 0.95, 0], [0.1, 0.8, 0.1]]
    >>> float(K.CategoricalFocalCrossentropy()(y_true, y_pred))
    0.23315276
    """

    _function = staticmethod(categorical_focal_crossentropy)

    def __init__(
        self,
        alpha: float = 0.25,
        gamma: float = 2.0,
        from_logits: bool = False,
        label_smoothing: float = 0.0,
        axis: int = -1,
        reduction: str | None = "sum_over_batch_size",
        name: str = "categorical_focal_crossentropy",
        dtype: Any = None,
        *,
        backend: str | None = None,
    ) -> None:
        super().__init__(
            reduction, dtype, alpha=alpha, gamma=gamma, from_logits=from_logits,
            label_smoothing=label_smoothing, axis=axis, backend=backend,
        )
        self.name = name


class KLDivergence(_Loss):
    """``keras.losses.KLDivergence``: :func:`kl_divergence`, reduced.

    Example:

    >>> from crossent.compat import keras as K
    >>> float(K.KLDivergence()([[0.5, 0.5]], [[0.9, 0.1]]))
    0.5108
    """

    _function = staticmethod(kl_divergence)

    def __init__(
        self,
        reduction: str | None = "sum_over_batch_size",
        name: str = "kl_divergence",
        dtype: Any = None,
        *,
        backend: str | None = None,
    ) -> None:
        super().__init__(reduction, dtype, backend=backend)
        self.name = name

