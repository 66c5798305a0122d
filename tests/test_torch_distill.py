"""crossent.torch.linear_distillation_loss against a dense float64 composition.

The reference builds both models' logits whole, applies ``F.log_softmax`` and writes each
divergence from its definition (the generalised JSD as Liger-Kernel / TRL write it, through
``F.kl_div(log_target=True)``), then lets torch.autograd differentiate it. Nothing expected is
taken from the function under test.
"""

from __future__ import annotations

import datetime
import math
import os
import socket
import tempfile

import pytest

torch = pytest.importorskip("torch")
import torch.nn.functional as F  # noqa: E402
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import crossent.torch as ct  # noqa: E402

N, D, DT, V = 9, 5, 3, 13


def _kl(log_p: torch.Tensor, log_q: torch.Tensor) -> torch.Tensor:
    """KL(p ‖ q) per row: F.kl_div(input=log q, target=log p) is Σ p (log p - log q); its terms
    where p = 0 (log p = -inf) are 0·(-inf) = nan there, and 0 by the definition."""
    terms = F.kl_div(log_q, log_p, reduction="none", log_target=True)
    return torch.where(log_p == -math.inf, 0.0, terms).sum(-1)


def reference_divergence(s: torch.Tensor, q: torch.Tensor, loss: str, beta: float) -> torch.Tensor:
    """Per-row divergence from the student's log-probs ``s`` and the teacher's ``q``."""
    if loss == "kl" or (loss == "jsd" and beta == 0.0):
        return _kl(q, s)
    if loss == "reverse_kl" or (loss == "jsd" and beta == 1.0):
        return _kl(s, q)
    if loss == "jsd":
        # M = (1-β) p_s + β p_t, β KL(p_t‖M) + (1-β) KL(p_s‖M): trl's generalized_jsd_loss and
        # liger_kernel/ops/jsd.py
        beta_t = torch.tensor(beta, dtype=s.dtype)
        log_mix = torch.logsumexp(torch.stack([s + torch.log1p(-beta_t), q + torch.log(beta_t)]), 0)
        return beta * _kl(q, log_mix) + (1 - beta) * _kl(s, log_mix)
    return 0.5 * (q.exp() - s.exp()).abs().sum(-1)


def reference(
    hidden,
    weight,
    teacher,
    *,
    loss="kl",
    beta=0.5,
    temperature=1.0,
    temperature_scale=True,
    target=None,
    hard_weight=0.0,
    ignore_index=-100,
    token_weight=None,
    bias=None,
    reduction="mean",
    normalizer=None,
    upstream=None,
):
    """Dense float64 composition: (loss, grads of hidden, weight, bias) by torch.autograd."""
    h = hidden.detach().double().requires_grad_()
    w = weight.detach().double().requires_grad_()
    b = None if bias is None else bias.detach().double().requires_grad_()
    logits = h @ w.T + (0 if b is None else b)
    if isinstance(teacher, torch.Tensor):
        q = F.log_softmax(teacher.double() / temperature, -1)
    elif teacher[0].is_floating_point():
        t_logits = teacher[0].double() @ teacher[1].double().T
        if len(teacher) == 3:
            t_logits = t_logits + teacher[2].double()
        q = F.log_softmax(t_logits / temperature, -1)
    else:
        indices, logprobs = teacher
        top = F.log_softmax(logprobs.double() / temperature, -1)
        q = torch.full(logits.shape, -math.inf, dtype=torch.float64).scatter(-1, indices, top)
    s = F.log_softmax(logits / temperature, -1)
    soft = reference_divergence(s, q, loss, beta) * (temperature**2 if temperature_scale else 1.0)
    per_token = (1 - hard_weight) * soft
    lead = hidden.shape[:-1]
    weights = torch.ones(lead, dtype=torch.float64) if token_weight is None else token_weight.double()
    if target is not None:
        counted = target != ignore_index
        weights = torch.where(counted, weights, 0.0)
        if hard_weight > 0:
            hard = F.cross_entropy(
                logits.reshape(-1, logits.shape[-1]),
                torch.where(counted, target, 0).reshape(-1),
                reduction="none",
            ).reshape(lead)
            per_token = per_token + hard_weight * hard
    per_token = torch.where(weights != 0, weights * per_token, 0.0)
    if reduction == "none":
        total = (per_token * upstream.double()).sum()
        value = per_token
    elif reduction == "sum":
        total = value = per_token.sum()
    else:
        divisor = weights.sum() if normalizer is None else torch.tensor(float(normalizer))
        total = value = per_token.sum() / divisor if divisor != 0 else per_token.sum() * 0
    inputs = [h, w] + ([] if b is None else [b])
    grads = torch.autograd.grad(total, inputs, allow_unused=True)
    return value.detach(), grads


