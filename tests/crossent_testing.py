"""Shared test helpers: optional frameworks, printed-digit comparisons, finite differences.

Imported by the test modules as ``from crossent_testing import ...`` (not from
``conftest``: a second conftest.py in a sub-folder, e.g. tests/conformance/,
would make ``import conftest`` ambiguous).
"""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import pytest

try:
    import torch
except ImportError:  # pragma: no cover - torch is in the test extras
    torch = None

try:
    import jax

    # float64 references need x64; float32 arrays stay float32 (dtypes are explicit below)
    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp
except ImportError:  # pragma: no cover - jax is in the test extras
    jax = None
    jnp = None

requires_torch = pytest.mark.skipif(torch is None, reason="needs torch")
requires_jax = pytest.mark.skipif(jax is None, reason="needs jax")


def to_numpy(x: object) -> np.ndarray:
    """Any array (NumPy, torch incl. bfloat16, JAX) as a float64 NumPy array of its values."""
    if torch is not None and isinstance(x, torch.Tensor):
        x = x.detach()
        if x.is_floating_point():
            x = x.to(torch.float64)
        return x.cpu().numpy()
    array = np.asarray(x)
    return array.astype(np.float64) if array.dtype.kind == "f" else array


def printed_unit(text: str) -> float:
    """One unit in the last digit of a number as printed: '1.2005' -> 1e-4, '6.14e-06' -> 1e-8."""
    return float(Decimal(1).scaleb(Decimal(text).as_tuple().exponent))


def assert_printed(value: object, printed: str | list, *, units: float = 0.5) -> None:
    """``value`` agrees with the seed's printed number(s) to the digits printed.

    ``units=0.5`` means "rounds to the printed digits" (the printed value is the
    correctly rounded result); ``units=1`` allows one unit in the last digit, used
    where the seed truncated or computed in lower precision (each use says why).
    """
    values = to_numpy(value)
    texts = np.asarray(printed, dtype=object)
    assert values.shape == texts.shape, (values.shape, texts.shape)
    for index, text in np.ndenumerate(texts):
        tolerance = units * printed_unit(str(text)) * (1 + 1e-9)
        got = float(values[index])
        assert abs(got - float(text)) <= tolerance, (
            f"at {index}: got {got!r}, the seed prints {text} (tolerance {tolerance:g})"
        )


def assert_float32_printed(value: object, printed: list, *, ulps: float) -> None:
    """``value`` within ``ulps`` float32 spacings of numbers a seed printed from float32 results.

    TF 1.x (seed 002) computed in float32 and printed more digits than float32 holds, so
    the last printed digits carry TF's own float32 rounding; "to the digits printed" is
    then "to float32 precision": a float64 reference lands within 1 ulp of them, a float32
    computation along a different (stable) path within 2.
    """
    values = to_numpy(value)
    expected = np.asarray(printed, dtype=np.float64)
    spacing = np.spacing(expected.astype(np.float32)).astype(np.float64)
    error = np.abs(values - expected) / spacing
    assert np.all(error <= ulps), f"errors in float32 ulps: {error}"


def central_difference(function, x: np.ndarray, step: float = 1e-6) -> np.ndarray:
    """d sum(function(x)) / dx by central differences in float64 (the reference for grad.*)."""
    x = np.asarray(x, dtype=np.float64)
    gradient = np.zeros_like(x)
    for index in np.ndindex(x.shape):
        plus, minus = x.copy(), x.copy()
        plus[index] += step
        minus[index] -= step
        gradient[index] = (np.sum(function(plus)) - np.sum(function(minus))) / (2 * step)
    return gradient


def tolerance(dtype: object) -> dict[str, float]:
    """rtol/atol for comparing crossent with a framework in ``dtype`` (float32 or float64)."""
    name = str(dtype)
    if "float64" in name:
        return {"rtol": 1e-10, "atol": 1e-12}
    if "float32" in name:
        return {"rtol": 2e-5, "atol": 2e-6}
    return {"rtol": 1e-2, "atol": 1e-2}  # 16-bit inputs


def assert_close(actual: object, expected: object, dtype: object = "float64", **overrides) -> None:
    """Compare values of any library with the per-dtype tolerance (NaN equals NaN)."""
    options = tolerance(dtype) | overrides
    np.testing.assert_allclose(to_numpy(actual), to_numpy(expected), equal_nan=True, **options)
