"""linear_cross_entropy's options together (token weights, temperature, normalizer, stats,
dropped tokens) against a dense float64 oracle written here from plain torch ops."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from crossent.torch import count_targets, linear_cross_entropy

IGNORE = -100


def oracle(
    hidden,
    weight,
    target,
    *,
    bias=None,
    class_weight=None,
    token_weight=None,
    label_smoothing=0.0,
    z_loss=0.0,
    softcap=None,
    temperature=1.0,
    reduction="mean",
    normalizer=None,
    ignore_index=IGNORE,
):
    """The whole logits in float64: cap, then /T; F.cross_entropy per token; the divisors."""
    logits = hidden.double() @ weight.double().T
    if bias is not None:
        logits = logits + bias.double()
    if softcap is not None:
        logits = softcap * torch.tanh(logits / softcap)
    logits = logits / temperature
    cw = None if class_weight is None else class_weight.double()
    ce = F.cross_entropy(
        logits, target, weight=cw, ignore_index=ignore_index, label_smoothing=label_smoothing,
        reduction="none",
    )
    counted = (target != ignore_index).double()
    zl = z_loss * torch.logsumexp(logits, dim=1) ** 2 * counted
    t = torch.ones_like(ce) if token_weight is None else token_weight.double()
    if reduction == "none":
        return t * (ce + zl)
    if reduction == "sum":
        return (t * (ce + zl)).sum()
    if normalizer is not None:
        return (t * (ce + zl)).sum() / normalizer
    w_y = counted if cw is None else cw[torch.where(target != ignore_index, target, 0)] * counted
    d_ce, d_z = (t * w_y).sum(), (t * counted).sum()
    safe = lambda num, den: num / den if den != 0 else num * 0  # noqa: E731
    return safe((t * ce).sum(), d_ce) + safe((t * zl).sum(), d_z)


@st.composite
def problems(draw):
    tokens = draw(st.integers(1, 9))
    classes = draw(st.integers(2, 7))
    dim = draw(st.integers(1, 4))
    gen = torch.Generator().manual_seed(draw(st.integers(0, 2**31)))
    hidden = torch.randn(tokens, dim, generator=gen, dtype=torch.float64)
    weight = torch.randn(classes, dim, generator=gen, dtype=torch.float64)
    target = torch.randint(0, classes, (tokens,), generator=gen)
    target[torch.rand(tokens, generator=gen) < draw(st.sampled_from([0.0, 0.3, 1.0]))] = IGNORE
    options = dict(
        bias=torch.randn(classes, generator=gen, dtype=torch.float64) if draw(st.booleans()) else None,
        class_weight=(torch.rand(classes, generator=gen, dtype=torch.float64) + 0.1)
        if draw(st.booleans())
        else None,
        token_weight=None,
        label_smoothing=draw(st.sampled_from([0.0, 0.2])),
        z_loss=draw(st.sampled_from([0.0, 0.01])),
        softcap=draw(st.sampled_from([None, 2.0])),
        temperature=draw(st.sampled_from([1.0, 0.7, 2.5])),
        reduction=draw(st.sampled_from(["none", "mean", "sum"])),
    )
    if draw(st.booleans()):
        token_weight = torch.rand(tokens, generator=gen, dtype=torch.float64)
        token_weight[torch.rand(tokens, generator=gen) < 0.3] = 0.0
        options["token_weight"] = token_weight
    if options["reduction"] == "mean" and draw(st.booleans()):
        options["normalizer"] = draw(st.sampled_from([3.0, 7.5]))
    chunk = draw(st.sampled_from([1, 2, "auto"]))
    return hidden, weight, target, options, chunk, gen


def _grads(fn, hidden, weight, bias, upstream):
    leaves = [t.detach().clone().requires_grad_(True) for t in (hidden, weight)]
    b = None if bias is None else bias.detach().clone().requires_grad_(True)
    loss = fn(*leaves, b)
    (loss * upstream).sum().backward()
    return loss.detach(), [t.grad for t in leaves] + ([] if b is None else [b.grad])


@settings(max_examples=60, deadline=None)
@given(problems(), st.booleans())
def test_every_option_matches_the_dense_oracle(problem, stats):
    hidden, weight, target, options, chunk, gen = problem
    bias = options.pop("bias")
    shape = (target.shape[0],) if options["reduction"] == "none" else ()
    upstream = torch.randn(shape, generator=gen, dtype=torch.float64)

    def ours(h, w, b):
        out = linear_cross_entropy(
            h, w, target, bias=b, chunk_size=chunk, return_stats=stats, ignore_index=IGNORE, **options
        )
        return out.loss if stats else out

    expected, expected_grads = _grads(
        lambda h, w, b: oracle(h, w, target, bias=b, **options), hidden, weight, bias, upstream
    )
    loss, grads = _grads(ours, hidden, weight, bias, upstream)
    torch.testing.assert_close(loss, expected, rtol=1e-10, atol=1e-12)
    for got, want in zip(grads, expected_grads, strict=True):
        torch.testing.assert_close(got, want, rtol=1e-9, atol=1e-11)


def test_stats_against_the_dense_softmax():
    gen = torch.Generator().manual_seed(0)
    hidden, weight = torch.randn(6, 3, generator=gen), torch.randn(5, 3, generator=gen)
    target = torch.tensor([0, 4, IGNORE, 2, 2, IGNORE])
    out = linear_cross_entropy(
        hidden, weight, target, softcap=3.0, temperature=1.5, return_stats=True, chunk_size=4
    )
    logits = 3.0 * torch.tanh(hidden.double() @ weight.double().T / 3.0) / 1.5
    log_probs = logits.log_softmax(dim=1)
    torch.testing.assert_close(out.lse.double(), logits.logsumexp(dim=1))
    torch.testing.assert_close(out.entropy.double(), -(log_probs.exp() * log_probs).sum(1))
    picked = log_probs.gather(1, target.clamp(min=0)[:, None])[:, 0]
    expected = torch.where(target != IGNORE, picked, torch.nan)
    torch.testing.assert_close(out.target_logprob.double(), expected, equal_nan=True)
    assert torch.equal(out.predicted, logits.argmax(dim=1))
    assert torch.equal(out.correct, logits.argmax(dim=1) == target)


def test_micro_batches_with_the_global_normalizer_equal_the_full_batch():
    gen = torch.Generator().manual_seed(1)
    hidden = torch.randn(12, 4, generator=gen, dtype=torch.float64)
    weight = torch.randn(9, 4, generator=gen, dtype=torch.float64, requires_grad=True)
    target = torch.randint(0, 9, (12,), generator=gen)
    target[::4] = IGNORE
    class_weight = torch.rand(9, generator=gen, dtype=torch.float64) + 0.5
    token_weight = torch.rand(12, generator=gen, dtype=torch.float64)
    options = dict(class_weight=class_weight, label_smoothing=0.1, softcap=5.0, temperature=1.3)
    full_h = hidden.clone().requires_grad_(True)
    full = oracle(
        full_h,
        weight,
        target,
        token_weight=token_weight,
        normalizer=count_targets(target, class_weight=class_weight, token_weight=token_weight),
        **options,
    )
    full.backward()
    expected_h, expected_w = full_h.grad, weight.grad.clone()
    # without z-loss, the normalizer equals the 'mean' divisor: the plain mean of the batch
    torch.testing.assert_close(full, oracle(hidden, weight, target, token_weight=token_weight, **options))
    weight.grad = None
    norm = count_targets(target, class_weight=class_weight, token_weight=token_weight)
    total, grads_h = 0.0, []
    for part in torch.arange(12).chunk(3):
        h = hidden[part].clone().requires_grad_(True)
        loss = linear_cross_entropy(
            h, weight, target[part], token_weight=token_weight[part], normalizer=norm, chunk_size=2, **options
        )
        loss.backward()
        total = total + loss.detach()
        grads_h.append(h.grad)
    torch.testing.assert_close(total, full.detach(), rtol=0, atol=1e-12)
    torch.testing.assert_close(torch.cat(grads_h), expected_h, rtol=0, atol=1e-12)
    torch.testing.assert_close(weight.grad, expected_w, rtol=0, atol=1e-12)


# Every option of the engine, a few at a time and all together: the cases of the micro-batch
# test below and of the data-parallel tests (tests/test_torch_linear_data_parallel.py).
# ignore_index=2 is a real class: its targets are ignored as well.
OPTION_MATRIX = {
    "plain": {},
    "bias-temperature": dict(bias=True, temperature=0.7),
    "class_weight-smoothing": dict(class_weight=True, label_smoothing=0.2),
    "z_loss-token_weight": dict(z_loss=0.05, token_weight=True),
    "softcap-temperature-bias": dict(softcap=2.0, temperature=2.5, bias=True),
    "ignore_index-smoothing-class_weight": dict(ignore_index=2, label_smoothing=0.1, class_weight=True),
    "token_weight-class_weight-z_loss-softcap": dict(
        token_weight=True, class_weight=True, z_loss=0.02, softcap=4.0
    ),
    "all": dict(
        bias=True, class_weight=True, ignore_index=2, label_smoothing=0.3, z_loss=0.01, softcap=3.0,
        token_weight=True, temperature=1.7,
    ),
}


def matrix_problem(name, num_tokens, ignored, *, seed=0, classes=7, dim=4):
    """float64 inputs of an OPTION_MATRIX case: (hidden, weight, bias, target, options), the
    targets at ``ignored`` set to the case's ignore_index, token weights in [0, 1) with zeros."""
    gen = torch.Generator().manual_seed(seed)
    wanted = OPTION_MATRIX[name]
    hidden = torch.randn(num_tokens, dim, generator=gen, dtype=torch.float64)
    weight = torch.randn(classes, dim, generator=gen, dtype=torch.float64)
    bias = torch.randn(classes, generator=gen, dtype=torch.float64) if wanted.get("bias") else None
    ignore_index = wanted.get("ignore_index", IGNORE)
    target = torch.randint(0, classes, (num_tokens,), generator=gen)
    target[list(ignored)] = ignore_index
    options = {key: value for key, value in wanted.items() if key not in ("bias", "token_weight")}
    options["ignore_index"] = ignore_index
    if wanted.get("class_weight"):
        options["class_weight"] = torch.rand(classes, generator=gen, dtype=torch.float64) + 0.2
    if wanted.get("token_weight"):
        token_weight = torch.rand(num_tokens, generator=gen, dtype=torch.float64)
        token_weight[1::5] = 0.0
        options["token_weight"] = token_weight
    return hidden, weight, bias, target, options