def _inputs(seed, dtype=torch.float64, lead=(N,), scale=2.0):
    gen = torch.Generator().manual_seed(seed)
    hidden = torch.randn(*lead, D, generator=gen, dtype=dtype) * scale
    weight = torch.randn(V, D, generator=gen, dtype=dtype)
    bias = torch.randn(V, generator=gen, dtype=dtype)
    teacher_logits = torch.randn(*lead, V, generator=gen, dtype=dtype) * 3
    teacher_hidden = torch.randn(*lead, DT, generator=gen, dtype=dtype)
    teacher_weight = torch.randn(V, DT, generator=gen, dtype=dtype)
    teacher_bias = torch.randn(V, generator=gen, dtype=dtype)
    target = torch.randint(0, V, lead, generator=gen)
    return hidden, weight, bias, teacher_logits, (teacher_hidden, teacher_weight, teacher_bias), target


def _ours(hidden, weight, teacher, bias, upstream=None, **options):
    h = hidden.detach().clone().requires_grad_()
    w = weight.detach().clone().requires_grad_()
    b = None if bias is None else bias.detach().clone().requires_grad_()
    out = ct.linear_distillation_loss(h, w, teacher, bias=b, **options)
    total = out if upstream is None else (out * upstream).sum()
    grads = torch.autograd.grad(total, [h, w] + ([] if b is None else [b]))
    return out.detach(), grads


def _close(ours, ref, rtol=1e-9, atol=1e-10):
    torch.testing.assert_close(ours[0].double(), ref[0], rtol=rtol, atol=atol)
    for mine, theirs in zip(ours[1], ref[1], strict=True):
        torch.testing.assert_close(mine.double(), theirs, rtol=rtol, atol=atol)


@settings(max_examples=30, deadline=None)
@given(
    seed=st.integers(0, 2**16),
    loss=st.sampled_from(["kl", "reverse_kl", "jsd", "tvd"]),
    beta=st.sampled_from([0.0, 0.3, 0.5, 1.0]),
    temperature=st.sampled_from([1.0, 0.5, 2.0]),
    temperature_scale=st.booleans(),
    teacher_form=st.sampled_from(["logits", "linear", "linear_nobias", "sparse"]),
    with_target=st.sampled_from(["none", "target", "hard"]),
    token_weight=st.booleans(),
    use_bias=st.booleans(),
    reduction=st.sampled_from(["mean", "sum", "none", "normalizer"]),
    chunk_size=st.sampled_from([1, 4, "auto"]),
    lead=st.sampled_from([(N,), (3, 3)]),
)
def test_matches_the_dense_float64_composition(
    seed,
    loss,
    beta,
    temperature,
    temperature_scale,
    teacher_form,
    with_target,
    token_weight,
    use_bias,
    reduction,
    chunk_size,
    lead,
):
    if teacher_form == "sparse" and loss == "reverse_kl":
        loss = "kl"  # infinite; its ValueError is tested below
    hidden, weight, bias, t_logits, t_linear, target = _inputs(seed, lead=lead)
    gen = torch.Generator().manual_seed(seed + 1)
    if teacher_form == "logits":
        teacher = t_logits
    elif teacher_form == "linear":
        teacher = t_linear
    elif teacher_form == "linear_nobias":
        teacher = t_linear[:2]
    else:
        indices = torch.stack([torch.randperm(V, generator=gen)[:4] for _ in range(math.prod(lead))])
        teacher = (indices.reshape(*lead, 4), torch.randn(*lead, 4, generator=gen, dtype=torch.float64))
    options = dict(loss=loss, beta=beta, temperature=temperature, temperature_scale=temperature_scale)
    if with_target != "none":
        target = torch.where(torch.rand(lead, generator=gen) < 0.3, -100, target)
        options["target"] = target
        if with_target == "hard":
            options["hard_weight"] = 0.3
    if token_weight:
        options["token_weight"] = torch.where(
            torch.rand(lead, generator=gen) < 0.2, 0.0, torch.rand(lead, generator=gen, dtype=torch.float64)
        )
    upstream = None
    if reduction == "normalizer":
        options["normalizer"] = 7.0
        reduction = "mean"
    elif reduction == "none":
        upstream = torch.randn(lead, generator=gen, dtype=torch.float64)
    options["reduction"] = reduction
    b = bias if use_bias else None
    ref = reference(hidden, weight, teacher, bias=b, upstream=upstream, **options)
    ours = _ours(hidden, weight, teacher, b, upstream=upstream, chunk_size=chunk_size, **options)
    _close(ours, ref)


