"""First and second derivatives of a loss w.r.t. several of its arguments, per autograd system.

``derivatives(system, function, arrays, wrt, seed)`` calls ``function(**arrays)`` on
arrays of ``system`` ("torch", "jax", "tensorflow") and returns NumPy arrays:

- ``value``: the function's value;
- ``grad[name]``: d⟨c, f⟩/d name for each name in ``wrt`` (``c`` a fixed random
  cotangent of f's shape, so per-position outputs are weighed unequally);
- ``second[name]``: d⟨v, grad[wrt[0]]⟩/d name, a row of mixed second derivatives along a
  fixed random direction ``v`` (the Hessian-vector product for ``name == wrt[0]``).

An argument the function does not depend on gets zeros. The same code computes the
framework's numbers and crossent's, so any difference is the functions'. The Keras
worker imports this module to differentiate Keras's losses on its own backend.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def _probes(value_shape: tuple[int, ...], first_shape: tuple[int, ...], seed: int):
    rng = np.random.default_rng(seed)
    return rng.uniform(0.5, 1.5, size=value_shape), rng.normal(size=first_shape)


def derivatives(system: str, function: Any, arrays: dict[str, Any], wrt: tuple[str, ...],
                seed: int = 0) -> dict[str, Any]:
    return {"torch": _torch, "jax": _jax, "tensorflow": _tensorflow}[system](
        function, {k: np.asarray(v) for k, v in arrays.items()}, wrt, seed
    )


def _torch(function, arrays, wrt, seed):
    import torch

    tensors = {k: torch.tensor(v, requires_grad=k in wrt) for k, v in arrays.items()}
    value = function(**tensors)
    cotangent, direction = _probes(tuple(value.shape), arrays[wrt[0]].shape, seed)
    total = (value * torch.tensor(cotangent, dtype=value.dtype)).sum()
    inputs = [tensors[k] for k in wrt]
    first = torch.autograd.grad(total, inputs, create_graph=True, allow_unused=True)
    first = [torch.zeros_like(x) if g is None else g for x, g in zip(inputs, first, strict=True)]
    second: list[Any] = [None] * len(wrt)
    if first[0].requires_grad:
        along = (first[0] * torch.tensor(direction, dtype=first[0].dtype)).sum()
        second = list(torch.autograd.grad(along, inputs, allow_unused=True))
    second = [torch.zeros_like(x) if g is None else g for x, g in zip(inputs, second, strict=True)]
    numpy = lambda t: t.detach().numpy()  # noqa: E731
    return {"value": numpy(value), "grad": {k: numpy(g) for k, g in zip(wrt, first, strict=True)},
            "second": {k: numpy(g) for k, g in zip(wrt, second, strict=True)}}


def _jax(function, arrays, wrt, seed):
    import jax
    import jax.numpy as jnp

    with jax.enable_x64(True):
        fixed = {k: jnp.asarray(v) for k, v in arrays.items() if k not in wrt}
        primals = tuple(jnp.asarray(arrays[k]) for k in wrt)

        def call(*values):
            return function(**fixed, **dict(zip(wrt, values, strict=True)))

        value = call(*primals)
        cotangent, direction = _probes(tuple(value.shape), arrays[wrt[0]].shape, seed)
        argnums = tuple(range(len(wrt)))

        def first(*values):
            return jax.grad(lambda *v: jnp.sum(call(*v) * cotangent), argnums=argnums)(*values)

        # one compiled program each (eagerly, every primitive of grad-of-grad compiles alone)
        grads = jax.jit(first)(*primals)
        second = jax.jit(jax.grad(lambda *v: jnp.sum(first(*v)[0] * direction),
                                  argnums=argnums))(*primals)
        return {"value": np.asarray(value),
                "grad": {k: np.asarray(g) for k, g in zip(wrt, grads, strict=True)},
                "second": {k: np.asarray(g) for k, g in zip(wrt, second, strict=True)}}


def _tensorflow(function, arrays, wrt, seed):
    import tensorflow as tf

    tensors = {k: tf.constant(v) for k, v in arrays.items()}
    inputs = [tensors[k] for k in wrt]
    with tf.GradientTape(persistent=True) as outer:
        outer.watch(inputs)
        with tf.GradientTape() as inner:
            inner.watch(inputs)
            value = function(**tensors)
            cotangent, direction = _probes(tuple(value.shape), arrays[wrt[0]].shape, seed)
            total = tf.reduce_sum(value * tf.constant(cotangent, dtype=value.dtype))
        first = inner.gradient(total, inputs, unconnected_gradients="zero")
        along = tf.reduce_sum(first[0] * tf.constant(direction, dtype=first[0].dtype))
    second = outer.gradient(along, inputs, unconnected_gradients="zero")
    return {"value": value.numpy(),
            "grad": {k: g.numpy() for k, g in zip(wrt, first, strict=True)},
            "second": {k: g.numpy() for k, g in zip(wrt, second, strict=True)}}
