"""Array namespace, dtype policy and small helpers shared by every core module.

Every public function accepts NumPy, PyTorch, JAX, CuPy or TensorFlow arrays (and
Python lists, which become NumPy arrays) and returns an array of the same library.
The array library is found with ``array_api_compat.array_namespace`` (TensorFlow,
which it does not cover, through :mod:`crossent._tensorflow`); all arithmetic goes
through that namespace, so PyTorch autograd, JAX tracing and TensorFlow's
``GradientTape`` see ordinary differentiable operations.
"""

from __future__ import annotations

import functools
import math
import re
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import array_api_compat
import numpy as np

from . import _tensorflow
from ._tensorflow import is_tensorflow_array

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

    # TensorFlow's autograph calls functions carrying this attribute as they are (its
    # do_not_convert marker): every wrapper shares one code object, which its cache of
    # converted functions would confuse inside tf.function
    wrapper.autograph_info__ = frozenset()  # type: ignore[attr-defined]
    return wrapper  # type: ignore[return-value]


def is_array(value: object) -> bool:
    """Whether ``value`` is an array of a supported library (not a list or scalar)."""
    if is_tensorflow_array(value):
        return True
    return array_api_compat.is_array_api_obj(value) and not isinstance(value, (int, float, bool))


def to_numpy(value: object) -> np.ndarray:
    """A NumPy array of ``value``: a list or an array of any library (torch: detached, on the host)."""
    if hasattr(value, "detach"):  # torch
        value = value.detach().cpu().numpy()
    return np.asarray(value)


def _row_lengths(value: object) -> str:
    """The lengths of ``value``'s rows, for the message on ragged input (``2, 1``)."""
    rows = value if isinstance(value, (list, tuple)) else []
    lengths = [len(row) if isinstance(row, (list, tuple)) else 1 for row in rows]
    shown = ", ".join(map(str, lengths[:6])) + (", ..." if len(lengths) > 6 else "")
    return shown


def require_given(name: str, value: object) -> None:
    """A TypeError naming the argument ``name`` when a required array ``value`` is None."""
    if value is None:
        raise TypeError(
            f"{name} must be an array or a list of numbers (NumPy, PyTorch, JAX, CuPy or "
            f"TensorFlow), got None; pass {name}"
        )


def python_array(
    value: object, name: str, dtype: Any = None, *, labels: bool = False
) -> np.ndarray:
    """A list, tuple or Python number as a NumPy array (of ``dtype`` if given).

    The one conversion of Python input: ``None``, ragged rows and values that are not
    numbers (strings, objects) raise here, naming the argument ``name`` and the fix,
    instead of NumPy's "inhomogeneous shape" or "could not convert string". With
    ``labels=True`` strings are accepted (class labels of any kind, as scikit-learn's).
    """
    require_given(name, value)
    try:
        array = np.asarray(value)
    except ValueError as error:
        if "inhomogeneous" not in str(error) and "sequence" not in str(error):
            raise
        raise ValueError(
            f"{name} is ragged: its rows have different lengths ({_row_lengths(value)}); an "
            f"array needs rows of one length: pad the short rows (and leave the padding out "
            f"with where= or ignore_index)"
        ) from None
    if not (labels and array.dtype.kind in "US"):
        check_numbers(name, array)
    return array if dtype is None else array.astype(dtype)


def check_numbers(name: str, array: Array) -> None:
    """``array`` must hold real numbers (bool, integers, real floats): strings, objects and
    complex numbers (whose imaginary part a cast would drop) raise a TypeError naming ``name``."""
    dtype = getattr(array, "dtype", None)
    kind = getattr(dtype, "kind", None)  # NumPy dtypes (and CuPy's, which are NumPy's)
    if kind is None:
        text = str(dtype)
        kind = "c" if "complex" in text else "O" if "string" in text or "object" in text else ""
    if kind == "V" and re.fullmatch(r"u?int\d+|b?float\d+\w*", str(dtype)):
        kind = "f"  # ml_dtypes' bfloat16, float8_*, int4 (what JAX and Keras give NumPy): numbers
    if kind in ("U", "S"):
        first = np.asarray(array).reshape(-1)[:1].tolist()
        found = f"strings (first {first[0]!r})" if first else "strings"
        raise TypeError(
            f"{name} must hold numbers, got {found}; convert them first (class names to "
            f"class indices, e.g. with numpy.unique(names, return_inverse=True))"
        )
    if kind in ("O", "V", "M", "m"):
        sample = np.asarray(array).reshape(-1)[:1].tolist() if kind == "O" else []
        found = f"objects of type {type(sample[0]).__name__}" if sample else f"dtype {dtype}"
        raise TypeError(
            f"{name} must hold numbers, got {found}; pass a numeric array or a list of numbers "
            f"(rows of one length)"
        )
    if kind == "c":
        raise TypeError(
            f"{name} must hold real numbers, got dtype {dtype}; cross-entropy is defined for "
            f"real values: pass the real part explicitly if that is what you mean "
            f"({name}.real)"
        )