@pytest.mark.parametrize("loss", ["kl", "reverse_kl", "jsd", "tvd"])
def test_float32_and_bfloat16_within_their_bounds(loss):
    """float32 within 1e-5 relative; bfloat16 (inputs rounded, matmul in bf16) within 2e-2 of the
    float64 composition of the same bf16-rounded inputs (bf16 has 8 bits of mantissa)."""
    hidden, weight, bias, t_logits, _, _ = _inputs(3)
    for dtype, rtol, atol in ((torch.float32, 1e-5, 1e-6), (torch.bfloat16, 2e-2, 2e-2)):
        h, w, b, t = (x.to(dtype) for x in (hidden, weight, bias, t_logits))
        ref = reference(h, w, t, bias=b, loss=loss)
        ours = _ours(h, w, t, b, loss=loss, chunk_size=4)
        assert ours[0].dtype == torch.float32
        assert all(g.dtype == dtype for g in ours[1])
        _close(ours, ref, rtol=rtol, atol=atol)


@pytest.mark.parametrize("loss", ["kl", "reverse_kl", "jsd", "tvd"])
@pytest.mark.parametrize("temperature", [1.0, 3.0])
def test_teacher_equal_to_student_gives_zero_and_zero_gradients(loss, temperature):
    hidden, weight, bias, _, _, _ = _inputs(5)
    teacher = (hidden, weight, bias)
    value, grads = _ours(hidden, weight, teacher, bias, loss=loss, temperature=temperature)
    assert abs(float(value)) < 1e-12
    for grad in grads:
        assert float(grad.abs().max()) < 1e-12


def test_temperature_scale_multiplies_the_soft_term_by_t_squared():
    hidden, weight, bias, t_logits, _, _ = _inputs(6)
    scaled = _ours(hidden, weight, t_logits, bias, temperature=4.0)
    plain = _ours(hidden, weight, t_logits, bias, temperature=4.0, temperature_scale=False)
    torch.testing.assert_close(scaled[0], 16 * plain[0])
    for a, b in zip(scaled[1], plain[1], strict=True):
        torch.testing.assert_close(a, 16 * b)


def test_all_ignored_gives_zero_and_zero_gradients():
    hidden, weight, bias, t_logits, _, _ = _inputs(7)
    target = torch.full((N,), -100)
    for reduction in ("mean", "sum"):
        value, grads = _ours(
            hidden, weight, t_logits, bias, target=target, hard_weight=0.5, reduction=reduction
        )
        assert float(value) == 0.0 and not math.isnan(float(value))
        assert all(float(g.abs().max()) == 0.0 for g in grads)


def test_extreme_and_minus_infinity_logits():
    hidden, weight, bias, t_logits, _, _ = _inputs(8)
    big = torch.zeros(N, V, dtype=torch.float64)
    big[:, 0], big[:, 1] = 1e4, -1e4
    # the student's logits are hidden @ eye: pass them through an identity layer
    eye = torch.eye(V, dtype=torch.float64)
    teacher = t_logits.clone()
    teacher[:, 2:5] = -math.inf  # ruled out by the teacher: 0 in KL, finite gradients
    for loss in ("kl", "jsd", "tvd"):
        value, grads = _ours(big, eye, teacher, None, loss=loss)
        ref = reference(big, eye, teacher, loss=loss)
        assert math.isfinite(float(value)) and all(torch.isfinite(g).all() for g in grads)
        _close((value, grads), ref, rtol=1e-7, atol=1e-7)
    # the student rules out a class the teacher gives mass to: KL is inf
    minus_inf_bias = torch.zeros(V, dtype=torch.float64)
    minus_inf_bias[0] = -math.inf  # through the bias: -inf · 0 in the matmul would be nan
    value = ct.linear_distillation_loss(big, eye, t_logits, bias=minus_inf_bias)
    assert float(value) == math.inf


