"""crossent.torch.linear_cross_entropy against the plain PyTorch composition.

The reference is ``F.cross_entropy(cap(hidden @ weight.T + bias), target, ...)`` plus the
z-loss term, written once here (``plain_linear_cross_entropy``); the benchmark imports it.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")
import torch.nn.functional as F  # noqa: E402
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import crossent  # noqa: E402
from crossent.torch import (  # noqa: E402
    LinearCrossEntropyLoss,
    LinearCrossEntropyOutput,
    linear_cross_entropy,
)


def plain_linear_cross_entropy(
    hidden, weight, target, *, bias=None, ignore_index=-100, label_smoothing=0.0,
    class_weight=None, z_loss=0.0, softcap=None, reduction="mean",
):
    """The plain composition: all N × V logits, PyTorch's own cross-entropy, PaLM's z-loss."""
    logits = hidden @ weight.T
    if bias is not None:
        logits = logits + bias
    if softcap is not None:
        logits = softcap * torch.tanh(logits / softcap)
    flat = logits.reshape(-1, logits.shape[-1])
    flat_target = target.reshape(-1)
    loss = F.cross_entropy(
        flat, flat_target, weight=class_weight, ignore_index=ignore_index,
        label_smoothing=label_smoothing, reduction=reduction,
    )
    if z_loss:
        counted = flat_target != ignore_index
        z_term = z_loss * torch.logsumexp(flat, dim=-1) ** 2 * counted
        if reduction == "none":
            loss = loss + z_term
        elif reduction == "sum":
            loss = loss + z_term.sum()
        else:
            loss = loss + z_term.sum() / counted.sum()
    if reduction == "none":
        loss = loss.reshape(target.shape)
    return loss


def _grads(loss, inputs, grad_output):
    return torch.autograd.grad(loss, inputs, grad_output)


def _make(shape, hidden_size, vocab, dtype, *, seed=0, bias=False, ignore_fraction=0.0,
          weight_scale=0.5):
    generator = torch.Generator().manual_seed(seed)
    hidden = torch.randn(*shape, hidden_size, generator=generator, dtype=torch.float64)
    weight = torch.randn(vocab, hidden_size, generator=generator, dtype=torch.float64)
    weight *= weight_scale
    target = torch.randint(0, vocab, shape, generator=generator)
    if ignore_fraction > 0:
        ignored = torch.rand(shape, generator=generator) < ignore_fraction
        target[ignored] = -100
    tensors = [hidden.to(dtype).requires_grad_(), weight.to(dtype).requires_grad_()]
    if bias:
        bias_tensor = torch.randn(vocab, generator=generator, dtype=torch.float64)
        tensors.append(bias_tensor.to(dtype).requires_grad_())
    return tensors, target


TOLERANCE = {torch.float64: dict(rtol=1e-10, atol=1e-12), torch.float32: dict(rtol=2e-4, atol=2e-5)}


def _close(actual, expected, dtype, scale=None):
    tolerance = TOLERANCE[dtype]
    atol = tolerance["atol"] * (1.0 if scale is None else max(1.0, scale))
    torch.testing.assert_close(actual, expected, rtol=tolerance["rtol"], atol=atol)


# ==================================================================================
# Same numbers as the plain composition
# ==================================================================================


@settings(max_examples=40, deadline=None)
@given(
    data=st.data(),
    shape=st.sampled_from([(1,), (7,), (33,), (2, 5), (3, 4, 2)]),
    hidden_size=st.integers(1, 12),
    vocab=st.integers(2, 40),
    dtype=st.sampled_from([torch.float64, torch.float32]),
    reduction=st.sampled_from(["mean", "sum", "none"]),
    use_bias=st.booleans(),
    use_class_weight=st.booleans(),
    label_smoothing=st.sampled_from([0.0, 0.1, 0.73, 1.0]),
    z_loss=st.sampled_from([0.0, 1e-4, 0.3]),
    softcap=st.sampled_from([None, 0.5, 3.0, 30.0]),
    ignore_fraction=st.sampled_from([0.0, 0.3, 1.0]),
)
def test_matches_plain_composition(
    data, shape, hidden_size, vocab, dtype, reduction, use_bias, use_class_weight,
    label_smoothing, z_loss, softcap, ignore_fraction,
):
    seed = data.draw(st.integers(0, 2**16), label="seed")
    tokens = math.prod(shape)
    chunk_size = data.draw(st.sampled_from(["auto", 1, 2, 5, tokens, tokens + 3]), label="chunk")
    inputs, target = _make(shape, hidden_size, vocab, dtype, seed=seed, bias=use_bias,
                           ignore_fraction=ignore_fraction)
    hidden, weight = inputs[:2]
    bias = inputs[2] if use_bias else None
    class_weight = None
    if use_class_weight:
        class_weight = torch.rand(vocab, generator=torch.Generator().manual_seed(seed),
                                  dtype=torch.float64).to(dtype) + 0.1
    options = dict(bias=bias, label_smoothing=label_smoothing, class_weight=class_weight,
                   z_loss=z_loss, softcap=softcap, reduction=reduction)
    loss = linear_cross_entropy(hidden, weight, target, chunk_size=chunk_size, **options)
    nothing_counted = bool((target == -100).all())
    if reduction == "none":
        grad_output = torch.randn(shape, generator=torch.Generator().manual_seed(seed + 1),
                                  dtype=torch.float64).to(dtype)
    else:
        grad_output = torch.tensor(1.7, dtype=dtype)
    grads = _grads(loss, inputs, grad_output)
    if reduction == "mean" and nothing_counted:
        # PyTorch gives NaN; crossent's mean over nothing counted is 0 with zero gradients
        assert loss.item() == 0.0
        for grad in grads:
            assert torch.count_nonzero(grad) == 0
        return
    expected = plain_linear_cross_entropy(hidden, weight, target, **options)
    expected_grads = _grads(expected, inputs, grad_output)
    assert loss.shape == expected.shape and loss.dtype == expected.dtype
    _close(loss, expected, dtype, scale=float(expected.detach().abs().max()) if expected.numel() else None)
    for grad, expected_grad in zip(grads, expected_grads, strict=True):
        assert grad.dtype == dtype
        _close(grad, expected_grad, dtype)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_extreme_but_finite_logits(dtype, reduction):
    # logits up to ~1e4 in magnitude: exp overflows unless the row maximum is subtracted
    inputs, target = _make((16,), 4, 30, dtype, seed=3, bias=True, weight_scale=2000.0)
    hidden, weight, bias = inputs
    options = dict(bias=bias, z_loss=1e-4, label_smoothing=0.1, reduction=reduction)
    assert 5e3 < float((hidden @ weight.T).detach().abs().max()) < 2e4
    loss = linear_cross_entropy(hidden, weight, target, chunk_size=5, **options)
    expected = plain_linear_cross_entropy(hidden, weight, target, **options)
    grad_output = torch.ones_like(expected)
    grads = _grads(loss, inputs, grad_output)
    expected_grads = _grads(expected, inputs, grad_output)
    assert torch.isfinite(loss).all()
    # loss magnitudes ~1e4 · z-loss ~1e4: compare relative to the size of the numbers
    torch.testing.assert_close(loss, expected, rtol=TOLERANCE[dtype]["rtol"] * 10, atol=0.0)
    for grad, expected_grad in zip(grads, expected_grads, strict=True):
        assert torch.isfinite(grad).all()
        scale = float(expected_grad.abs().max())
        torch.testing.assert_close(grad, expected_grad, rtol=0.0,
                                   atol=scale * TOLERANCE[dtype]["rtol"] * 10)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_all_ignored_batch(reduction):
    inputs, target = _make((3, 4), 5, 9, torch.float32, bias=True, ignore_fraction=1.0)
    assert bool((target == -100).all())
    loss = linear_cross_entropy(inputs[0], inputs[1], target, bias=inputs[2], z_loss=0.1,
                                label_smoothing=0.2, reduction=reduction)
    # 0, not PyTorch's NaN, for 'mean'; 0 per token for 'none'; the sum of nothing for 'sum'
    assert torch.count_nonzero(loss) == 0 and loss.shape == ((3, 4) if reduction == "none" else ())
    for grad in torch.autograd.grad(loss.sum(), inputs):
        assert torch.count_nonzero(grad) == 0
    if reduction == "mean":
        plain = F.cross_entropy((inputs[0] @ inputs[1].T).reshape(-1, 9), target.reshape(-1))
        assert torch.isnan(plain)  # the PyTorch behaviour crossent does not copy


def test_same_semantics_as_core_cross_entropy():
    # the weighted mean and smoothing with class weights and ignore_index: crossent's own core
    inputs, target = _make((20,), 6, 11, torch.float64, seed=5, ignore_fraction=0.3)
    hidden, weight = inputs
    class_weight = torch.linspace(0.2, 2.0, 11, dtype=torch.float64)
    loss = linear_cross_entropy(hidden, weight, target, class_weight=class_weight,
                                label_smoothing=0.25)
    logits = (hidden @ weight.T).detach().numpy()
    core = crossent.cross_entropy(logits, target.numpy(), weight=class_weight.numpy(),
                                  label_smoothing=0.25)
    np.testing.assert_allclose(loss.item(), float(core), rtol=1e-12)


def test_chunk_size_does_not_change_the_numbers():
    inputs, target = _make((2, 19), 7, 23, torch.float64, seed=8, bias=True, ignore_fraction=0.2)
    results = []
    for chunk_size in (1, 3, 38, "auto"):
        loss = linear_cross_entropy(inputs[0], inputs[1], target, bias=inputs[2], z_loss=0.01,
                                    softcap=4.0, chunk_size=chunk_size)
        results.append((loss, *torch.autograd.grad(loss, inputs)))
    for other in results[1:]:
        for actual, expected in zip(other, results[0], strict=True):
            torch.testing.assert_close(actual, expected, rtol=1e-12, atol=1e-14)


# ==================================================================================
# 16-bit inputs: float32 accumulation, compared with a float32 composition
# ==================================================================================


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize(
    "options",
    [
        dict(),
        dict(reduction="sum", z_loss=1e-3, softcap=5.0),
        dict(label_smoothing=0.1, class_weight=True, z_loss=1e-4),
        dict(reduction="none", softcap=8.0, label_smoothing=0.05),
    ],
)
def test_16_bit_inputs_against_float32_composition(dtype, options):
    options = dict(options)
    generator = torch.Generator().manual_seed(11)
    tokens, hidden_size, vocab = 70, 48, 300
    hidden = torch.randn(2, tokens // 2, hidden_size, generator=generator).to(dtype)
    weight = (0.3 * torch.randn(vocab, hidden_size, generator=generator)).to(dtype)
    bias = torch.randn(vocab, generator=generator).to(dtype)
    target = torch.randint(0, vocab, (2, tokens // 2), generator=generator)
    target[0, :5] = -100
    if options.pop("class_weight", False):
        options["class_weight"] = torch.rand(vocab, generator=generator) + 0.5
    inputs = [t.requires_grad_() for t in (hidden, weight, bias)]
    wide = [t.detach().float().requires_grad_() for t in inputs]
    loss = linear_cross_entropy(*inputs[:2], target, bias=inputs[2], chunk_size=16, **options)
    expected = plain_linear_cross_entropy(*wide[:2], target, bias=wide[2], **options)
    assert loss.dtype == torch.float32  # computed and returned in float32
    grad_output = torch.randn(expected.shape, generator=generator)
    grads = _grads(loss, inputs, grad_output)
    expected_grads = _grads(expected, wide, grad_output)
    # the logits themselves are rounded to 16 bits by the matrix product (2^-8 relative
    # for bfloat16): tolerances of that order, relative to the size of each result
    torch.testing.assert_close(loss, expected, rtol=2e-2, atol=2e-2)
    for grad, expected_grad in zip(grads, expected_grads, strict=True):
        assert grad.dtype == dtype
        scale = float(expected_grad.abs().max())
        torch.testing.assert_close(grad.float(), expected_grad, rtol=0.0, atol=3e-2 * scale)


# ==================================================================================
# lse, module, autograd behaviour
# ==================================================================================


def test_return_lse():
    inputs, target = _make((2, 3), 4, 10, torch.float64, bias=True)
    result = linear_cross_entropy(inputs[0], inputs[1], target, bias=inputs[2], softcap=2.0,
                                  return_lse=True, reduction="none")
    assert isinstance(result, LinearCrossEntropyOutput)
    logits = 2.0 * torch.tanh((inputs[0] @ inputs[1].T + inputs[2]) / 2.0)
    torch.testing.assert_close(result.lse, torch.logsumexp(logits, dim=-1).detach())
    assert not result.lse.requires_grad and result.loss.shape == (2, 3)


def test_module_dispatches_to_the_function():
    inputs, target = _make((4, 5), 6, 12, torch.float64, bias=True, ignore_fraction=0.2)
    class_weight = torch.rand(12, dtype=torch.float64) + 0.5
    options = dict(class_weight=class_weight, z_loss=1e-3, softcap=10.0, label_smoothing=0.1)
    module = LinearCrossEntropyLoss(**options, chunk_size=3)
    loss = module(inputs[0], inputs[1], target, bias=inputs[2])
    expected = plain_linear_cross_entropy(inputs[0], inputs[1], target, bias=inputs[2], **options)
    torch.testing.assert_close(loss, expected)
    assert "z_loss=0.001" in repr(module)
    with_lse = LinearCrossEntropyLoss(return_lse=True)(inputs[0], inputs[1], target)
    assert isinstance(with_lse, LinearCrossEntropyOutput)


def test_gradients_only_where_asked_and_under_no_grad():
    inputs, target = _make((9,), 3, 7, torch.float64, bias=True)
    hidden, weight, bias = inputs
    frozen = weight.detach()
    loss = linear_cross_entropy(hidden, frozen, target, bias=bias.detach())
    (grad_hidden,) = torch.autograd.grad(loss, [hidden])
    expected = plain_linear_cross_entropy(hidden, frozen, target, bias=bias.detach())
    torch.testing.assert_close(grad_hidden, torch.autograd.grad(expected, [hidden])[0])
    with torch.no_grad():
        value = linear_cross_entropy(hidden, weight, target, bias=bias)
    assert not value.requires_grad
    torch.testing.assert_close(value, expected.detach(), rtol=1e-12, atol=0.0)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_16_bit_with_fewer_chunk_logits_than_tokens(dtype):
    # chunk_size·V = 1·2 < N = 6: the second pass views the buffers as [N, 1] (it crashed with
    # "shape '[6, 1]' is invalid for input of size 2" before the buffers were sized for it)
    (hidden, weight, bias), target = _make((6,), 3, 2, dtype, seed=11, bias=True)
    loss = linear_cross_entropy(hidden, weight, target, bias=bias, chunk_size=1)
    loss.backward()
    leaves = [t.detach().double().requires_grad_() for t in (hidden, weight, bias)]
    expected = F.cross_entropy(F.linear(*leaves), target)
    expected.backward()
    assert loss.dtype == torch.float32
    torch.testing.assert_close(loss.double(), expected.detach(), rtol=2e-2, atol=2e-2)
    for got, leaf in zip((hidden, weight, bias), leaves, strict=True):
        torch.testing.assert_close(got.grad.double(), leaf.grad, rtol=3e-2, atol=3e-2)


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_second_backward_recomputes(reduction):
    # the first backward hands over the forward pass's gradients; a second one (retain_graph)
    # recomputes them from the saved inputs, so the leaves accumulate twice the gradient
    inputs, target = _make((5,), 3, 4, torch.float64)
    loss = linear_cross_entropy(inputs[0], inputs[1], target, reduction=reduction)
    loss.backward(retain_graph=True)
    (0.5 * loss).backward()
    expected = torch.autograd.grad(
        1.5 * F.cross_entropy(F.linear(inputs[0], inputs[1]), target, reduction=reduction), inputs
    )
    for leaf, want in zip(inputs, expected, strict=True):
        torch.testing.assert_close(leaf.grad, want)


def test_leaf_grad_accumulates_like_autograd():
    inputs, target = _make((6,), 3, 5, torch.float64)
    for _ in range(2):
        (3.0 * linear_cross_entropy(inputs[0], inputs[1], target)).backward()
    expected = torch.autograd.grad(
        6.0 * plain_linear_cross_entropy(inputs[0], inputs[1], target), inputs
    )
    torch.testing.assert_close(inputs[0].grad, expected[0])
    torch.testing.assert_close(inputs[1].grad, expected[1])


# ==================================================================================
# Bad input: exact messages
# ==================================================================================


def _valid():
    hidden = torch.zeros(2, 3, 4)
    weight = torch.zeros(5, 4)
    target = torch.zeros(2, 3, dtype=torch.int64)
    return hidden, weight, target


def test_mismatched_hidden_size():
    hidden, _, target = _valid()
    with pytest.raises(ValueError, match=r"hidden has hidden size 4 \(its last dimension\), but "
                       r"weight has shape \(5, 3\), i.e. hidden size 3; expected hidden of "
                       r"shape \(\.\.\., 3\) and weight of shape \(num_classes, 4\)"):
        linear_cross_entropy(hidden, torch.zeros(5, 3), target)


def test_target_out_of_range():
    hidden, weight, target = _valid()
    target[1, 2] = 5
    with pytest.raises(ValueError, match=r"target contains class index 5, but weight has 5 rows "
                       r"\(classes\); expected indices in \[0, 4\] or ignore_index=-100"):
        linear_cross_entropy(hidden, weight, target)
    target[1, 2] = -3
    with pytest.raises(ValueError, match="target contains negative class index -3, but weight"):
        linear_cross_entropy(hidden, weight, target)
    target[1, 2] = -1
    linear_cross_entropy(hidden, weight, target, ignore_index=-1)  # -1 is ignored: fine


def test_wrong_dtypes():
    hidden, weight, target = _valid()
    with pytest.raises(TypeError, match=r"hidden must have dtype float32, bfloat16, float16 or "
                       r"float64, got torch.int64; convert it first \(e.g. hidden.float\(\)\)"):
        linear_cross_entropy(hidden.long(), weight, target)
    with pytest.raises(TypeError, match=r"weight has dtype torch.float64, but hidden has dtype "
                       r"torch.float32; expected the same dtype"):
        linear_cross_entropy(hidden, weight.double(), target)
    with pytest.raises(TypeError, match=r"target must hold integer class indices, got dtype "
                       r"torch.float32; convert it \(e.g. target.long\(\)\)"):
        linear_cross_entropy(hidden, weight, target.float())
    with pytest.raises(TypeError, match=r"bias has dtype torch.float64, but hidden has dtype "
                       r"torch.float32"):
        linear_cross_entropy(hidden, weight, target, bias=torch.zeros(5, dtype=torch.float64))
    with pytest.raises(TypeError, match="weight must be a torch.Tensor, got ndarray"):
        linear_cross_entropy(hidden, np.zeros((5, 4), np.float32), target)


def test_wrong_shapes():
    hidden, weight, target = _valid()
    with pytest.raises(ValueError, match=r"target has shape \(6,\), but hidden has shape "
                       r"\(2, 3, 4\); expected one class index per token, shape \(2, 3\)"):
        linear_cross_entropy(hidden, weight, target.reshape(-1))
    with pytest.raises(ValueError, match=r"bias must have shape \(5,\), one entry per row of "
                       r"weight, got shape \(4,\)"):
        linear_cross_entropy(hidden, weight, target, bias=torch.zeros(4))
    with pytest.raises(ValueError, match=r"class_weight must have shape \(5,\)"):
        linear_cross_entropy(hidden, weight, target, class_weight=torch.ones(5, 1))
    with pytest.raises(ValueError, match=r"weight must have shape \(num_classes, hidden_size\), "
                       r"got shape \(5, 4, 1\)"):
        linear_cross_entropy(hidden, weight[..., None], target)


def test_group_without_an_initialised_process_group_says_how_to_start_one():
    hidden, weight, target = _valid()
    with pytest.raises(RuntimeError, match=r"needs an initialised torch.distributed process group"):
        linear_cross_entropy(hidden, weight, target, z_loss=1e-4, softcap=30.0, group="world")


@pytest.mark.parametrize(
    ("options", "error", "message"),
    [
        (dict(reduction="avg"), ValueError,
         r"reduction must be one of 'none', 'mean', 'sum', got 'avg'"),
        (dict(label_smoothing=1.5), ValueError, r"label_smoothing must be in \[0, 1\], got 1.5"),
        (dict(z_loss=-1e-4), ValueError, r"z_loss must be >= 0, got -0.0001"),
        (dict(softcap=0.0), ValueError,
         r"softcap must be a positive finite number \(e.g. 30.0 as in Gemma 2, or None\), got 0.0"),
        (dict(softcap="30"), TypeError, r"softcap must be a positive number, got '30'"),
        (dict(chunk_size=0), ValueError,
         r"chunk_size must be 'auto' or a positive int \(tokens per chunk\), got 0"),
        (dict(ignore_index=1.0), TypeError, r"ignore_index must be an int, got 1.0"),
    ],
)
def test_bad_options_in_function_and_module(options, error, message):
    hidden, weight, target = _valid()
    with pytest.raises(error, match=message):
        linear_cross_entropy(hidden, weight, target, **options)
    with pytest.raises(error, match=message):
        LinearCrossEntropyLoss(**options)  # the module checks its settings in __init__


# ==================================================================================
# Memory: the 'auto' chunk and the buffers the loop really allocates
# ==================================================================================

TARGET_SIZES = [(4096, 1024, 32000), (2048, 1024, 128000), (8192, 512, 50000)]


@pytest.mark.parametrize("softcap", [False, True])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
@pytest.mark.parametrize("size", TARGET_SIZES)
def test_auto_chunk_buffers_fit_a_tenth_of_the_gradients(size, dtype, softcap):
    # the target: memory above the inputs <= 1.15x the gradients; 'auto' spends at most 10
    # points of it on chunk buffers (the rest is for per-token vectors and BLAS workspace)
    from crossent.torch import _linear

    tokens, hidden_size, vocab = size
    grad_bytes = (tokens + vocab) * hidden_size * torch.finfo(dtype).bits // 8
    rows = _linear._auto_chunk_rows(tokens, vocab, hidden_size, dtype, softcap)
    # the buffers the loop allocates for that chunk, on the meta device (no memory)
    hidden = torch.empty(tokens, hidden_size, dtype=dtype, device="meta")
    weight = torch.empty(vocab, hidden_size, dtype=dtype, device="meta")
    options = _linear._check_options(
        ignore_index=-100, label_smoothing=0.0, z_loss=0.0, softcap=30.0 if softcap else None,
        reduction="mean", chunk_size="auto",
    )
    compute = torch.float32
    problem = _linear._Problem(hidden, weight, None, None, options, compute)
    assert problem.chunk_rows() == rows
    work = _linear._workspace(problem, want_slope=True)
    buffers = [t for t in (work.logits, work.low, work.slope) if t is not None]
    allocated = sum(t.numel() * t.element_size() for t in buffers)
    assert allocated <= 0.10 * grad_bytes, (rows, allocated / grad_bytes)
    # and it is the largest such chunk, not a needlessly small one
    assert (rows + 1) * vocab * _linear._bytes_per_logit(dtype, softcap) > 0.10 * grad_bytes
    # the second pass (16-bit) views the same buffers as [N, block]
    assert tokens * problem.vocab_block() <= work.logits.numel()


def test_auto_chunk_bounds():
    from crossent.torch import _linear

    # small problems: at least 4 MiB of buffers (speed), never more rows than tokens
    assert _linear._auto_chunk_rows(100, 1000, 64, torch.float32, False) == 100
    assert _linear._auto_chunk_rows(10_000, 1000, 64, torch.float32, False) == 4 * 2**20 // 4000
    # huge problems: at most 64 MiB
    rows = _linear._auto_chunk_rows(10**6, 50_000, 8192, torch.float32, False)
    assert rows == 64 * 2**20 // (50_000 * 4)
    # a vocabulary so large that the budget holds fewer than 8 rows: 8 rows
    assert _linear._auto_chunk_rows(64, 4_000_000, 16, torch.float32, False) == 8


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize("m, k, n", [(5, 3, 700), (300, 6, 9), (7, 700, 3), (300, 40, 9),
                                     (0, 4, 5), (4, 0, 5), (1, 1, 1)])
def test_widened_products_are_exact_and_tiled(dtype, m, k, n, monkeypatch):
    """The float32 tiles of a 16-bit product: the float64 product rounded once to 16 bits
    (one 16-bit step at most, for the float32 additions' order), into ``out`` in place, from
    tiles of at most ``_WIDE_TILE`` elements; ``k`` whole (``(5, 3, 700)``, ``(300, 6, 9)``)
    or in blocks (``(7, 700, 3)``, ``(300, 40, 9)``); transposed operands as the engine
    passes them."""
    from torch.utils._python_dispatch import TorchDispatchMode

    from crossent.torch import _linear

    monkeypatch.setattr(_linear, "_native_16bit", lambda device: False)
    monkeypatch.setattr(_linear, "_WIDE_TILE", 1024)
    generator = torch.Generator().manual_seed(m * 1000 + k * 10 + n)
    a = torch.randn(m, k, generator=generator).to(dtype)
    b = torch.randn(n, k, generator=generator).to(dtype).T  # a view, as weight.T
    out = torch.full((m, n), float("nan"), dtype=dtype)
    sizes = []

    class Allocations(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            result = func(*args, **(kwargs or {}))
            given = {t.untyped_storage().data_ptr() for t in torch.utils._pytree.tree_leaves(
                (args, kwargs, out)) if isinstance(t, torch.Tensor)}
            sizes.extend(t.numel() for t in torch.utils._pytree.tree_leaves(result)
                         if isinstance(t, torch.Tensor)
                         and t.untyped_storage().data_ptr() not in given)  # not a view
            return result

    with Allocations():
        returned = _linear._mm16(a, b, out)
    assert returned is out
    assert max(sizes, default=0) <= 1024, sizes
    exact = a.double() @ b.double()
    rounded = exact.to(dtype).double()
    step = torch.finfo(dtype).eps * exact.abs().clamp_min(torch.finfo(dtype).tiny)
    assert torch.all((out.double() - exact).abs() <= (rounded - exact).abs() + step), (out, exact)
    assert torch.equal(out.double(), rounded) or (m * n > 0 and k > 1)


@pytest.mark.parametrize("softcap", [None, 3.0])
@pytest.mark.parametrize("reduction", ["mean", "none"])
@pytest.mark.parametrize("dtype, native", [(torch.float32, True), (torch.bfloat16, True),
                                           (torch.bfloat16, False)],
                         ids=["float32", "bfloat16-native", "bfloat16-widened"])
def test_chunk_sized_allocations_are_the_workspace(dtype, reduction, softcap, native,
                                                   monkeypatch):
    # every tensor of chunk size the call allocates (forward and backward, both passes for
    # bfloat16) is counted by _bytes_per_logit: nothing is allocated per chunk or per block.
    # Widened 16-bit products allocate float32 tiles of at most _WIDE_TILE elements (made
    # smaller than a chunk here; test_widened_products_are_exact_and_tiled checks the bound)
    from torch.utils._python_dispatch import TorchDispatchMode

    from crossent.torch import _linear

    monkeypatch.setattr(_linear, "_native_16bit", lambda device: native)
    monkeypatch.setattr(_linear, "_WIDE_TILE", 600)

    tokens, hidden_size, vocab, chunk = 64, 2, 600, 5
    (hidden, weight), target = _make((tokens,), hidden_size, vocab, dtype, seed=3)
    threshold = chunk * vocab // 2  # gradients are V·D = 1200 elements: below it
    fresh = []

    class Allocations(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            kwargs = kwargs or {}
            out = func(*args, **kwargs)
            seen = {t.untyped_storage().data_ptr() for t in torch.utils._pytree.tree_leaves(
                (args, kwargs)) if isinstance(t, torch.Tensor)}
            for t in torch.utils._pytree.tree_leaves(out):
                if (isinstance(t, torch.Tensor) and t.numel() >= threshold
                        and t.untyped_storage().data_ptr() not in seen):
                    fresh.append((str(func), t.numel() * t.element_size()))
            return out

    with Allocations():
        loss = linear_cross_entropy(hidden, weight, target, softcap=softcap,
                                    reduction=reduction, chunk_size=chunk)
        loss.sum().backward()
    budget = chunk * vocab * _linear._bytes_per_logit(dtype, softcap is not None)
    workspaces = 2 if reduction == "none" else 1  # 'none': forward, then backward recomputes
    assert fresh, "the workspace itself was not seen: the check is blind"
    assert sum(nbytes for _, nbytes in fresh) <= workspaces * budget, fresh
    assert all("empty" in name for name, _ in fresh), fresh