def _from_python(value: object, floating: bool, name: str) -> np.ndarray:
    array = python_array(value, name)
    if floating and array.dtype.kind in "biu":
        # a list has no dtype intent: [1, 2, 3] given as logits means floats
        array = array.astype(np.float64)
    return array


def _converted(value: object, floating: bool, name: str) -> Array:
    """An array passes through (checked to hold real numbers); anything else is converted."""
    if is_array(value):
        check_numbers(name, value)
        return value
    return _from_python(value, floating, name)


def as_array(value: object, *, name: str = "input") -> Array:
    """Arrays pass through; lists, tuples and Python numbers become NumPy arrays.

    ``None``, ragged rows, strings and complex values raise, naming ``name``.
    """
    return _converted(value, False, name)


def as_float_array(value: object, *, name: str = "input") -> Array:
    """Like :func:`as_array`, but a list of Python ints becomes float64 (a list has no dtype intent).

    Arrays keep their dtype: an integer *array* passed as logits is reported by
    the validators, because it is usually a mistake (targets passed as logits).
    """
    return _converted(value, True, name)


def namespace(*arrays: object) -> Any:
    """The array-API namespace shared by the arrays among ``arrays`` (others are skipped)."""
    present = [a for a in arrays if a is not None and is_array(a)]
    if not present:
        return array_api_compat.array_namespace(np.empty(0))
    tensorflow = [is_tensorflow_array(a) for a in present]
    try:
        if any(tensorflow):
            if all(tensorflow):
                return _tensorflow.namespace()
            raise TypeError("Multiple namespaces")
        return array_api_compat.array_namespace(*present)
    except TypeError as error:
        if "Multiple namespaces" not in str(error):
            raise
        kinds = sorted({f"{type(a).__module__.split('.')[0]}.{type(a).__name__}" for a in present})
        raise TypeError(
            f"the arrays passed mix array libraries ({', '.join(kinds)}); pass arrays of one "
            f"library (lists are fine), e.g. convert with torch.as_tensor or jax.numpy.asarray"
        ) from None


def arrays_in_namespace(
    *values: object, floating: tuple[bool, ...], names: tuple[str, ...], required: int
) -> tuple[Any, list[Array]]:
    """The shared namespace of the arrays among ``values``, and every value as its array.

    Lists, tuples and numbers are converted to that library (on the device of the
    first array), so ``cross_entropy(torch_logits, [2, 1])`` works; ``floating[i]``
    says whether a list at position ``i`` holds floats (logits, probabilities,
    weights). The first ``required`` values must be given; a later ``None`` (an
    optional argument) stays ``None``. Errors name the argument ``names[i]``.
    """
    given = [
        None if value is None and index >= required else (value, _converted(value, floating[index], name))
        for index, (value, name) in enumerate(zip(values, names, strict=True))
    ]  # None, ragged rows, strings: one message, before any library sees them
    xp = namespace(*values)
    present = [v for v in values if v is not None and is_array(v)]
    device = device_of(present[0]) if present else None
    converted: list[Array] = []
    for entry in given:
        if entry is None or is_array(entry[0]):
            converted.append(None if entry is None else entry[1])
            continue
        array = entry[1]
        converted.append(array if not present or isinstance(present[0], np.ndarray)
                         else xp.asarray(array, device=device))
    return xp, converted


def device_of(x: Array) -> Any:
    """The device of ``x`` (None for TensorFlow tensors, which place operations themselves)."""
    return None if is_tensorflow_array(x) else array_api_compat.device(x)


def has_autograd(xp: Any) -> bool:
    """Whether arrays of ``xp`` may carry derivatives (every library but NumPy)."""
    return not array_api_compat.is_numpy_namespace(xp)


def stop_gradient(value: Array) -> Array:
    """``value`` cut from autograd (torch ``detach``, JAX and TF ``stop_gradient``; NumPy as is)."""
    if hasattr(value, "detach"):
        return value.detach()
    if type(value).__module__.startswith("jax"):
        return sys.modules["jax"].lax.stop_gradient(value)
    if is_tensorflow_array(value):
        return sys.modules["tensorflow"].stop_gradient(value)
    return value


def is_floating(xp: Any, dtype: Any) -> bool:
    """Whether ``dtype`` is a real floating dtype (including bfloat16, also ml_dtypes' for NumPy)."""
    try:
        return bool(xp.isdtype(dtype, "real floating"))
    except (TypeError, ValueError):
        return str(dtype) == "bfloat16"  # NumPy arrays of ml_dtypes.bfloat16 (Keras, JAX)


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


def _is_abstract_error(error: Exception) -> bool:
    """Whether ``error`` says a value has no concrete value here (a trace or a vmap).

    JAX raises TracerBoolConversionError / ConcretizationTypeError inside ``jit``;
    ``torch.func.vmap`` raises a RuntimeError about data-dependent control flow;
    TensorFlow refuses ``bool`` of a symbolic tensor inside ``tf.function``.
    """
    name = type(error).__name__
    if "Tracer" in name or "Concretization" in name:
        return True
    message = str(error)
    return (
        "data-dependent control flow" in message  # torch.func.vmap
        or "symbolic" in message and "Tensor" in message  # tf.function graph tensors
        or "OperatorNotAllowedInGraphError" in name
    )


