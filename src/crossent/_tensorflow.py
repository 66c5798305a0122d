"""An array-API namespace for TensorFlow tensors: the functions crossent's core calls.

array-api-compat covers NumPy, PyTorch, JAX and CuPy but not TensorFlow, so this
module maps the few array-API functions the core uses onto ``tf`` operations. The
core then runs on TensorFlow tensors as it does on the others: eager tensors under
``tf.GradientTape`` (every operation is a TF op, so the tape sees the whole loss,
gradients of any order), and symbolic tensors inside ``tf.function`` / Keras's
``model.fit`` (value checks are skipped there, as under ``jax.jit``; dimensions
unknown when tracing, such as the batch, stay dynamic).

Only what the core needs is here; it is reached through :func:`crossent._array.namespace`
when an argument is a ``tf.Tensor`` or ``tf.Variable``, and imports TensorFlow only then.
"""

from __future__ import annotations

import builtins
import sys
from types import ModuleType, SimpleNamespace
from typing import Any

_KINDS = {
    "real floating": lambda dtype: dtype.is_floating,
    "integral": lambda dtype: dtype.is_integer,
    "bool": lambda dtype: dtype == sys.modules["tensorflow"].bool,
}


def is_tensorflow_array(value: object) -> bool:
    """Whether ``value`` is a TensorFlow tensor or variable (without importing TensorFlow)."""
    tf = sys.modules.get("tensorflow")
    if tf is None or not type(value).__module__.startswith(("tensorflow", "tf_keras", "keras")):
        return False
    return bool(tf.is_tensor(value) or isinstance(value, tf.Variable))


def keep_autograph_out() -> None:
    """Ask TensorFlow's autograph not to rewrite crossent's code (once, if TF is imported).

    Inside ``tf.function`` autograph rewrites the Python it calls (``if`` on tensors into
    ``tf.cond``, ...). crossent's code branches only on Python values and is written for
    any array library, so it runs as it is; a rewrite could only change it (autograph
    caches converted functions by code object, which decorated functions share). This
    adds crossent to autograph's do-not-convert rules, as TensorFlow lists NumPy there;
    if that (private) list moves in a later TensorFlow, nothing is changed.
    """
    global _AUTOGRAPH_RULE_ADDED
    if _AUTOGRAPH_RULE_ADDED or "tensorflow" not in sys.modules:
        return
    _AUTOGRAPH_RULE_ADDED = True
    try:
        from tensorflow.python.autograph.core import config
    except ImportError:  # pragma: no cover - a TensorFlow without autograph's config
        return
    rules = getattr(config, "CONVERSION_RULES", None)
    if isinstance(rules, tuple) and hasattr(config, "DoNotConvert"):
        config.CONVERSION_RULES = (config.DoNotConvert("crossent"), *rules)


_AUTOGRAPH_RULE_ADDED = False


def _axes(axis: Any) -> Any:
    return list(axis) if isinstance(axis, tuple) else axis