def test_kl_is_cross_entropy_minus_teacher_entropy():
    """The seeds' identity H(p, q) = H(p) + KL(p ‖ q), with F.cross_entropy's soft targets."""
    hidden, weight, bias, t_logits, _, _ = _inputs(9)
    p = F.softmax(t_logits, -1)
    cross = F.cross_entropy(hidden @ weight.T + bias, p)
    entropy = -(p * F.log_softmax(t_logits, -1)).sum(-1).mean()
    kl = ct.linear_distillation_loss(hidden, weight, t_logits, bias=bias)
    torch.testing.assert_close(cross, entropy + kl, rtol=1e-12, atol=1e-12)


def test_jsd_ends_are_the_two_kls_and_is_symmetric_at_one_half():
    hidden, weight, bias, t_logits, _, _ = _inputs(10)
    run = lambda **o: ct.linear_distillation_loss(hidden, weight, t_logits, bias=bias, **o)  # noqa: E731
    torch.testing.assert_close(run(loss="jsd", beta=0.0), run(loss="kl"))
    torch.testing.assert_close(run(loss="jsd", beta=1.0), run(loss="reverse_kl"))
    # swapping the two models leaves JSD(½) unchanged: logits of the student as the teacher's
    student_logits = hidden @ weight.T + bias
    swapped = ct.linear_distillation_loss(
        t_logits, torch.eye(V, dtype=torch.float64), student_logits, loss="jsd"
    )
    torch.testing.assert_close(run(loss="jsd"), swapped)


def test_module_matches_the_function():
    hidden, weight, bias, t_logits, _, target = _inputs(11)
    module = ct.LinearDistillationLoss(loss="tvd", hard_weight=0.3, temperature=2.0)
    torch.testing.assert_close(
        module(hidden, weight, t_logits, target, bias=bias),
        ct.linear_distillation_loss(
            hidden, weight, t_logits, loss="tvd", hard_weight=0.3, temperature=2.0, target=target, bias=bias
        ),
    )


@pytest.mark.parametrize(
    ("options", "error", "message"),
    [
        (dict(loss="kld"), ValueError, r"loss must be one of 'kl', 'reverse_kl', 'jsd', 'tvd', got 'kld'"),
        (dict(beta=1.5), ValueError, r"beta must be in \[0, 1\], got 1.5"),
        (dict(temperature=0.0), ValueError, r"temperature must be a finite number > 0, got 0.0"),
        (dict(hard_weight=0.5), ValueError, r"hard_weight=0.5 needs target="),
        (dict(reduction="sum", normalizer=3), ValueError, r"normalizer= replaces the divisor"),
        (dict(normalizer=0.0), ValueError, r"normalizer must be > 0, got 0.0"),
        (dict(chunk_size=0), ValueError, r"chunk_size must be a positive int or 'auto', got 0"),
        (dict(reduction="avg"), ValueError, r"reduction must be one of"),
    ],
)
def test_errors_name_the_argument(options, error, message):
    hidden, weight, _, t_logits, _, _ = _inputs(12)
    with pytest.raises(error, match=message):
        ct.linear_distillation_loss(hidden, weight, t_logits, **options)


def test_teacher_errors():
    hidden, weight, _, t_logits, _, target = _inputs(13)
    sparse = (torch.zeros(N, 2, dtype=torch.int64), torch.zeros(N, 2, dtype=torch.float64))
    with pytest.raises(ValueError, match=r"loss='reverse_kl' with a top-k sparse teacher is infinite"):
        ct.linear_distillation_loss(hidden, weight, sparse, loss="reverse_kl")
    with pytest.raises(ValueError, match=r"teacher logits must have shape \(9, 13\)"):
        ct.linear_distillation_loss(hidden, weight, t_logits[:, :-1])
    with pytest.raises(TypeError, match=r"teacher must be a tensor of logits"):
        ct.linear_distillation_loss(hidden, weight, "teacher")
    with pytest.raises(ValueError, match=r"target contains class index 13, but the weight has 13"):
        ct.linear_distillation_loss(hidden, weight, t_logits, target=torch.full((N,), V), hard_weight=0.1)