def concrete_bool(value: Any) -> bool | None:
    """``bool(value)``, or ``None`` when the value is abstract (``jax.jit``, ``torch.func.vmap``,
    ``tf.function``).

    Input checks run only when values are concrete; under a trace they are
    skipped, as the docstrings say.
    """
    try:
        return bool(value)
    except Exception as error:
        if _is_abstract_error(error):
            return None
        raise


def concrete_int(value: Any) -> int | None:
    """``int(value)``, or ``None`` when the value is abstract (see :func:`concrete_bool`)."""
    try:
        return int(value)
    except Exception as error:
        if _is_abstract_error(error):
            return None
        raise


def carries_derivative(value: object) -> bool:
    """Whether ``value`` is an array a derivative may flow through (or a trace's placeholder).

    True for JAX tracers (``jit``, ``grad``, ``vmap``), torch tensors that require grad or
    are wrapped by ``torch.func``, and TensorFlow tensors (a ``GradientTape`` may watch
    them); False for Python and NumPy numbers and for plain arrays. A hyperparameter that
    carries a derivative is kept as an array, so ``jax.grad`` over ``gamma`` works.
    """
    module = type(value).__module__
    if module.startswith("jax"):
        return "Tracer" in type(value).__name__
    if module.startswith("torch"):
        if getattr(value, "requires_grad", False):
            return True
        functorch = sys.modules.get("torch._C._functorch")
        return bool(functorch is not None and functorch.is_functorch_wrapped_tensor(value))
    return module.startswith("tensorflow")


def hyperparameter(value: Any) -> Any:
    """A hyperparameter (label_smoothing, alpha, gamma, ...) as a Python float, or as its array.

    Python and NumPy numbers and 0-d arrays become ``float``; an array that carries a
    derivative (:func:`carries_derivative`) stays an array, so that gradients w.r.t.
    it exist and a JAX trace keeps it abstract. Anything else is returned unchanged for
    the validators to report.
    """
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float, np.integer, np.floating)):
        return float(value)
    if is_array(value) or type(value).__module__.startswith("tensorflow"):
        if int(getattr(value, "ndim", len(getattr(value, "shape", ())))) != 0:
            return value
        if carries_derivative(value):
            return value
        dtype = getattr(value, "dtype", None)
        if dtype is not None and "bool" in str(dtype):
            return value
        return float(value)
    return value


def is_zero(value: Any) -> bool:
    """Whether a hyperparameter is the Python number 0 (an array never is: its derivative counts)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value == 0


def first_where(xp: Any, x: Array, mask: Array) -> Array:
    """The first element of ``x`` where ``mask`` holds (for error messages; ``mask`` has one)."""
    flat_mask = xp.reshape(xp.broadcast_to(mask, x.shape), (-1,))
    index = xp.argmax(xp.astype(flat_mask, xp.int8))
    return xp.reshape(x, (-1,))[index]


def static_shape(x: Array) -> tuple[int | None, ...]:
    """``x``'s shape as Python ints; None for a dimension unknown while tracing (the batch
    dimension of a TensorFlow graph, e.g. in Keras's ``model.fit``)."""
    return tuple(None if d is None else int(d) for d in x.shape)


def num_elements(xp: Any, x: Array, dtype: Any) -> Array:
    """The number of elements of ``x``, as a 0-d array of ``dtype`` (a divisor of 'mean').

    A Python count where the shape is known; counted by the graph where it is not.
    """
    shape = static_shape(x)
    if None not in shape:
        return xp.asarray(math.prod(shape), dtype=dtype)  # type: ignore[arg-type]
    return xp.sum(xp.ones_like(x, dtype=dtype))


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

    Only where the coefficient is zero *and* the value is not finite is the value
    replaced by 0 before the product, so no ``0 * inf`` reaches autograd, and the
    derivative in the coefficient is the value wherever the value is finite —
    also where the coefficient is 0 (d/dt of -t·log q at t = 0 is -log q). Where
    the value is infinite and the coefficient 0, the derivative in the coefficient
    is 0 (the mathematics gives ±inf there). A NaN value stays NaN whatever the
    coefficient: a NaN input propagates (as in PyTorch), never a silent 0.
    """
    replaced = (coefficient == 0) & ((value == math.inf) | (value == -math.inf))  # ±inf, not NaN
    return coefficient * xp.where(replaced, xp.zeros_like(value), value)


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
    # the default integer dtype, not target's: uint8 indices with more than 256 classes
    # must not wrap around (class 256 would match index 0)
    classes = xp.arange(num_classes, device=device_of(target))
    return xp.astype(xp.expand_dims(target, axis=-1) == classes, dtype)
