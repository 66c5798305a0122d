"""Argument checks, with one message style.

Every message names the argument, what was found (the value), what was
expected, and, where there is one, the fix. Checks on values run only when the
values are concrete; under ``jax.jit`` they are skipped (``concrete_bool``).
User input is never checked with ``assert`` (it vanishes under ``python -O``).
"""

from __future__ import annotations

import math
import operator
import os
from pathlib import Path
from typing import Any, Literal, cast

import numpy as np

from ._array import (
    Array,
    concrete_bool,
    concrete_int,
    first_where,
    hyperparameter,
    is_floating,
    is_integer,
    static_shape,
)

Reduction = Literal["none", "mean", "sum"]
REDUCTIONS: tuple[str, ...] = ("none", "mean", "sum")


def _shape(x: Array) -> tuple[int | None, ...]:
    return static_shape(x)


def check_reduction(reduction: object) -> Reduction:
    """``reduction`` must be one of 'none', 'mean', 'sum'."""
    if reduction not in REDUCTIONS:
        raise ValueError(
            f"reduction must be one of 'none', 'mean', 'sum', got {reduction!r}"
        )
    return cast(Reduction, reduction)


def check_floating(xp: Any, name: str, x: Array) -> None:
    """``x`` must have a real floating dtype: integer logits are usually targets passed by mistake."""
    if not is_floating(xp, x.dtype):
        raise TypeError(
            f"{name} must have a floating-point dtype, got {x.dtype}; "
            f"convert it first (e.g. {name}.astype(float32)) — integer {name} are often "
            f"class targets passed in the wrong position"
        )


def check_axis(name: str, axis: object, ndim: int) -> int:
    """``axis`` must index one of ``ndim`` dimensions; returns it as a non-negative int.

    Python ints, NumPy integers and 0-d integer arrays are accepted (``operator.index``);
    an axis decides shapes, so a traced one (inside ``jax.jit``) is refused.
    """
    axis = _as_int("axis", axis, "an int")
    if ndim == 0:
        raise ValueError(f"{name} must have at least one dimension (the class axis), got a scalar")
    if not -ndim <= axis < ndim:
        raise ValueError(
            f"axis {axis} is out of range for {name} with {ndim} dimension(s); "
            f"expected an axis in [{-ndim}, {ndim - 1}]"
        )
    return axis % ndim


def _as_int(name: str, value: object, expected: str) -> int:
    """``value`` as a Python int (ints, NumPy integers, 0-d integer arrays), else TypeError."""
    if isinstance(value, bool) or isinstance(value, (float, np.floating)):
        raise TypeError(f"{name} must be {expected}, got {value!r}")
    try:
        return operator.index(value)  # type: ignore[arg-type]
    except TypeError:
        pass
    dtype = str(getattr(value, "dtype", ""))
    if getattr(value, "ndim", None) == 0 and "int" in dtype:
        number = concrete_int(value)
        if number is not None:
            return number
        raise TypeError(
            f"{name} must be a concrete int, got an abstract (traced) value {value!r}; "
            f"pass it as a static argument (e.g. jax.jit(..., static_argnames=...))"
        )
    raise TypeError(f"{name} must be {expected}, got {value!r}")


