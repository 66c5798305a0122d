"""Array namespace, dtype policy and small helpers shared by every core module.

Every public function accepts NumPy, PyTorch, JAX or CuPy arrays (and Python
lists, which become NumPy arrays) and returns an array of the same library.
The array library is found with ``array_api_compat.array_namespace``; all
arithmetic goes through that namespace, so PyTorch autograd and JAX tracing
see ordinary differentiable operations.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any, TypeVar

import array_api_compat
import numpy as np

Array = Any
"""Any array of a library with an array-API namespace (NumPy, PyTorch, JAX, CuPy)."""

F = TypeVar("F", bound=Callable[..., Any])


def quiet(function: F) -> F:
    """Run ``function`` with NumPy's floating-point warnings off.

    log(0) = -inf, 0·inf handled by ``where`` and NaN inputs are expected here and
    documented; NumPy would otherwise print a RuntimeWarning for each. Other
    libraries do not warn, so this only matters for NumPy inputs.
    """

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with np.errstate(divide="ignore", invalid="ignore", over="ignore", under="ignore"):
            return function(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def is_array(value: object) -> bool:
    """Whether ``value`` is an array of a supported library (not a list or scalar)."""
    return array_api_compat.is_array_api_obj(value) and not isinstance(value, (int, float, bool))


def _from_python(value: object, floating: bool) -> np.ndarray:
    array = np.asarray(value)
    if floating and array.dtype.kind in "biu":
        # a list has no dtype intent: [1, 2, 3] given as logits means floats
        array = array.astype(np.float64)
    return array


def as_array(value: object) -> Array:
    """Arrays pass through; lists, tuples and Python numbers become NumPy arrays."""
    return value if is_array(value) else _from_python(value, floating=False)


def as_float_array(value: object) -> Array:
    """Like :func:`as_array`, but a list of Python ints becomes float64 (a list has no dtype intent).

    Arrays keep their dtype: an integer *array* passed as logits is reported by
    the validators, because it is usually a mistake (targets passed as logits).
    """
    return value if is_array(value) else _from_python(value, floating=True)


def namespace(*arrays: object) -> Any:
    """The array-API namespace shared by the arrays among ``arrays`` (others are skipped)."""
    present = [a for a in arrays if a is not None and is_array(a)]
    if not present:
        return array_api_compat.array_namespace(np.empty(0))
    try:
        return array_api_compat.array_namespace(*present)
    except TypeError as error:
        if "Multiple namespaces" not in str(error):
            raise
        kinds = sorted({f"{type(a).__module__.split('.')[0]}.{type(a).__name__}" for a in present})
        raise TypeError(
            f"the arrays passed mix array libraries ({', '.join(kinds)}); pass arrays of one "
            f"library (lists are fine), e.g. convert with torch.as_tensor or jax.numpy.asarray"
        ) from None


def arrays_in_namespace(*values: object, floating: tuple[bool, ...]) -> tuple[Any, list[Array]]:
    """The shared namespace of the arrays among ``values``, and every value as its array.

    Lists, tuples and numbers are converted to that library (on the device of the
    first array), so ``cross_entropy(torch_logits, [2, 1])`` works; ``floating[i]``
    says whether a list at position ``i`` holds floats (logits, probabilities,
    weights). ``None`` stays ``None``.
    """
    xp = namespace(*values)
    present = [v for v in values if v is not None and is_array(v)]
    device = array_api_compat.device(present[0]) if present else None
    converted: list[Array] = []
    for value, is_float in zip(values, floating, strict=True):
        if value is None or is_array(value):
            converted.append(value)
            continue
        array = _from_python(value, is_float)
        converted.append(array if not present or isinstance(present[0], np.ndarray)
                         else xp.asarray(array, device=device))
    return xp, converted


def is_floating(xp: Any, dtype: Any) -> bool:
    """Whether ``dtype`` is a real floating dtype (including bfloat16)."""
    try:
        return bool(xp.isdtype(dtype, "real floating"))
    except (TypeError, ValueError):
        return False


def is_integer(xp: Any, dtype: Any) -> bool:
    """Whether ``dtype`` is a signed or unsigned integer dtype (not bool)."""
    try:
        return bool(xp.isdtype(dtype, "integral"))
    except (TypeError, ValueError):
        return False


def compute_dtype(xp: Any, dtype: Any) -> Any:
    """The dtype computations run in: 16-bit floats are computed in float32."""
    if xp.finfo(dtype).bits < 32:
        return xp.float32
    return dtype


def to_compute(xp: Any, x: Array) -> Array:
    """``x`` in its computation dtype (16-bit floats upcast to float32)."""
    dtype = compute_dtype(xp, x.dtype)
    return x if dtype == x.dtype else xp.astype(x, dtype)


def concrete_bool(value: Any) -> bool | None:
    """``bool(value)``, or ``None`` when the value is abstract (inside ``jax.jit``).

    Input checks run only when values are concrete; under a JAX trace they are
    skipped, as the docstrings say.
    """
    try:
        return bool(value)
    except Exception as error:  # jax raises TracerBoolConversionError / ConcretizationTypeError
        if "Tracer" in type(error).__name__ or "Concretization" in type(error).__name__:
            return None
        raise


def concrete_int(value: Any) -> int | None:
    """``int(value)``, or ``None`` when the value is abstract (inside ``jax.jit``)."""
    try:
        return int(value)
    except Exception as error:
        if "Tracer" in type(error).__name__ or "Concretization" in type(error).__name__:
            return None
        raise


def log_base(base: float) -> float:
    """``log(base)``: divide natural logarithms by it to change units (nats → bits for 2)."""
    if not isinstance(base, (int, float)) or isinstance(base, bool) or base <= 0 or base == 1:
        raise ValueError(
            f"base must be a positive number other than 1 (math.e for nats, 2 for bits), "
            f"got {base!r}"
        )
    return math.log(base)


def mul_zero_safe(xp: Any, coefficient: Array, value: Array) -> Array:
    """``coefficient * value`` with ``0 * ±inf = 0`` (the convention 0·log 0 = 0).

    The double ``where`` keeps gradients finite: where the coefficient is zero the
    value is replaced by 0 *before* the product, so no ``0 * inf`` reaches autograd.
    """
    is_zero = coefficient == 0
    return coefficient * xp.where(is_zero, xp.zeros_like(value), value)


def move_class_axis_last(xp: Any, x: Array, axis: int) -> Array:
    """``x`` with ``axis`` moved to the end (a view where the library allows it)."""
    if axis in (-1, x.ndim - 1):
        return x
    return xp.moveaxis(x, axis, -1)


def move_class_axis_back(xp: Any, x: Array, axis: int) -> Array:
    """Inverse of :func:`move_class_axis_last`."""
    if axis in (-1, x.ndim - 1):
        return x
    return xp.moveaxis(x, -1, axis)


def one_hot(xp: Any, target: Array, num_classes: int, dtype: Any) -> Array:
    """``target[..., None] == arange(num_classes)`` as ``dtype``; out-of-range indices give a zero row."""
    classes = xp.arange(num_classes, dtype=target.dtype, device=array_api_compat.device(target))
    return xp.astype(xp.expand_dims(target, axis=-1) == classes, dtype)