# --- vocabulary-parallel: 2 gloo ranks equal one process -------------------------------------

SHARDS = [(0, 6), (6, 13)]  # uneven, rank order


def _shard_case(rank: int, case: str):
    hidden, weight, bias, t_logits, t_linear, target = _inputs(21)
    lo, hi = SHARDS[rank]
    if case == "logits":
        teacher = t_logits[:, lo:hi].contiguous()
    elif case == "linear":
        teacher = (t_linear[0], t_linear[1][lo:hi].contiguous(), t_linear[2][lo:hi].contiguous())
    else:
        gen = torch.Generator().manual_seed(4)
        indices = torch.stack([torch.randperm(V, generator=gen)[:5] for _ in range(N)])
        teacher = (indices, torch.randn(N, 5, generator=gen, dtype=torch.float64))
    target = torch.where(torch.arange(N) % 4 == 0, -100, target)
    return hidden, weight[lo:hi].contiguous(), bias[lo:hi].contiguous(), teacher, target


CASES = [
    (case, loss)
    for case in ("logits", "linear", "sparse")
    for loss in ("kl", "reverse_kl", "jsd", "tvd")
    if not (case == "sparse" and loss == "reverse_kl")
]


def _worker(rank: int, port: int, outdir: str) -> None:
    import torch.distributed as dist

    torch.set_num_threads(1)
    dist.init_process_group(
        "gloo",
        init_method=f"tcp://127.0.0.1:{port}",
        rank=rank,
        world_size=2,
        timeout=datetime.timedelta(seconds=60),
    )
    results = {}
    for case, loss in CASES:
        hidden, weight, bias, teacher, target = _shard_case(rank, case)
        results[case, loss] = _ours(
            hidden,
            weight,
            teacher,
            bias,
            loss=loss,
            target=target,
            hard_weight=0.2,
            temperature=2.0,
            chunk_size=4,
            group=dist.group.WORLD,
        )
    torch.save(results, os.path.join(outdir, f"rank{rank}.pt"))
    dist.destroy_process_group()


@pytest.fixture(scope="module")
def two_ranks() -> list[dict]:
    import torch.multiprocessing as mp

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with tempfile.TemporaryDirectory() as outdir:
        mp.start_processes(_worker, args=(port, outdir), nprocs=2, join=True, start_method="spawn")
        return [torch.load(os.path.join(outdir, f"rank{r}.pt"), weights_only=False) for r in range(2)]


@pytest.mark.parametrize(("case", "loss"), CASES)
def test_two_gloo_ranks_equal_one_process(two_ranks, case, loss):
    hidden, weight, bias, t_logits, t_linear, target = _inputs(21)
    _, _, _, teacher, target = _shard_case(0, case)
    if case == "logits":
        teacher = t_logits
    elif case == "linear":
        teacher = t_linear
    ref = reference(
        hidden, weight, teacher, bias=bias, loss=loss, target=target, hard_weight=0.2, temperature=2.0
    )
    for rank, (lo, hi) in enumerate(SHARDS):
        value, (g_hidden, g_weight, g_bias) = two_ranks[rank][case, loss]
        torch.testing.assert_close(value, ref[0], rtol=1e-9, atol=1e-10)
        torch.testing.assert_close(g_hidden, ref[1][0], rtol=1e-9, atol=1e-10)
        torch.testing.assert_close(g_weight, ref[1][1][lo:hi], rtol=1e-9, atol=1e-10)
        torch.testing.assert_close(g_bias, ref[1][2][lo:hi], rtol=1e-9, atol=1e-10)


# --- the whole-logits compositions the benchmark compares with ------------------------------


def plain_distillation(student_logits: torch.Tensor, teacher_logits: torch.Tensor) -> torch.Tensor:
    """KL(teacher ‖ student) per token, averaged: PyTorch's documented F.kl_div recipe."""
    return F.kl_div(
        F.log_softmax(student_logits.float(), -1),
        F.log_softmax(teacher_logits.float(), -1),
        reduction="batchmean",
        log_target=True,
    )