def _range_checked(
    name: str, value: object, expected: str, outside: Any, differentiable: bool
) -> float | Array:
    """A hyperparameter as a float (or its array when it carries a derivative), range-checked.

    ``outside(x)`` is True where ``x`` is out of range; it is evaluated on arrays too, and
    the check runs where the result is concrete (not under a JAX trace or a vmap). With
    ``differentiable=False`` (an engine whose own backward ignores the hyperparameter) an
    array that carries a derivative is refused rather than silently not differentiated.
    """
    value = hyperparameter(value)
    if isinstance(value, float):
        if math.isnan(value):
            raise TypeError(f"{name} must be {expected}, got {value!r}")
        if outside(value):
            raise ValueError(f"{name} must be {expected.replace('a number ', '')}, got {value}")
        return value
    dtype = str(getattr(value, "dtype", ""))
    if isinstance(value, bool) or getattr(value, "ndim", None) != 0 or not (
        "float" in dtype or "int" in dtype
    ):
        raise TypeError(f"{name} must be {expected}, got {value!r}")
    if not differentiable:
        raise TypeError(
            f"{name} must be {expected} without a derivative here, got {value!r}; this "
            f"function does not differentiate w.r.t. {name}: pass a float (e.g. float({name}) "
            f"or {name}.item()), or use crossent's core losses, which do"
        )
    bad = concrete_bool(outside(value) | (value != value))  # NaN is out of range too
    if bad:
        raise ValueError(f"{name} must be {expected.replace('a number ', '')}, got {value}")
    return value


def check_unit_interval(name: str, value: object, *, differentiable: bool = True) -> float | Array:
    """A number in [0, 1] (label_smoothing, alpha): a float, or a 0-d floating array that
    carries a derivative (torch ``requires_grad``, a JAX tracer), checked where concrete."""
    return _range_checked(
        name, value, "a number in [0, 1]", lambda x: (x < 0) | (x > 1), differentiable
    )


def check_non_negative(name: str, value: object, *, differentiable: bool = True) -> float | Array:
    """A number ≥ 0 (gamma), as :func:`check_unit_interval`."""
    return _range_checked(name, value, "a number >= 0", lambda x: x < 0, differentiable)


def check_positive(name: str, value: object, *, differentiable: bool = True) -> float | Array:
    """A number > 0 (temperature), as :func:`check_unit_interval`."""
    return _range_checked(name, value, "a number > 0", lambda x: x <= 0, differentiable)


def check_ignore_index(ignore_index: object) -> int:
    """``ignore_index`` must be an int (a NumPy integer or 0-d integer array is one)."""
    return _as_int("ignore_index", ignore_index, "an int")


