"""Run a crossent.compat function on torch tensors (autograd) and compare with a reference."""

from __future__ import annotations

from typing import Any

import numpy as np

TOLERANCES = {  # (rtol, atol) per dtype of y_pred
    np.dtype(np.float64): (1e-7, 1e-9),
    np.dtype(np.float32): (2e-5, 2e-6),
    np.dtype(np.float16): (2e-2, 2e-2),
}


def tolerance(dtype: Any) -> tuple[float, float]:
    return TOLERANCES[np.dtype(dtype)]


def torch_value_and_grad(function: Any, first: Any, second: Any, *, grad_of: str = "second",
                         **kwargs: Any) -> tuple[np.ndarray, np.ndarray | None]:
    """``function(first, second, **kwargs)`` on torch tensors; gradient of the summed value
    w.r.t. the argument named by ``grad_of`` ("first", "second" or None)."""
    import torch

    first_t = torch.tensor(np.asarray(first), requires_grad=grad_of == "first")
    second_t = torch.tensor(np.asarray(second), requires_grad=grad_of == "second")
    value = function(first_t, second_t, **kwargs)
    grad = None
    if grad_of is not None:
        wrt = first_t if grad_of == "first" else second_t
        (grad,) = torch.autograd.grad(value.sum(), wrt, allow_unused=True)
        grad = np.zeros(wrt.shape) if grad is None else grad.detach().numpy()
    return value.detach().numpy(), grad


def assert_close(actual: Any, expected: Any, dtype: Any, what: str) -> None:
    rtol, atol = tolerance(dtype)
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != {expected.shape}"
    np.testing.assert_allclose(
        actual.astype(np.float64), expected.astype(np.float64), rtol=rtol, atol=atol,
        equal_nan=True, err_msg=what,
    )


def jax_value_and_grad(function: Any, first: Any, second: Any, *, grad_of: str | None = "second",
                       **kwargs: Any) -> tuple[np.ndarray, np.ndarray | None]:
    """:func:`torch_value_and_grad` on JAX arrays with ``jax.grad`` (64-bit enabled locally)."""
    import jax
    import jax.numpy as jnp

    with jax.enable_x64(True):
        first_j, second_j = jnp.asarray(np.asarray(first)), jnp.asarray(np.asarray(second))
        value = function(first_j, second_j, **kwargs)
        grad = None
        if grad_of == "second":
            grad = jax.grad(lambda p: function(first_j, p, **kwargs).sum())(second_j)
        elif grad_of == "first":
            grad = jax.grad(lambda p: function(p, second_j, **kwargs).sum())(first_j)
        return np.asarray(value), None if grad is None else np.asarray(grad)