def liger_jsd_reference(student_logits: torch.Tensor, teacher_logits: torch.Tensor, beta: float = 0.5):
    """Liger-Kernel's torch reference of the generalised JSD (its test and benchmark ``TorchJSD``):
    the mixture M = (1-β) p_s + β p_t in log space, β KL(p_t‖M) + (1-β) KL(p_s‖M), per token."""
    s = F.log_softmax(student_logits.float(), -1)
    q = F.log_softmax(teacher_logits.float(), -1)
    beta_t = torch.tensor(beta)
    log_mix = torch.logsumexp(torch.stack([s + torch.log1p(-beta_t), q + torch.log(beta_t)]), 0)
    kl_teacher = F.kl_div(log_mix, q, reduction="sum", log_target=True)
    kl_student = F.kl_div(log_mix, s, reduction="sum", log_target=True)
    return (beta * kl_teacher + (1 - beta) * kl_student) / student_logits.shape[0]


@pytest.mark.parametrize("loss", ["kl", "jsd"])
def test_the_benchmarks_compositions_equal_the_loss(loss):
    hidden, weight, _, t_logits, _, _ = _inputs(30)
    h, w, t = hidden.float(), weight.float(), t_logits.float()
    whole = (plain_distillation if loss == "kl" else liger_jsd_reference)(h @ w.T, t)
    ours = ct.linear_distillation_loss(h, w, t, loss=loss)
    torch.testing.assert_close(whole, ours, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_scaled_upstream_and_a_second_backward_match_the_dense_composition(reduction):
    """'mean'/'sum' scale the forward pass's gradients in place by grad_output; a second
    backward (retain_graph=True) recomputes them, so both equal the float64 composition's."""
    hidden, weight, bias, teacher_logits, _, target = _inputs(7)
    h = hidden.detach().clone().requires_grad_()
    w = weight.detach().clone().requires_grad_()
    out = ct.linear_distillation_loss(
        h, w, teacher_logits, target=target, hard_weight=0.3, reduction=reduction, chunk_size=4
    )
    h_ref = hidden.detach().clone().requires_grad_()
    w_ref = weight.detach().clone().requires_grad_()
    s = F.log_softmax(h_ref @ w_ref.T, -1)
    q = F.log_softmax(teacher_logits, -1)
    per_token = 0.7 * (q.exp() * (q - s)).sum(-1) - 0.3 * s.gather(1, target[:, None])[:, 0]
    ref = per_token.mean() if reduction == "mean" else per_token.sum()
    for scale in (2.5, -0.5):  # the second call reuses nothing: the gradients are recomputed
        ours = torch.autograd.grad(out, [h, w], torch.tensor(scale, dtype=out.dtype), retain_graph=True)
        theirs = torch.autograd.grad(
            ref, [h_ref, w_ref], torch.tensor(scale, dtype=ref.dtype), retain_graph=True
        )
        for mine, expected in zip(ours, theirs, strict=True):
            torch.testing.assert_close(mine, expected, rtol=1e-9, atol=1e-10)


@pytest.mark.parametrize("loss", ["kl", "reverse_kl", "jsd", "tvd"])
@pytest.mark.parametrize("ignored", [False, True])
def test_auto_chunks_of_a_wide_vocabulary_match_the_dense_composition(loss, ignored):
    """At V = 20000 'auto' gives 64-row chunks, so 150 tokens take three (the last partial);
    with ignored tokens the chunks gather rows instead of slicing them."""
    gen = torch.Generator().manual_seed(3)
    tokens, width, vocab = 150, 8, 20000
    hidden = torch.randn(tokens, width, generator=gen, dtype=torch.float64)
    weight = torch.randn(vocab, width, generator=gen, dtype=torch.float64)
    teacher = torch.randn(tokens, vocab, generator=gen, dtype=torch.float64) * 2
    target = torch.randint(0, vocab, (tokens,), generator=gen)
    if ignored:
        target[::7] = -100
    ours = _ours(hidden, weight, teacher, None, loss=loss, target=target, temperature=2.0)
    ref = reference(hidden, weight, teacher, loss=loss, target=target, temperature=2.0)
    _close(ours, ref[:1] + (ref[1][:2],))
