"""The fused cross-entropy kernel (crossent.kernels): same numbers as the generic path.

Expected values come from a float64 implementation written from the definition
(``cross_entropy_references.float64_reference``), the generic array-API path of
crossent (an independent implementation of the same maths, forced by turning the
dispatch off), NumPy's float64 ``exp`` and PyTorch's own float32 error.
"""

from __future__ import annotations

import importlib
import sys

import numpy as np
import pytest

import crossent as ce
from cross_entropy_references import (
    ACCURACY_CASES,
    accuracy_inputs,
    float64_reference,
    numpy_naive,
    relative_errors,
)
from crossent import kernels
from crossent.kernels import _numpy as numpy_rows

numba_rows = pytest.importorskip("crossent.kernels._numba")


# ----------------------------------------------------------------------------------
# helpers: run one call through each path
# ----------------------------------------------------------------------------------


def _run(logits, target, **options):
    loss, grad = ce.value_and_grad(ce.cross_entropy, logits, target, **options)
    forward = ce.cross_entropy(logits, target, **options)
    return np.asarray(loss), np.asarray(grad), np.asarray(forward)


def run_path(path: str, monkeypatch, logits, target, **options):
    """(loss, grad, forward-only loss) through 'numba', 'numba_rows', 'numpy' or 'generic'.

    'numba' dispatches as crossent does (few classes: a block of rows at a time);
    'numba_rows' forces the row-at-a-time kernel; 'numpy' is the fallback.
    """
    with monkeypatch.context() as patch:
        if path == "generic":
            patch.setattr(kernels, "applies", lambda inputs: False)
        else:
            patch.setattr(kernels, "_rows", numpy_rows if path == "numpy" else numba_rows)
            if path == "numba_rows":  # the row-at-a-time kernel whatever C is
                patch.setattr(numba_rows, "FEW_CLASSES", {})
            calls = []
            original = kernels.cross_entropy
            patch.setattr(
                kernels, "cross_entropy", lambda *a: calls.append(1) or original(*a)
            )
        result = _run(logits, target, **options)
        if path != "generic":
            assert calls, "the kernel was not used"
        return result


def assert_close(actual, expected, rtol, atol=0.0):
    actual, expected = np.asarray(actual, np.float64), np.asarray(expected, np.float64)
    assert actual.shape == expected.shape
    # special values in the same places
    np.testing.assert_array_equal(np.isnan(actual), np.isnan(expected))
    np.testing.assert_array_equal(np.isposinf(actual), np.isposinf(expected))
    np.testing.assert_array_equal(np.isneginf(actual), np.isneginf(expected))
    finite = np.isfinite(expected)
    np.testing.assert_allclose(actual[finite], expected[finite], rtol=rtol, atol=atol)


TOLERANCE = {np.float32: (2e-5, 1e-6), np.float64: (1e-12, 1e-14)}


def make_case(rng, shape, dtype, kind, num_classes, minus_inf=False, scale=3.0):
    logits = (rng.standard_normal(shape) * scale).astype(dtype)
    if kind == "index":
        target = rng.integers(0, num_classes, shape[:-1])
    else:
        target = rng.dirichlet(np.ones(num_classes), shape[:-1]).astype(dtype)
    if minus_inf:
        mask = rng.random(shape) < 0.2
        if kind == "index":
            np.put_along_axis(mask, target[..., None], False, axis=-1)  # target stays possible
        else:
            target = np.where(mask, 0, target).astype(dtype)
        logits[mask] = -np.inf
    return logits, target


OPTIONS = [
    {},
    {"reduction": "sum"},
    {"reduction": "none"},
    {"label_smoothing": 0.1},
    {"weight": "random"},
    {"weight": "random", "label_smoothing": 0.2, "reduction": "mean"},
    {"ignore_index": 1},
    {"ignore_index": 1, "label_smoothing": 0.3, "weight": "random", "reduction": "none"},
    {"where": "random"},
    {"where": "random", "weight": "random", "reduction": "sum", "label_smoothing": 0.05},
]


def _options(rng, options, shape):
    options = dict(options)
    if options.get("weight") == "random":
        options["weight"] = rng.random(shape[-1]) + 0.1
    if options.get("where") == "random":
        options["where"] = rng.random(shape[:-1]) < 0.7
    return options