def hand_count(target, options):
    """Σ t_i w_{y_i} over the counted tokens, from plain torch: the whole batch's divisor."""
    counted = (target != options["ignore_index"]).double()
    class_weight = options.get("class_weight")
    if class_weight is not None:
        counted = counted * class_weight[torch.where(counted.bool(), target, 0)]
    token_weight = options.get("token_weight")
    return (counted if token_weight is None else counted * token_weight).sum()


def leaves_of(*tensors):
    """Fresh leaves requiring grad, of the tensors that are not None."""
    return [t.clone().requires_grad_(True) for t in tensors if t is not None]


def full_batch(hidden, weight, bias, target, options):
    """The whole batch's loss Σ ℓ_i / Σ t_i w_{y_i} and its gradients, from the oracle."""
    leaves = leaves_of(hidden, weight, bias)
    loss = oracle(
        leaves[0], leaves[1], target, bias=leaves[2] if bias is not None else None,
        normalizer=hand_count(target, options), **options,
    )
    grads = torch.autograd.grad(loss, leaves)
    if not options.get("z_loss"):  # without z-loss that is the plain 'mean' of the whole batch
        plain = oracle(hidden, weight, target, bias=bias, **options)
        torch.testing.assert_close(loss.detach(), plain, rtol=0, atol=1e-13)
    return loss.detach(), grads


