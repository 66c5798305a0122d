"""Every path to a float32 cross-entropy, measured against float64 next to PyTorch.

Shared by ``tests/test_accuracy.py`` (which asserts crossent's error is at most 4x
PyTorch's) and ``benchmarks/accuracy_cross_entropy.py`` (which prints the table). A path
takes float32 logits, int64 targets (``-100`` for ignored) and options, and returns the
'mean' loss and its gradient w.r.t. the logits as NumPy arrays.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from cross_entropy_references import accuracy_inputs, float64_reference, relative_errors

IGNORE_INDEX = -100
ACCURACY_OPTIONS = ("plain", "smoothing", "weight", "ignore", "all")
FLOOR = float(np.finfo(np.float32).eps) / 2  # PyTorch exact to the last bit still allows this


def accuracy_options(name: str, num_rows: int, num_classes: int, target: np.ndarray,
                     seed: int = 11) -> tuple[np.ndarray, dict[str, Any]]:
    """(target, options) of an option set: 'smoothing' ε = 0.1, 'weight' class weights in
    [0.5, 2], 'ignore' 10% of the targets -100, 'all' the three together."""
    rng = np.random.default_rng(seed)
    options: dict[str, Any] = {}
    if name in ("smoothing", "all"):
        options["label_smoothing"] = 0.1
    if name in ("weight", "all"):
        options["weight"] = rng.uniform(0.5, 2.0, num_classes).astype(np.float32)
    if name in ("ignore", "all"):
        target = np.where(rng.random(num_rows) < 0.1, IGNORE_INDEX, target)
    return target, options


@contextlib.contextmanager
def _patched(module: Any, **attributes: Any) -> Iterator[None]:
    saved = {name: getattr(module, name) for name in attributes}
    for name, value in attributes.items():
        setattr(module, name, value)
    try:
        yield
    finally:
        for name, value in saved.items():
            setattr(module, name, value)


def _numpy_path(kind: str) -> Callable[..., tuple[Any, Any]]:
    def run(logits, target, **options):
        import crossent as ce
        from crossent import kernels
        from crossent.kernels import _numpy as numpy_rows

        if kind == "generic":
            context = _patched(kernels, applies=lambda inputs: False)
        elif kind == "numpy":
            context = _patched(kernels, _rows=numpy_rows)
        else:
            from crossent.kernels import _numba as numba_rows

            context = _patched(kernels, _rows=numba_rows)
        with context:
            return ce.value_and_grad(ce.cross_entropy, logits, target, **options)

    return run


def _weight_as(convert: Callable[[np.ndarray], Any], options: dict[str, Any]) -> dict[str, Any]:
    """``options`` with the class weights (NumPy) converted to the path's array library."""
    options = dict(options)
    if "weight" in options:
        options["weight"] = convert(options["weight"])
    return options


def _torch_options(options: dict[str, Any]) -> dict[str, Any]:
    import torch

    return _weight_as(torch.from_numpy, options)


def _generic_torch(logits, target, **options):
    import torch

    import crossent as ce

    return ce.value_and_grad(ce.cross_entropy, torch.from_numpy(logits),
                             torch.from_numpy(target), **_torch_options(options))


def _torch_autograd(function: Callable[..., Any]) -> Callable[..., tuple[Any, Any]]:
    def run(logits, target, **options):
        import torch

        logits_t = torch.from_numpy(logits).requires_grad_(True)
        loss = function()(logits_t, torch.from_numpy(target), **_torch_options(options))
        (grad,) = torch.autograd.grad(loss, logits_t)
        return loss.detach(), grad

    return run


def _core():
    import crossent

    return crossent.cross_entropy


def _crossent_torch():
    import crossent.torch

    return crossent.torch.cross_entropy


def _compat_torch():
    import crossent.compat.torch

    return crossent.compat.torch.cross_entropy


def _jax_options(options: dict[str, Any]) -> dict[str, Any]:
    import jax.numpy as jnp

    return _weight_as(jnp.asarray, options)


def _generic_jax(logits, target, **options):
    import jax.numpy as jnp

    import crossent as ce

    return ce.value_and_grad(ce.cross_entropy, jnp.asarray(logits), jnp.asarray(target),
                             **_jax_options(options))


def _jax_grad(logits, target, **options):
    import jax
    import jax.numpy as jnp

    import crossent as ce

    options = _jax_options(options)
    return jax.value_and_grad(lambda z: ce.cross_entropy(z, jnp.asarray(target), **options))(
        jnp.asarray(logits))


ACCURACY_PATHS: dict[str, Callable[..., tuple[Any, Any]]] = {
    "numba": _numpy_path("numba"),
    "numpy kernel": _numpy_path("numpy"),
    "generic numpy": _numpy_path("generic"),
    "generic torch": _generic_torch,
    "generic torch autograd": _torch_autograd(_core),
    "generic jax": _generic_jax,
    "generic jax.grad": _jax_grad,
    "crossent.torch": _torch_autograd(_crossent_torch),
    "compat.torch": _torch_autograd(_compat_torch),
}


def torch_errors(logits, target, reference, **options) -> np.ndarray:
    """PyTorch's own float32 errors (``F.cross_entropy``) against the float64 reference."""
    import torch

    loss, grad = _torch_autograd(lambda: torch.nn.functional.cross_entropy)(
        logits, target, ignore_index=IGNORE_INDEX, **options)
    return relative_errors(float(loss), np.asarray(grad), *reference)


def accuracy_row(case: str, num_rows: int, num_classes: int, options_name: str,
                 paths: Any = ACCURACY_PATHS) -> dict[str, Any] | None:
    """Errors of each path and of PyTorch, and their ratios (floored at eps/2); None where
    the float64 loss is not finite (smoothing mass on an impossible class)."""
    logits, target = accuracy_inputs(case, num_rows, num_classes)
    target, options = accuracy_options(options_name, num_rows, num_classes, target)
    weight64 = None if "weight" not in options else options["weight"].astype(np.float64)
    reference = float64_reference(
        logits, target, weight=weight64, ignore_index=IGNORE_INDEX,
        label_smoothing=options.get("label_smoothing", 0.0))
    if not np.isfinite(reference[0]):
        return None
    theirs = torch_errors(logits, target, reference, **options)
    errors, ratios = {}, {}
    for path in paths:
        loss, grad = ACCURACY_PATHS[path](logits, target, ignore_index=IGNORE_INDEX, **options)
        ours = relative_errors(float(np.asarray(loss)), np.asarray(grad), *reference)
        errors[path] = ours.tolist()
        ratios[path] = (ours / np.maximum(theirs, FLOOR)).tolist()
    return {"V": num_classes, "N": num_rows, "options": options_name, "case": case,
            "torch": theirs.tolist(), "errors": errors, "ratios": ratios}