# ----------------------------------------------------------------------------------
# kernel == fallback == generic path == float64 reference
# ----------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kind", ["index", "probability"])
@pytest.mark.parametrize("option_set", range(len(OPTIONS)))
def test_paths_agree(monkeypatch, dtype, kind, option_set):
    rng = np.random.default_rng(option_set)
    shape = (37, 11) if option_set % 3 else (150, 11)  # 150 rows: two blocks of 64 and a rest
    logits, target = make_case(rng, shape, dtype, kind, shape[-1], minus_inf=option_set % 2 == 1)
    options = _options(rng, OPTIONS[option_set], shape)
    if kind == "probability":
        options.pop("ignore_index", None)
    rtol, atol = TOLERANCE[dtype]
    expected_loss, expected_grad = float64_reference(logits, target, **options)
    results = {path: run_path(path, monkeypatch, logits, target, **options)
               for path in ("numba", "numba_rows", "numpy", "generic")}
    for path, (loss, grad, forward) in results.items():
        assert loss.dtype == dtype and grad.dtype == dtype, path
        assert_close(loss, expected_loss, rtol, atol)
        assert_close(forward, expected_loss, rtol, atol)
        assert_close(grad, expected_grad, rtol, atol)
    # kernel and generic path: same numbers up to float rounding
    assert_close(results["numba"][0], results["generic"][0], rtol, atol)
    assert_close(results["numba"][1], results["generic"][1], rtol, atol)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("num_classes", [1, 2, 3, 14, 15, 17, 20, 21, 1000, 40000])
def test_row_lengths(monkeypatch, num_classes, dtype):
    """Vector loops and their remainders: every row length, one class and the few-classes
    thresholds (14 and 20) included."""
    rng = np.random.default_rng(num_classes)
    num_rows = 5 if num_classes > 100 else 70
    logits, target = make_case(rng, (num_rows, num_classes), dtype, "index", num_classes)
    expected_loss, expected_grad = float64_reference(logits, target, label_smoothing=0.1)
    rtol, atol = TOLERANCE[dtype]
    for path in ("numba", "numba_rows", "numpy"):
        loss, grad, _ = run_path(path, monkeypatch, logits, target, label_smoothing=0.1)
        assert_close(loss, expected_loss, rtol, atol)
        assert_close(grad, expected_grad, rtol, atol / 10)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_few_classes_use_the_block_kernel(monkeypatch, dtype):
    """Integer targets with C up to the threshold go to index_rows_few_classes, above it not."""
    limit = numba_rows.FEW_CLASSES[np.dtype(dtype)]
    calls = []
    original = numba_rows.index_rows_few_classes
    monkeypatch.setattr(numba_rows, "index_rows_few_classes",
                        lambda *args: calls.append(args[0].shape[1]) or original(*args))
    monkeypatch.setattr(kernels, "_rows", numba_rows)
    for num_classes in (1, limit, limit + 1):
        ce.value_and_grad(ce.cross_entropy, np.zeros((3, num_classes), dtype), np.zeros(3, np.int64))
        ce.cross_entropy(np.zeros((3, num_classes), dtype), np.zeros(3, np.int64))
    assert calls == [1, 1, limit, limit]


def test_class_axis_and_layouts(monkeypatch):
    """(N, C, H, W) with axis=1 (a copy to rows, then the gradient moved back), transposed input."""
    rng = np.random.default_rng(1)
    logits = rng.standard_normal((3, 5, 4, 2)).astype(np.float32)
    target = rng.integers(0, 5, (3, 4, 2))
    moved = np.moveaxis(logits, 1, -1)
    expected_loss, expected_grad = float64_reference(moved, target, reduction="none")
    loss, grad, _ = run_path("numba", monkeypatch, logits, target, axis=1, reduction="none")
    assert loss.shape == (3, 4, 2) and grad.shape == logits.shape
    assert_close(loss, expected_loss, 2e-5, 1e-6)
    assert_close(grad, np.moveaxis(expected_grad, -1, 1), 2e-5, 1e-7)
    transposed = np.asfortranarray(rng.standard_normal((6, 4)).astype(np.float32))
    target = rng.integers(0, 4, 6)
    loss, grad, _ = run_path("numba", monkeypatch, transposed, target)
    expected_loss, expected_grad = float64_reference(transposed, target)
    assert_close(loss, expected_loss, 2e-5, 1e-6)
    assert_close(grad, expected_grad, 2e-5, 1e-7)


