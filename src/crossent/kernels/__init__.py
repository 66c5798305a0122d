"""Fused CPU kernels behind crossent's functions, for NumPy inputs.

:func:`crossent.cross_entropy`, :func:`crossent.grad.cross_entropy` and
``crossent.value_and_grad(crossent.cross_entropy, ...)`` call :func:`cross_entropy`
here when :func:`applies` says so (NumPy float32/float64 logits, after 16-bit inputs
were upcast); the numbers are those of the generic array-API path (tested), computed
in one sweep per row: the row maximum, the sum of exponentials, then the gradient
written once. The derivation is in :mod:`crossent.kernels._numba`.

The kernels are compiled by numba on first use and cached on disk, so ``import
crossent`` does not import numba. Without numba (or with the environment variable
``CROSSENT_KERNELS=numpy``) a blocked pure-NumPy version of the same rows runs.

>>> import numpy as np
>>> import crossent as ce
>>> logits = np.array([[0.4, 0.3, 0.7], [1.2, 0.4, 0.6]])  # seed 003: [0.8801, 1.4922]
>>> ce.cross_entropy(logits, np.array([2, 1]), reduction="none")  # through this kernel
array([0.8801, 1.4922])
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from types import ModuleType
from typing import Any

import array_api_compat
import numpy as np

from .._array import Array, move_class_axis_back
from .._plan import ClassInputs, split_class
from .._reduce import gradient_scale, reduce
from .._validate import Reduction

__all__ = ["applies", "backend", "cross_entropy"]

_rows: ModuleType | None = None
_pool: ThreadPoolExecutor | None = None

# Rows are split among threads (the compiled rows release the GIL) in chunks of at least
# this many elements; smaller problems run on the calling thread.
MIN_CHUNK_ELEMENTS = 1 << 17


def num_threads() -> int:
    """Threads the kernels use: ``CROSSENT_NUM_THREADS``, else the CPUs this process may use."""
    configured = os.environ.get("CROSSENT_NUM_THREADS", "")
    if configured.isdigit() and int(configured) > 0:
        return int(configured)
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def _run_rows(function: Callable[..., None], num_rows: int, num_classes: int, *args: Any) -> None:
    """``function(*args, start, stop)`` over all rows, in parallel chunks when it pays."""
    global _pool
    threads = num_threads()
    # several chunks per thread, so a thread delayed by a busy machine does not hold the rest
    chunks = min(num_rows, 4 * threads, max(1, num_rows * num_classes // MIN_CHUNK_ELEMENTS))
    if threads == 1 or chunks <= 1:
        function(*args, 0, num_rows)
        return
    if _pool is None or _pool._max_workers != threads:
        _pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="crossent-kernel")
    bounds = np.linspace(0, num_rows, chunks + 1).astype(np.int64)
    futures = [_pool.submit(function, *args, int(start), int(stop))
               for start, stop in zip(bounds[:-1], bounds[1:], strict=True)]
    for future in futures:
        future.result()  # re-raises an error from a chunk


def _row_kernels() -> ModuleType:
    """The module with ``index_rows`` / ``probability_rows``: numba's, else NumPy's."""
    global _rows
    if _rows is None:
        name = "_numpy" if os.environ.get("CROSSENT_KERNELS", "").lower() == "numpy" else "_numba"
        try:
            _rows = importlib.import_module(f"{__name__}.{name}")
        except ImportError:  # numba (or llvmlite) missing or broken: same rows in NumPy
            _rows = importlib.import_module(f"{__name__}._numpy")
    return _rows


def backend() -> str:
    """Which implementation runs the kernels: 'numba' or 'numpy' (the fallback)."""
    return "numba" if _row_kernels().__name__.endswith("_numba") else "numpy"


def applies(inputs: ClassInputs) -> bool:
    """Whether the fused kernel computes this call (else the generic array-API path).

    ``inputs`` are a class-axis loss's validated inputs (:class:`crossent._plan.ClassInputs`):
    NumPy arrays in float32 or float64 (16-bit were already upcast), at least one class.
    Any layout works; a non-contiguous class axis costs one copy of the logits.
    """
    values = inputs.values
    return (
        array_api_compat.is_numpy_namespace(inputs.xp)
        and type(values) is np.ndarray
        and values.dtype in (np.float32, np.float64)
        and inputs.num_classes > 0
        and (inputs.weight is None or type(inputs.weight) is np.ndarray)
    )


def cross_entropy(
    inputs: ClassInputs, label_smoothing: float, reduction: Reduction, compute_grad: bool
) -> tuple[Array, Array | None]:
    """``crossent.losses._cross_entropy`` for inputs where :func:`applies` holds.

    Returns ``(loss, grad)`` exactly as the generic path: the loss in the computation
    dtype (per position for 'none'), the gradient in the input dtype and layout, or None.
    """
    values = inputs.values
    dtype = values.dtype
    num_classes = inputs.num_classes
    logits = np.ascontiguousarray(values).reshape(-1, num_classes)
    num_rows = logits.shape[0]
    plan = split_class(inputs, label_smoothing)
    rows = _row_kernels()
    if inputs.kind == "index":
        row_function = rows.index_rows
        # numba: rows of few classes a block at a time (lanes across rows)
        if num_classes <= getattr(rows, "FEW_CLASSES", {}).get(dtype, 0):
            row_function = rows.index_rows_few_classes
    else:
        row_function = rows.probability_rows
    # d(reduced)/d(row loss), the one factor the reduction puts on the gradient
    scale = float(gradient_scale(inputs.xp, reduction, np.float64(plan.divisor), np.float64))
    losses = np.empty(num_rows, np.float64)
    grad = np.empty((num_rows if compute_grad else 0, num_classes), dtype)
    _run_rows(
        row_function, num_rows, num_classes,
        logits, plan.target, plan.counted, plan.hard, plan.weight, plan.keep, plan.spread, scale,
        bool(compute_grad), losses, grad,
    )
    if reduction == "none":
        loss = losses.astype(dtype).reshape(values.shape[:-1])
    else:  # float64 sums of float64 row losses, then the computation dtype
        loss = dtype.type(reduce(inputs.xp, losses, reduction, np.float64(plan.divisor)))
    if not compute_grad:
        return loss, None
    grad = move_class_axis_back(np, grad.reshape(values.shape), inputs.axis)
    return loss, grad if grad.dtype == inputs.input_dtype else grad.astype(inputs.input_dtype)