def _positive_finite(name: str, value: object, example: str) -> float:
    """A Python or NumPy number in (0, inf), as a float."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)):
        raise TypeError(f"{name} must be a positive number, got {value!r}")
    number = float(value)
    if not 0 < number < math.inf:
        raise ValueError(f"{name} must be a positive finite number ({example}), got {value!r}")
    return number


def check_softcap(softcap: object) -> float | None:
    """``softcap``: None or a positive finite float (Gemma 2: 30.0)."""
    if softcap is None:
        return None
    return _positive_finite("softcap", softcap, "e.g. 30.0 as in Gemma 2, or None")


def check_temperature(temperature: object) -> float:
    """``temperature``: a positive finite float."""
    return _positive_finite("temperature", temperature, "1.0 leaves the logits unchanged")


def check_chunk_size(chunk_size: object) -> int | None:
    """``chunk_size``: 'auto' (None) or a positive int."""
    if chunk_size == "auto":
        return None
    if isinstance(chunk_size, (int, np.integer)) and not isinstance(chunk_size, bool) and chunk_size > 0:
        return int(chunk_size)
    raise ValueError(f"chunk_size must be 'auto' or a positive int (tokens per chunk), got {chunk_size!r}")


def check_normalizer(normalizer: object, reduction: str) -> Any:
    """``normalizer``: None, or a positive number / 0-d array (checked where concrete), only
    with reduction='mean'. Numbers come back as floats, arrays unchanged."""
    if normalizer is None:
        return None
    if reduction != "mean":
        raise ValueError(
            f"normalizer={normalizer!r} replaces the 'mean' divisor, so it needs "
            f"reduction='mean', got reduction={reduction!r}; drop one of the two"
        )
    if isinstance(normalizer, bool):
        raise TypeError(f"normalizer must be a positive number or a 0-d array, got {normalizer!r}")
    if isinstance(normalizer, (int, float, np.integer, np.floating)):
        return _positive_finite("normalizer", normalizer, "e.g. count_targets(target) of the whole batch")
    if getattr(normalizer, "ndim", None) != 0:
        raise ValueError(
            f"normalizer must be a number or a 0-d array, got shape {getattr(normalizer, 'shape', None)}"
        )
    if concrete_bool(~(normalizer > 0)):  # type: ignore[operator]
        raise ValueError(f"normalizer must be > 0, got {float(normalizer)}")  # type: ignore[arg-type]
    return normalizer


def check_same_shape(name: str, x: Array, other_name: str, other: Array) -> None:
    """``x`` and ``other`` must have the same shape."""
    if _shape(x) != _shape(other):
        raise ValueError(
            f"{name} has shape {_shape(x)}, but {other_name} has shape {_shape(other)}; "
            f"expected the same shape"
        )


def broadcast_shapes(*shapes: tuple[int | None, ...]) -> tuple[int | None, ...] | None:
    """The broadcast shape of ``shapes``, or ``None`` if they do not broadcast."""
    ndim = max((len(s) for s in shapes), default=0)
    result = []
    for i in range(1, ndim + 1):
        sizes = {s[-i] for s in shapes if len(s) >= i} - {1}
        if len(sizes) > 1:
            return None
        result.append(sizes.pop() if sizes else 1)
    return tuple(reversed(result))


def check_broadcastable(
    name: str, x: Array, to_name: str, to_shape: tuple[int | None, ...]
) -> None:
    """``x`` must broadcast to ``to_shape`` (the shape of ``to_name``).

    Dimensions unknown while tracing (None) are not checked here.
    """
    if None in _shape(x) or None in tuple(to_shape):
        return
    if broadcast_shapes(_shape(x), to_shape) != tuple(to_shape):
        raise ValueError(
            f"{name} has shape {_shape(x)}, which does not broadcast to the shape "
            f"{tuple(to_shape)} of {to_name}"
        )


def check_class_weight(xp: Any, name: str, weight: Array, num_classes: int, axis: int) -> None:
    """A class weight must be a 1-D floating array with one entry per class."""
    if weight.ndim != 1 or int(weight.shape[0]) != num_classes:
        raise ValueError(
            f"{name} must have shape ({num_classes},), one entry per class along axis {axis}, "
            f"got shape {_shape(weight)}"
        )
    check_floating(xp, name, weight)


def check_where(xp: Any, where: Array, name: str, to_shape: tuple[int | None, ...]) -> None:
    """``where`` must be a boolean mask that broadcasts to the loss's shape."""
    if where.dtype != xp.bool:
        raise TypeError(f"where must be a boolean mask, got dtype {where.dtype}")
    check_broadcastable("where", where, name, to_shape)


def check_probabilities(xp: Any, name: str, x: Array) -> None:
    """Values of ``x`` must lie in [0, 1] (NaN passes through and propagates)."""
    outside = (x < 0) | (x > 1)
    if concrete_bool(xp.any(outside)):
        first = float(first_where(xp, x, outside))
        raise ValueError(
            f"{name} must contain probabilities in [0, 1], found {first:g}; "
            f"if these are logits, use binary_cross_entropy_with_logits"
        )


def classify_target(
    xp: Any, logits_name: str, logits: Array, target: Array, axis: int
) -> Literal["index", "probability"]:
    """Decide whether ``target`` holds class indices or probabilities, from its shape and dtype.

    Class indices have the shape of the logits without ``axis`` and an integer
    dtype; probabilities have the logits' shape and a floating dtype.
    """
    logits_shape, target_shape = _shape(logits), _shape(target)
    position_shape = logits_shape[:axis] + logits_shape[axis + 1 :]
    if target_shape == logits_shape and target.ndim == logits.ndim:
        if not is_floating(xp, target.dtype):
            raise TypeError(
                f"target has the shape {target_shape} of {logits_name}, so it is read as "
                f"probabilities, but its dtype is {target.dtype}; pass class indices of shape "
                f"{position_shape} or floating-point probabilities"
            )
        return "probability"
    if target_shape == position_shape:
        if not is_integer(xp, target.dtype):
            raise TypeError(
                f"target of shape {target_shape} holds class indices and must have an integer "
                f"dtype, got {target.dtype}; convert it (e.g. target.astype(int64)) or pass "
                f"probabilities of shape {logits_shape}"
            )
        return "index"
    raise ValueError(
        f"target has shape {target_shape}, but {logits_name} has shape {logits_shape} with "
        f"classes along axis {axis}; expected class indices of shape {position_shape} "
        f"or probabilities of shape {logits_shape}"
    )