def test_sixteen_bit_inputs(monkeypatch):
    """16-bit logits are computed in float32: loss float32, gradient float16."""
    rng = np.random.default_rng(2)
    logits = rng.standard_normal((8, 6)).astype(np.float16)
    target = rng.integers(0, 6, 8)
    loss, grad, _ = run_path("numba", monkeypatch, logits, target)
    generic_loss, generic_grad, _ = run_path("generic", monkeypatch, logits, target)
    assert loss.dtype == np.float32 and grad.dtype == np.float16
    assert_close(loss, generic_loss, 1e-6)
    assert_close(grad, generic_grad, 1e-3, 1e-4)


@pytest.mark.parametrize("path", ["numba", "numpy"])
def test_special_rows(monkeypatch, path):
    """NaN, +inf, all -inf and -inf-with-target-mass rows come out as in the generic path."""
    logits = np.array(
        [
            [1.0, np.nan, 2.0],  # NaN: loss and gradient NaN
            [np.inf, 0.0, 1.0],  # +inf: NaN (target on a finite class: inf), see generic path
            [-np.inf, -np.inf, -np.inf],  # every class impossible: NaN
            [0.0, -np.inf, 1.0],  # impossible class without target mass: finite
            [0.0, -np.inf, 1.0],  # target on the impossible class: loss inf, gradient finite
            [1e4, -1e4, 0.0],  # huge logits: exact
        ],
        dtype=np.float32,
    )
    target = np.array([0, 1, 0, 2, 1, 1])
    for options in ({"reduction": "none"}, {"reduction": "none", "label_smoothing": 0.1},
                    {"reduction": "none", "weight": np.array([1.0, 0.0, 2.0])}):
        loss, grad, forward = run_path(path, monkeypatch, logits, target, **options)
        generic_loss, generic_grad, _ = run_path("generic", monkeypatch, logits, target, **options)
        assert_close(loss, generic_loss, 2e-6)
        assert_close(forward, generic_loss, 2e-6)
        assert_close(grad, generic_grad, 2e-6, 1e-7)
        probabilities = np.eye(3, dtype=np.float32)[target]
        loss, grad, _ = run_path(path, monkeypatch, logits, probabilities, **options)
        generic_loss, generic_grad, _ = run_path("generic", monkeypatch, logits, probabilities,
                                                 **options)
        assert_close(loss, generic_loss, 2e-6)
        assert_close(grad, generic_grad, 2e-6, 1e-7)


