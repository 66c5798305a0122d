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
    if np.dtype(dtype).name == "bfloat16":  # 8 bits of mantissa; frameworks round each step
        return (4e-2, 4e-2)
    return TOLERANCES[np.dtype(dtype)]


def torch_value_and_grad(function: Any, first: Any, second: Any, *, grad_of: str = "second",
                         **kwargs: Any) -> tuple[np.ndarray, np.ndarray | None]:
    """``function(first, second, **kwargs)`` on torch tensors; gradient of the summed value
    w.r.t. the argument named by ``grad_of`` ("first", "second" or None)."""
    import torch

    first_t = _torch_tensor(first).requires_grad_(grad_of == "first")
    second_t = _torch_tensor(second).requires_grad_(grad_of == "second")
    value = function(first_t, second_t, **kwargs)
    grad = None
    if grad_of is not None:
        wrt = first_t if grad_of == "first" else second_t
        (grad,) = torch.autograd.grad(value.sum(), wrt, allow_unused=True)
        grad = np.zeros(wrt.shape) if grad is None else _numpy(grad)
    return _numpy(value), grad


def _torch_tensor(array: Any) -> Any:
    """``torch.tensor(array)``, also for ml_dtypes' bfloat16 (which torch cannot read)."""
    import torch

    array = np.asarray(array)
    if array.dtype.name == "bfloat16":
        return torch.tensor(array.astype(np.float32)).to(torch.bfloat16)
    return torch.tensor(array)


def _numpy(tensor: Any) -> np.ndarray:
    """A torch tensor as NumPy; bfloat16 becomes ml_dtypes' bfloat16."""
    import torch

    tensor = tensor.detach()
    if tensor.dtype == torch.bfloat16:
        import ml_dtypes

        return tensor.float().numpy().astype(ml_dtypes.bfloat16)
    return tensor.numpy()


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