@pytest.mark.parametrize("name", OPTION_MATRIX)
def test_micro_batches_equal_the_full_batch_with_every_option(name):
    """K = 4 micro-batches of gradient accumulation (uneven, one wholly ignored, one empty),
    each divided by the whole batch's count_targets: the full batch's loss and gradients."""
    hidden, weight, bias, target, options = matrix_problem(name, 13, ignored=[0, 5, 6, 7, 12], seed=5)
    expected, expected_grads = full_batch(hidden, weight, bias, target, options)
    token_weight = options.pop("token_weight", None)
    normalizer = count_targets(
        target, ignore_index=options["ignore_index"], class_weight=options.get("class_weight"),
        token_weight=token_weight,
    )
    leaves = leaves_of(hidden, weight, bias)
    total = 0.0
    for part in (slice(0, 5), slice(5, 8), slice(8, 8), slice(8, 13)):  # 5..7 are all ignored
        loss = linear_cross_entropy(
            leaves[0][part], leaves[1], target[part], bias=leaves[2] if bias is not None else None,
            token_weight=None if token_weight is None else token_weight[part],
            normalizer=normalizer, chunk_size=2, **options,
        )
        loss.backward()  # the gradients accumulate in the leaves, as in a training loop
        total = total + loss.detach()
    torch.testing.assert_close(total, expected, rtol=0, atol=1e-12)
    for leaf, want in zip(leaves, expected_grads, strict=True):
        torch.testing.assert_close(leaf.grad, want, rtol=0, atol=1e-12)