def check_class_indices(
    xp: Any,
    target: Array,
    num_classes: int,
    axis: int,
    ignore_index: int | None,
    counted: Array | None,
    logits_name: str = "logits",
    target_name: str = "target",
    ignore_name: str = "ignore_index",
) -> None:
    """Class indices must lie in [0, num_classes) or equal ``ignore_index``.

    Positions masked out by ``counted`` (``where=False``) are not checked: they may
    hold padding. The message names the arguments as the caller's framework does
    (``y_true``, ``y_pred`` and ``ignore_class`` for Keras).
    """
    shape = _shape(target)
    if None not in shape and math.prod(shape) > 0:  # type: ignore[arg-type]  # the common case
        in_range = concrete_bool((xp.min(target) >= 0) & (xp.max(target) < num_classes))
        if in_range:
            return
    bad = (target < 0) | (target >= num_classes)
    if ignore_index is not None:
        bad = bad & (target != ignore_index)
    if counted is not None:
        bad = bad & counted
    if concrete_bool(xp.any(bad)):
        found = concrete_int(first_where(xp, target, bad))
        raise class_index_error(
            found, num_classes, f"{logits_name} have {num_classes} classes along axis {axis}",
            ignore_index, target_name=target_name, ignore_name=ignore_name,
        )


def class_index_error(
    found: int | None,
    num_classes: int,
    classes_are: str,
    ignore_index: int | None,
    *,
    target_name: str = "target",
    ignore_name: str = "ignore_index",
) -> ValueError:
    """The one message for a class index outside [0, num_classes) (every engine raises it).

    ``classes_are`` says where the classes come from, e.g. "logits have 5 classes along axis -1"
    or "weight has 5 rows (classes)"; ``target_name`` and ``ignore_name`` are the caller's
    framework's names for the two arguments (``y_true`` and ``ignore_class`` for Keras).
    """
    kind = "negative class index" if found is not None and found < 0 else "class index"
    return ValueError(
        f"{target_name} contains {kind} {found}, but {classes_are}; expected indices in "
        f"[0, {num_classes - 1}]" + ("" if ignore_index is None else f" or {ignore_name}={ignore_index}")
    )


def check_writable_file(name: str, path: str | os.PathLike[str]) -> Path:
    """``path`` must be a file that can be written (its folder is created if missing)."""
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"{name} {str(path)!r} is a folder; give a file name")
    _probe(name, path, path.parent)
    return path


def check_writable_folder(name: str, path: str | os.PathLike[str]) -> Path:
    """``path`` must be a folder that can be written (created if missing)."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ValueError(f"{name} {str(path)!r} is a file; give a folder")
    _probe(name, path, path)
    return path


def _probe(name: str, path: Path, folder: Path) -> None:
    """Create ``folder`` if needed and write (then delete) a scratch file in it."""
    existing = next(parent for parent in (folder, *folder.parents) if parent.exists())
    if not existing.is_dir():
        raise ValueError(f"{name} {str(path)!r} cannot be written: {str(existing)!r} is a file")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        scratch = folder / f".crossent-write-check-{os.getpid()}"
        os.close(os.open(scratch, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        scratch.unlink()
    except OSError as error:
        reason = error.strerror or str(error)
        raise ValueError(f"{name} {str(path)!r} cannot be written: {reason}") from None