@pytest.mark.parametrize("path", ["numba", "numpy"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_tied_maxima_of_magnitude_1e4(monkeypatch, path, dtype):
    """Hand values: the max picked (0), -1e4 against 1e4 (2e4), one of two tied maxima (log 2)."""
    logits = np.array([[1e4, -1e4, 0.0], [-1e4, -1e4, 1e4], [1e4, 1e4, -1e4]], dtype=dtype)
    target = np.array([0, 1, 1])
    for options in ({}, {"label_smoothing": 0.0, "weight": np.ones(3)}):
        loss, grad, forward = run_path(path, monkeypatch, logits, target, reduction="none",
                                       **options)
        np.testing.assert_allclose(loss, [0.0, 2e4, np.log(2)], rtol=1e-6)
        np.testing.assert_allclose(forward, [0.0, 2e4, np.log(2)], rtol=1e-6)
        np.testing.assert_allclose(grad, [[0, 0, 0], [0, -1, 1], [0.5, -0.5, 0]], atol=1e-6)
        probabilities = np.eye(3, dtype=dtype)[target]
        loss, grad, _ = run_path(path, monkeypatch, logits, probabilities, reduction="none")
        np.testing.assert_allclose(loss, [0.0, 2e4, np.log(2)], rtol=1e-6)


def test_nothing_counted_gives_zero(monkeypatch):
    logits = np.ones((3, 4), np.float32)
    target = np.full(3, -100)
    loss, grad, forward = run_path("numba", monkeypatch, logits, target)
    assert float(loss) == 0.0 and float(forward) == 0.0 and not grad.any()
    empty_loss, empty_grad, _ = run_path("numba", monkeypatch, np.ones((0, 4), np.float32),
                                         np.zeros(0, np.int64))
    assert float(empty_loss) == 0.0 and empty_grad.shape == (0, 4)


def test_ignored_rows_may_hold_any_index(monkeypatch):
    """where=False rows are not checked or read: any target index, any logits."""
    logits = np.array([[1.0, 2.0], [np.nan, 5.0]], np.float32)
    target = np.array([1, 99])
    where = np.array([True, False])
    loss, grad, _ = run_path("numba", monkeypatch, logits, target, where=where)
    expected_loss, expected_grad = float64_reference(logits[:1], target[:1])
    assert_close(loss, expected_loss, 1e-6)
    assert_close(grad[:1], expected_grad, 1e-6)
    assert not grad[1].any()


def test_naive_reference_agrees():
    """The benchmark's NumPy contender computes the same loss (so timing it is fair)."""
    rng = np.random.default_rng(3)
    logits, target = make_case(rng, (64, 100), np.float64, "index", 100)
    naive_loss, naive_grad = numpy_naive(logits.copy(), target)
    loss, grad = ce.value_and_grad(ce.cross_entropy, logits, target)
    np.testing.assert_allclose(loss, naive_loss, rtol=1e-12)
    np.testing.assert_allclose(grad, naive_grad, rtol=1e-10, atol=1e-15)


# ----------------------------------------------------------------------------------
# determinism: the same bits wherever the arrays lie and whichever entry point is used
# ----------------------------------------------------------------------------------


def _rows_in_one_buffer(rows, dtype, num_classes, gap, grad_first, probabilities):
    """One row through ``rows``, its logits and gradient rows ``gap`` elements apart in one buffer.

    Adjacent rows are what made LLVM's runtime alias check take the scalar fallback of a
    vectorised loop (CI saw it as a 1-ulp difference between two identical calls).
    """
    values = np.random.default_rng(num_classes).standard_normal(num_classes) * 3
    buffer = np.zeros(2 * num_classes + gap, dtype)
    first, second = buffer[:num_classes], buffer[num_classes + gap:]
    logits, grad = (second, first) if grad_first else (first, second)
    logits[:] = values
    weight = np.linspace(0.5, 1.5, num_classes).astype(dtype)
    losses = np.empty(1)
    target = (np.full((1, num_classes), 1.0 / num_classes, dtype) if probabilities
              else np.array([num_classes // 2]))
    function = (rows.probability_rows if probabilities else
                rows.index_rows_few_classes if num_classes <= 20 else rows.index_rows)
    smoothing = 0.1  # the plan's factors: hard term (1-ε) w_y, κ = 1-ε, σ = ε/C
    hard = np.zeros(0) if probabilities else (1.0 - smoothing) * weight[target].astype(np.float64)
    function(logits[None], target, np.ones(1, np.bool_), hard, weight, 1.0 - smoothing,
             smoothing / num_classes, 0.25, True, losses, grad[None], 0, 1)
    return losses[0], grad.copy()


@pytest.mark.parametrize("probabilities", [False, True])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_results_do_not_depend_on_memory_placement(dtype, probabilities):
    for num_classes in [*range(1, 40), 67, 1000]:
        far = _rows_in_one_buffer(numba_rows, dtype, num_classes, 4096, False, probabilities)
        for gap in range(0, 24, 3):
            for grad_first in (False, True):
                loss, grad = _rows_in_one_buffer(numba_rows, dtype, num_classes, gap, grad_first,
                                                 probabilities)
                assert loss == far[0], (num_classes, gap, grad_first)
                np.testing.assert_array_equal(grad, far[1], err_msg=f"C={num_classes} gap={gap}")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("num_classes", [1, 3, 10, 14, 20, 21])
def test_a_rows_bits_do_not_depend_on_its_neighbours(dtype, num_classes):
    """The few-classes kernel works on blocks of 64 rows: a row gives the same loss and
    gradient alone, in a batch, and shifted to every position of a block."""
    rng = np.random.default_rng(num_classes)
    logits = (rng.standard_normal((150, num_classes)) * 3).astype(dtype)
    target = rng.integers(0, num_classes, 150)
    options = {"reduction": "none", "label_smoothing": 0.1}
    batch_loss, batch_grad = ce.value_and_grad(ce.cross_entropy, logits, target, **options)
    for row in (0, 63, 64, 149):
        loss, grad = ce.value_and_grad(ce.cross_entropy, logits[row:row + 1], target[row:row + 1],
                                       **options)
        assert loss[0] == batch_loss[row] and np.array_equal(grad[0], batch_grad[row])
    for shift in (1, 17, 63):
        padding = rng.standard_normal((shift, num_classes)).astype(dtype)
        loss, grad = ce.value_and_grad(ce.cross_entropy, np.concatenate([padding, logits]),
                                       np.concatenate([np.zeros(shift, np.int64), target]), **options)
        np.testing.assert_array_equal(loss[shift:], batch_loss)
        np.testing.assert_array_equal(grad[shift:], batch_grad)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_forward_and_value_and_grad_give_the_same_loss_bits(dtype):
    """The loss does not change when the gradient is asked for too (the sums agree bit for bit)."""
    rng = np.random.default_rng(8)
    for num_classes in [*range(1, 80), 100, 257, 1000, 4099]:
        logits = (rng.standard_normal((3, num_classes)) * 3).astype(dtype)
        index = np.array([0, num_classes // 2, num_classes - 1])
        probabilities = rng.dirichlet(np.ones(num_classes), 3).astype(dtype)
        for target in (index, probabilities):
            for options in ({}, {"label_smoothing": 0.1}):
                forward = ce.cross_entropy(logits, target, reduction="none", **options)
                loss, _ = ce.value_and_grad(ce.cross_entropy, logits, target, reduction="none",
                                            **options)
                np.testing.assert_array_equal(loss, forward, err_msg=f"C={num_classes} {options}")


# ----------------------------------------------------------------------------------
# the building blocks: exp and the row maximum
# ----------------------------------------------------------------------------------


def test_fast_exp_accuracy():
    """Measured against float64 exp over the whole range the kernel uses (x ≤ 0)."""
    rng = np.random.default_rng(4)
    x64 = -np.concatenate([rng.random(200_000) * 87.3, rng.random(100_000), np.arange(0, 87, 0.5)])
    for dtype, lowest, max_error in ((np.float32, -87.33, 3.0 * 2.0**-23),
                                     (np.float64, -708.3, 4.0 * 2.0**-52)):
        x = x64.astype(dtype)
        out = np.empty_like(x)
        numba_rows.vector_exp(x, out)
        exact = np.exp(x.astype(np.float64))
        normal = x > lowest
        error = np.abs(out[normal] - exact[normal]) / exact[normal]
        assert error.max() <= max_error, (dtype, error.max() / np.finfo(dtype).eps)
        # NumPy's own exp, for scale: within a few ulp of it
        numpy_error = np.abs(np.exp(x)[normal] - exact[normal]) / exact[normal]
        assert error.max() <= 4 * max(numpy_error.max(), np.finfo(dtype).eps)
        special = np.array([0.0, -np.inf, np.nan, lowest - 1.0], dtype)
        numba_rows.vector_exp(special, out[:4])
        np.testing.assert_array_equal(out[:4], np.array([1.0, 0.0, np.nan, 0.0], dtype))


def test_fast_log_accuracy():
    """float64 log over [1, e^700] against mpmath: within 2 eps relative (NumPy's: 0.5)."""
    mpmath = pytest.importorskip("mpmath")
    rng = np.random.default_rng(6)
    x = np.concatenate([1 + rng.random(500) * 1e-6, 1 + rng.random(500) * 20,
                        np.exp(rng.random(500) * 700), np.sqrt(2) * (1 + (rng.random(300) - 0.5) * 1e-3),
                        [1.0, np.nextafter(1.0, 2.0), 2.0, np.sqrt(2), np.nextafter(np.sqrt(2), 2.0)]])
    x = x[x >= 1]
    out = np.empty_like(x)
    numba_rows.vector_log(x, out)
    with mpmath.workprec(120):
        exact = [mpmath.log(mpmath.mpf(float(v))) for v in x]
        error = np.array([float(abs(mpmath.mpf(float(o)) - e) / e) if e else abs(o)
                          for o, e in zip(out, exact, strict=True)])
    assert out[x == 1.0][0] == 0.0
    assert error.max() <= 2 * np.finfo(np.float64).eps, error.max() / np.finfo(np.float64).eps


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_row_max(dtype):
    from numba import njit

    row_max = njit(lambda row: numba_rows.row_max(row))
    rng = np.random.default_rng(5)
    for row in (rng.standard_normal(1001), -rng.random(33) - 1, np.array([-np.inf, -3.0]),
                np.array([-np.inf, -np.inf]), np.array([0.0, -0.0]), np.array([7.0])):
        row = row.astype(dtype)
        assert row_max(row) == row.max()
    assert np.isnan(row_max(np.array([1.0, np.nan], dtype)))
    assert row_max(np.array([1.0, np.inf], dtype)) == np.inf


# ----------------------------------------------------------------------------------
# fallback without numba, and the disk cache
# ----------------------------------------------------------------------------------


def test_fallback_when_numba_is_missing(monkeypatch):
    """With numba unimportable the blocked NumPy rows run and give the same numbers."""
    rng = np.random.default_rng(6)
    logits, target = make_case(rng, (300, 500), np.float32, "index", 500)
    expected_loss, expected_grad = float64_reference(logits, target, label_smoothing=0.1)
    for name in [m for m in sys.modules if m == "numba" or m.startswith("numba.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.delitem(sys.modules, "crossent.kernels._numba")
    monkeypatch.delattr(kernels, "_numba")  # else `from . import _numba` finds the attribute
    monkeypatch.setitem(sys.modules, "numba", None)  # import numba -> ImportError
    monkeypatch.setattr(kernels, "_rows", None)
    assert kernels.backend() == "numpy"
    loss, grad = ce.value_and_grad(ce.cross_entropy, logits, target, label_smoothing=0.1)
    assert_close(loss, expected_loss, 2e-5)
    assert_close(grad, expected_grad, 2e-5, 1e-8)
    monkeypatch.undo()
    importlib.import_module("crossent.kernels._numba")
    assert kernels.backend() == "numba"


def test_environment_selects_numpy(monkeypatch):
    monkeypatch.setenv("CROSSENT_KERNELS", "numpy")
    monkeypatch.setattr(kernels, "_rows", None)
    assert kernels.backend() == "numpy"
    monkeypatch.setattr(kernels, "_rows", None)
    monkeypatch.delenv("CROSSENT_KERNELS")
    assert kernels.backend() == "numba"


def test_kernels_are_cached_on_disk():
    for function in (numba_rows.index_rows, numba_rows.probability_rows):
        assert function._cache is not None and function._cache._cache_path


def test_generic_inputs_skip_the_kernel():
    """Lists of Python floats become float64 NumPy (kernel); other libraries go generic."""
    torch = pytest.importorskip("torch")
    logits = torch.randn(4, 3)
    target = torch.tensor([0, 1, 2, 0])
    loss = ce.cross_entropy(logits, target)
    assert isinstance(loss, torch.Tensor)
    reference = torch.nn.functional.cross_entropy(logits, target)
    torch.testing.assert_close(loss, reference)


# ----------------------------------------------------------------------------------
# accuracy: within 4x PyTorch's own float32 error against a float64 reference
# ----------------------------------------------------------------------------------


@pytest.mark.parametrize("case", ACCURACY_CASES)
@pytest.mark.parametrize("smoothing", [0.0, 0.1])
@pytest.mark.parametrize("num_classes", [10, 32000])
def test_accuracy_against_pytorch(case, smoothing, num_classes):
    torch = pytest.importorskip("torch")
    num_rows = 64 if num_classes > 1000 else 2048
    logits, target = accuracy_inputs(case, num_rows, num_classes)
    reference = float64_reference(logits, target, label_smoothing=smoothing)
    loss, grad = ce.value_and_grad(ce.cross_entropy, logits, target, label_smoothing=smoothing)
    logits_t = torch.from_numpy(logits).requires_grad_(True)
    torch_loss = torch.nn.functional.cross_entropy(
        logits_t, torch.from_numpy(target), label_smoothing=smoothing
    )
    torch_loss.backward()
    if not np.isfinite(reference[0]):  # smoothing mass on an impossible class: both inf
        assert np.isinf(loss) and np.isinf(torch_loss.item())
        return
    ours = relative_errors(loss, grad, *reference)
    theirs = relative_errors(torch_loss.item(), logits_t.grad.numpy(), *reference)
    floor = np.finfo(np.float32).eps / 2
    assert np.all(ours <= 4 * np.maximum(theirs, floor)), (ours, theirs)