def test_dropping_ignored_tokens_gives_the_same_numbers():
    gen = torch.Generator().manual_seed(2)
    hidden = torch.randn(10, 3, generator=gen, dtype=torch.float64)
    weight = torch.randn(6, 3, generator=gen, dtype=torch.float64)
    target = torch.randint(0, 6, (10,), generator=gen)
    target[1::2] = IGNORE
    token_weight = torch.ones(10, dtype=torch.float64)
    token_weight[0] = 0.0
    results = []
    for return_lse in (False, True):  # return_lse computes every token
        h = hidden.clone().requires_grad_(True)
        out = linear_cross_entropy(
            h, weight, target, token_weight=token_weight, reduction="none", return_lse=return_lse, z_loss=0.01
        )
        loss = out.loss if return_lse else out
        loss.backward(torch.arange(10, dtype=torch.float64))
        results.append((loss.detach(), h.grad))
    torch.testing.assert_close(results[0][0], results[1][0], rtol=0, atol=1e-13)
    torch.testing.assert_close(results[0][1], results[1][1], rtol=0, atol=1e-13)
    assert torch.all(results[0][1][1::2] == 0) and torch.all(results[0][1][0] == 0)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_16_bit_inputs_within_bounds(dtype):
    gen = torch.Generator().manual_seed(3)
    hidden = torch.randn(32, 16, generator=gen).to(dtype)
    weight = (torch.randn(50, 16, generator=gen) * 0.3).to(dtype)
    target = torch.randint(0, 50, (32,), generator=gen)
    target[::3] = IGNORE
    token_weight = torch.rand(32, generator=gen)
    options = dict(token_weight=token_weight, temperature=1.7, softcap=10.0, z_loss=1e-3, label_smoothing=0.1)
    h, w = hidden.clone().requires_grad_(True), weight.clone().requires_grad_(True)
    loss = linear_cross_entropy(h, w, target, chunk_size=8, **options)
    loss.backward()
    h64, w64 = hidden.double().requires_grad_(True), weight.double().requires_grad_(True)
    expected = oracle(h64, w64, target, **options)
    expected.backward()
    # documented bound: the loss within 1e-2 relative; gradients within 2 units of the
    # 16-bit rounding of their largest entry
    assert abs(loss.item() - expected.item()) <= 1e-2 * abs(expected.item())
    for got, want in ((h.grad, h64.grad), (w.grad, w64.grad)):
        assert got.dtype == dtype
        eps = torch.finfo(dtype).eps
        assert (got.double() - want).abs().max() <= 4 * eps * want.abs().max() + 1e-6


def test_normalizer_needs_mean_and_count_targets_checks():
    hidden, weight, target = torch.zeros(2, 3), torch.zeros(4, 3), torch.tensor([0, 1])
    with pytest.raises(ValueError, match="normalizer=5 replaces the 'mean' divisor"):
        linear_cross_entropy(hidden, weight, target, reduction="sum", normalizer=5)
    with pytest.raises(ValueError, match="normalizer must be a positive finite number"):
        linear_cross_entropy(hidden, weight, target, normalizer=0)
    with pytest.raises(ValueError, match="temperature must be a positive finite number"):
        linear_cross_entropy(hidden, weight, target, temperature=0.0)
    with pytest.raises(ValueError, match=r"token_weight has shape \(3,\), expected"):
        linear_cross_entropy(hidden, weight, target, token_weight=torch.ones(3))
    assert count_targets(torch.tensor([[1, IGNORE], [2, 2]])).item() == 3
    assert math.isclose(
        count_targets(
            torch.tensor([1, IGNORE, 2]),
            class_weight=torch.tensor([1.0, 2.0, 3.0]),
            token_weight=torch.tensor([0.5, 9.0, 1.0]),
        ).item(),
        4.0,
    )


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_matches_the_oracle():
    gen = torch.Generator().manual_seed(4)
    hidden = torch.randn(16, 8, generator=gen)
    weight = torch.randn(30, 8, generator=gen)
    target = torch.randint(0, 30, (16,), generator=gen)
    target[::2] = IGNORE
    options = dict(token_weight=torch.rand(16, generator=gen), temperature=2.0, z_loss=1e-3)
    loss = linear_cross_entropy(
        hidden.cuda(),
        weight.cuda(),
        target.cuda(),
        **{k: v.cuda() if torch.is_tensor(v) else v for k, v in options.items()},
    )
    torch.testing.assert_close(
        loss.cpu().double(), oracle(hidden, weight, target, **options), rtol=1e-5, atol=1e-6
    )