def namespace() -> Any:
    """The namespace object (built once): ``xp.where``, ``xp.sum``, ... on TF tensors."""
    global _NAMESPACE
    if _NAMESPACE is not None:
        return _NAMESPACE
    keep_autograph_out()
    tf = sys.modules["tensorflow"]

    def asarray(value: Any, dtype: Any = None, device: Any = None, copy: Any = None) -> Any:
        if tf.is_tensor(value):
            return value if dtype is None or value.dtype == dtype else tf.cast(value, dtype)
        return tf.convert_to_tensor(value, dtype=dtype)

    def isdtype(dtype: Any, kind: str) -> bool:
        return bool(_KINDS[kind](tf.as_dtype(dtype)))

    def full_like(x: Any, fill_value: Any, dtype: Any = None) -> Any:
        return tf.fill(tf.shape(x), tf.constant(fill_value, dtype=dtype or x.dtype))

    def moveaxis(x: Any, source: int, destination: int) -> Any:
        ndim = x.shape.rank
        order = [a for a in builtins.range(ndim) if a != source % ndim]
        order.insert(destination % ndim, source % ndim)
        return tf.transpose(x, order)

    def broadcast_to(x: Any, shape: Any) -> Any:
        return tf.broadcast_to(x, shape)

    def broadcast_arrays(*arrays: Any) -> list[Any]:
        shape = tf.shape(arrays[0])
        for array in arrays[1:]:
            shape = tf.broadcast_dynamic_shape(shape, tf.shape(array))
        return [tf.broadcast_to(array, shape) for array in arrays]

    def reduction(function: Any) -> Any:
        def reduce(x: Any, axis: Any = None, keepdims: bool = False) -> Any:
            return function(x, axis=_axes(axis), keepdims=keepdims)
        return reduce

    def finfo(dtype: Any) -> Any:
        dtype = tf.as_dtype(dtype)
        return SimpleNamespace(bits=dtype.size * 8, max=dtype.max, min=dtype.min)

    def where(condition: Any, x1: Any, x2: Any) -> Any:
        return tf.where(condition, x1, x2)

    def argmax(x: Any, axis: Any = None, keepdims: bool = False) -> Any:
        if axis is None:
            x, axis = tf.reshape(x, [-1]), 0
        result = tf.argmax(x, axis=axis)
        return tf.expand_dims(result, axis) if keepdims else result

    def squeeze(x: Any, axis: Any) -> Any:
        return tf.squeeze(x, axis=_axes(axis))

    def clip(x: Any, min: Any = None, max: Any = None) -> Any:  # noqa: A002 (array-API names)
        low = x.dtype.min if min is None else min
        high = x.dtype.max if max is None else max
        return tf.clip_by_value(x, tf.cast(low, x.dtype), tf.cast(high, x.dtype))

    _NAMESPACE = ModuleType("crossent._tensorflow.namespace")  # a module: hashable, like the others
    _NAMESPACE.__dict__.update(
        bool=tf.bool, float16=tf.float16, bfloat16=tf.bfloat16, float32=tf.float32,
        float64=tf.float64, int8=tf.int8, int32=tf.int32, int64=tf.int64,
        asarray=asarray, astype=lambda x, dtype, copy=True: tf.cast(x, dtype),
        isdtype=isdtype, finfo=finfo, result_type=tf.experimental.numpy.result_type,
        where=where, zeros_like=tf.zeros_like, ones_like=tf.ones_like, full_like=full_like,
        arange=lambda stop, dtype=None, device=None: tf.range(stop, dtype=dtype or tf.int64),
        exp=tf.exp, expm1=tf.math.expm1, log=tf.math.log, log1p=tf.math.log1p,
        isfinite=tf.math.is_finite, isnan=tf.math.is_nan, abs=tf.abs,
        minimum=tf.minimum, maximum=tf.maximum, clip=clip,
        sum=reduction(tf.reduce_sum), max=reduction(tf.reduce_max),
        min=reduction(tf.reduce_min), mean=reduction(tf.reduce_mean),
        any=reduction(tf.reduce_any), all=reduction(tf.reduce_all), argmax=argmax,
        expand_dims=lambda x, axis: tf.expand_dims(x, axis), squeeze=squeeze,
        reshape=lambda x, shape, copy=None: tf.reshape(x, shape), moveaxis=moveaxis,
        permute_dims=lambda x, axes: tf.transpose(x, list(axes)),
        broadcast_to=broadcast_to, broadcast_arrays=broadcast_arrays,
        take=lambda x, indices, axis=None: tf.gather(x, indices, axis=axis or 0),
        concat=lambda arrays, axis=0: tf.concat(list(arrays), axis=axis),
        stop_gradient=tf.stop_gradient,
    )
    return _NAMESPACE


_NAMESPACE: Any = None


keep_autograph_out()  # TensorFlow imported before crossent (e.g. by Keras): before any trace
