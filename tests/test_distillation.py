"""crossent.kl_divergence_with_logits, jensen_shannon_divergence, total_variation_distance:
values and gradients against PyTorch (float64 autograd, F.kl_div), mpmath, optax and by hand;
extreme logits, temperature, reductions, namespaces, errors."""

from __future__ import annotations

import math
import re

import mpmath
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

import crossent as ce
from crossent import information as info
from crossent_testing import jax, jnp, requires_jax

mpmath.mp.dps = 40
INF = math.inf
NAMES = ("kl", "reverse_kl", "jsd", "tvd")


def _ours(name: str, student, teacher, *, grad: bool = False, **options):
    """The divergence ``name`` (or its gradient) through crossent's public API."""
    module = ce.grad if grad else ce
    if name in ("kl", "reverse_kl"):
        return module.kl_divergence_with_logits(student, teacher, reverse=name == "reverse_kl",
                                                **options)
    if name == "jsd":
        return module.jensen_shannon_divergence(student, teacher, **options)
    return module.total_variation_distance(student, teacher, **options)


def _torch_reference(name: str, student: torch.Tensor, teacher: torch.Tensor, *, axis: int = -1,
                     temperature: float = 1.0, beta: float = 0.5) -> torch.Tensor:
    """Per-distribution divergences written with PyTorch's own functions (float64)."""
    s = F.log_softmax(student / temperature, dim=axis)
    q = F.log_softmax(teacher / temperature, dim=axis)
    if name == "kl" or (name == "jsd" and beta == 0.0):
        # F.kl_div(input, target, log_target=True) = exp(target) (target - input): KL(p_t ‖ p_s)
        return F.kl_div(s, q, reduction="none", log_target=True).sum(axis)
    if name == "reverse_kl" or (name == "jsd" and beta == 1.0):
        return F.kl_div(q, s, reduction="none", log_target=True).sum(axis)
    if name == "jsd":
        # liger_kernel/ops/jsd.py: M = β P + (1 - β) Q with P the teacher, Q the student;
        # β KL(P ‖ M) + (1 - β) KL(Q ‖ M)
        log_m = torch.log(beta * q.exp() + (1 - beta) * s.exp())
        return (beta * F.kl_div(log_m, q, reduction="none", log_target=True)
                + (1 - beta) * F.kl_div(log_m, s, reduction="none", log_target=True)).sum(axis)
    return 0.5 * (s.exp() - q.exp()).abs().sum(axis)


def _reduce_reference(per_distribution: torch.Tensor, reduction: str) -> torch.Tensor:
    if reduction == "none":
        return per_distribution
    total = per_distribution.sum()
    return total if reduction == "sum" else total / max(per_distribution.numel(), 1)


def _options(name: str, **options):
    return {key: value for key, value in options.items() if key != "beta" or name == "jsd"}


# --- by hand, and the seeds --------------------------------------------------------------------


def test_the_seeds_kl_from_logits_and_the_identity_cross_entropy_is_entropy_plus_kl() -> None:
    # 0.5 log(0.5/0.9) + 0.5 log(0.5/0.1), by hand
    by_hand = 0.5 * math.log(0.5 / 0.9) + 0.5 * math.log(0.5 / 0.1)
    loss = ce.kl_divergence_with_logits([math.log(0.9), math.log(0.1)], [0.0, 0.0])
    assert float(loss) == pytest.approx(by_hand, rel=1e-14)
    # seeds 001/002: D_KL(p ‖ q) = H(p, q) - H(p); here p = softmax(teacher), q = softmax(student)
    rng = np.random.default_rng(0)
    student, teacher = rng.normal(size=(5, 7)) * 3, rng.normal(size=(5, 7)) * 3
    p = np.exp(teacher) / np.exp(teacher).sum(-1, keepdims=True)
    q = np.exp(student) / np.exp(student).sum(-1, keepdims=True)
    kl = ce.kl_divergence_with_logits(student, teacher, reduction="none")
    np.testing.assert_allclose(info.cross_entropy(p, q), info.entropy(p) + kl, rtol=1e-13)
    # seed 001's network: a one-hot target (teacher logits -inf elsewhere) has H(p) = 0, so the
    # KL is the cross-entropy 0.1762 of the logits [1.4, 3.2, 5.0] for class 2
    seed = ce.kl_divergence_with_logits([1.4, 3.2, 5.0], [-INF, -INF, 0.0])
    expected = -(5.0 - math.log(math.exp(1.4) + math.exp(3.2) + math.exp(5.0)))
    assert float(seed) == pytest.approx(expected, rel=1e-14)
    assert round(float(seed), 2) == 0.18  # seed 001 prints 0.17 from probabilities rounded


def test_jsd_and_tvd_by_hand() -> None:
    # disjoint distributions: JSD_0.5 = log 2, TVD = 1; equal ones: 0
    disjoint = ([0.0, -INF], [-INF, 0.0])
    assert float(ce.jensen_shannon_divergence(*disjoint)) == pytest.approx(math.log(2), rel=1e-15)
    assert float(ce.total_variation_distance(*disjoint)) == 1.0
    # p_s = [0.9, 0.1], p_t = [0.5, 0.5]: TVD = ½(0.4 + 0.4)
    assert float(ce.total_variation_distance([math.log(0.9), math.log(0.1)], [0.0, 0.0])) == (
        pytest.approx(0.4, rel=1e-14))
    # generalised JSD with β = 0.25 by mpmath: M = β p_t + (1 - β) p_s
    beta, p_s, p_t = mpmath.mpf("0.25"), [mpmath.mpf("0.9"), mpmath.mpf("0.1")], [0.5, 0.5]
    m = [beta * t + (1 - beta) * s for s, t in zip(p_s, p_t, strict=True)]
    expected = float(beta * mpmath.fsum(t * mpmath.log(t / mm) for t, mm in zip(p_t, m, strict=True))
                     + (1 - beta) * mpmath.fsum(s * mpmath.log(s / mm)
                                                for s, mm in zip(p_s, m, strict=True)))
    value = ce.jensen_shannon_divergence([math.log(0.9), math.log(0.1)], [0.0, 0.0], beta=0.25)
    assert float(value) == pytest.approx(expected, rel=1e-13)


def test_the_end_points_of_beta_are_the_two_kls_as_liger_defines_them() -> None:
    rng = np.random.default_rng(1)
    student, teacher = rng.normal(size=(4, 6)), rng.normal(size=(4, 6))
    forward = ce.kl_divergence_with_logits(student, teacher, reduction="none")
    backward = ce.kl_divergence_with_logits(student, teacher, reverse=True, reduction="none")
    np.testing.assert_array_equal(ce.jensen_shannon_divergence(student, teacher, beta=0,
                                                               reduction="none"), forward)
    np.testing.assert_array_equal(ce.jensen_shannon_divergence(student, teacher, beta=1.0,
                                                               reduction="none"), backward)
    # the interior formula tends to 0 at the ends (it is Liger's, not continuous there)
    near = ce.jensen_shannon_divergence(student, teacher, beta=1e-9, reduction="none")
    assert np.all(near < 1e-7) and np.all(forward > 1e-3)


# --- against PyTorch's autograd in float64, over the options -------------------------------------


@settings(max_examples=40, deadline=None)
@given(
    name=st.sampled_from(NAMES),
    shape=st.sampled_from([(3, 5), (2, 3, 4), (1, 1), (6, 2)]),
    axis=st.sampled_from([-1, 0]),
    temperature=st.sampled_from([1.0, 0.5, 2.0, 7.3]),
    beta=st.sampled_from([0.0, 0.1, 0.5, 0.9, 1.0]),
    reduction=st.sampled_from(["batchmean", "mean", "sum", "none"]),
    scale=st.sampled_from([0.1, 3.0, 30.0]),
    seed=st.integers(0, 2**16),
)
def test_values_and_gradients_equal_torch_autograd(name, shape, axis, temperature, beta,
                                                   reduction, scale, seed) -> None:
    rng = np.random.default_rng(seed)
    student, teacher = rng.normal(size=shape) * scale, rng.normal(size=shape) * scale
    options = _options(name, axis=axis, temperature=temperature, beta=beta, reduction=reduction)
    loss = _ours(name, student, teacher, **options)
    grad = _ours(name, student, teacher, grad=True, **options)

    student_t = torch.tensor(student, requires_grad=True)
    expected = _reduce_reference(
        _torch_reference(name, student_t, torch.tensor(teacher), axis=axis,
                         temperature=temperature, beta=beta), reduction)
    (expected_grad,) = torch.autograd.grad(expected.sum(), student_t)
    np.testing.assert_allclose(loss, expected.detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(grad, expected_grad.numpy(), rtol=1e-9, atol=1e-12)
    assert grad.shape == student.shape and grad.dtype == student.dtype


@pytest.mark.parametrize("name", NAMES)
def test_torch_inputs_differentiate_in_both_arguments_like_the_reference(name: str) -> None:
    rng = np.random.default_rng(2)
    student = torch.tensor(rng.normal(size=(3, 4)), requires_grad=True)
    teacher = torch.tensor(rng.normal(size=(3, 4)), requires_grad=True)
    loss = _ours(name, student, teacher, temperature=1.5)
    ours = torch.autograd.grad(loss, (student, teacher))
    expected = _torch_reference(name, student, teacher, temperature=1.5).mean()
    reference = torch.autograd.grad(expected, (student, teacher))
    assert isinstance(loss, torch.Tensor) and loss.dtype == torch.float64
    for actual, wanted in zip(ours, reference, strict=True):
        torch.testing.assert_close(actual, wanted, rtol=1e-10, atol=1e-12)
    # the analytic gradient equals autograd of crossent's own torch graph
    torch.testing.assert_close(_ours(name, student.detach(), teacher.detach(), grad=True,
                                     temperature=1.5), ours[0], rtol=1e-10, atol=1e-12)


# --- invariants ----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_teacher_equal_to_student_gives_zero_and_a_zero_gradient(name: str) -> None:
    logits = np.random.default_rng(3).normal(size=(4, 9)) * 5
    logits[0, 2] = -INF  # an impossible class in both
    assert float(_ours(name, logits, logits, reduction="sum")) == pytest.approx(0.0, abs=1e-15)
    np.testing.assert_allclose(_ours(name, logits, logits, grad=True), 0.0, atol=1e-16)


@pytest.mark.parametrize("name", NAMES)
def test_temperature_divides_the_logits(name: str) -> None:
    rng = np.random.default_rng(4)
    student, teacher = rng.normal(size=(3, 5)), rng.normal(size=(3, 5))
    hot = _ours(name, student, teacher, temperature=4.0, reduction="none")
    np.testing.assert_allclose(hot, _ours(name, student / 4, teacher / 4, reduction="none"),
                               rtol=1e-13)
    # d/dz of ℓ(z / T) is (1/T) ℓ'(z / T)
    np.testing.assert_allclose(_ours(name, student, teacher, temperature=4.0, grad=True),
                               _ours(name, student / 4, teacher / 4, grad=True) / 4, rtol=1e-12)


@pytest.mark.parametrize("name", NAMES)
def test_axis_equals_moveaxis_and_reductions_agree(name: str) -> None:
    rng = np.random.default_rng(5)
    student, teacher = rng.normal(size=(2, 5, 3)), rng.normal(size=(2, 5, 3))
    per = _ours(name, student, teacher, axis=1, reduction="none")
    last = _ours(name, np.moveaxis(student, 1, -1), np.moveaxis(teacher, 1, -1), reduction="none")
    np.testing.assert_allclose(per, last, rtol=1e-14)
    assert per.shape == (2, 3)
    assert float(_ours(name, student, teacher, axis=1, reduction="sum")) == pytest.approx(per.sum())
    for mean in ("batchmean", "mean"):  # both: the mean over the 6 distributions
        assert float(_ours(name, student, teacher, axis=1, reduction=mean)) == pytest.approx(
            per.sum() / 6)


@pytest.mark.parametrize("name", NAMES)
def test_no_distributions_gives_zero_with_a_zero_gradient(name: str) -> None:
    empty = np.zeros((0, 4))
    assert float(_ours(name, empty, empty)) == 0.0
    assert _ours(name, empty, empty, grad=True).shape == (0, 4)


# --- extreme logits ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_logits_of_1e4_are_exact(name: str) -> None:
    rng = np.random.default_rng(6)
    student, teacher = rng.normal(size=(3, 4)), rng.normal(size=(3, 4))
    shift = np.array([[1e4], [-1e4], [0.0]])  # softmax ignores a shift per row
    np.testing.assert_allclose(_ours(name, student + shift, teacher - shift, reduction="none"),
                               _ours(name, student, teacher, reduction="none"), rtol=1e-9)
    huge = np.array([[1e4, -1e4, 0.0]])
    value = _ours(name, huge, huge[:, ::-1].copy(), reduction="none")
    gradient = _ours(name, huge, huge[:, ::-1].copy(), grad=True)
    assert np.all(np.isfinite(value)) and np.all(np.isfinite(gradient))
    # the teacher puts its mass on class 2, where the student's log-probability is -1e4
    expected = {"kl": 1e4, "reverse_kl": 1e4, "jsd": math.log(2), "tvd": 1.0}[name]
    assert float(value[0]) == pytest.approx(expected, rel=1e-12)


def test_minus_inf_logits() -> None:
    student = np.array([[0.5, -1.0, 2.0, 0.0]])
    teacher = np.array([[1.0, -INF, 0.0, -INF]])
    # a -inf teacher logit contributes 0: the KL over the two possible classes, by hand
    p_t = np.exp([1.0, 0.0]) / np.exp([1.0, 0.0]).sum()
    log_p_s = student[0] - np.log(np.exp(student[0]).sum())
    expected = float(np.sum(p_t * (np.log(p_t) - log_p_s[[0, 2]])))
    assert float(ce.kl_divergence_with_logits(student, teacher)) == pytest.approx(expected)
    for name in ("kl", "jsd", "tvd"):
        assert np.all(np.isfinite(_ours(name, student, teacher, grad=True)))
    # the reverse KL puts student mass where the teacher has none: infinite
    assert float(ce.kl_divergence_with_logits(student, teacher, reverse=True)) == INF
    # a -inf student logit where the teacher has mass: KL(p_t ‖ p_s) = inf, gradient finite
    assert float(ce.kl_divergence_with_logits(teacher, student)) == INF
    assert np.all(np.isfinite(ce.grad.kl_divergence_with_logits(teacher, student)))
    # -inf in both at the same class: no NaN anywhere, also under torch autograd
    both = np.array([[0.3, -INF, 1.0]])
    other = np.array([[1.0, -INF, -0.5]])
    for name in NAMES:
        student_t = torch.tensor(both, requires_grad=True)
        teacher_t = torch.tensor(other, requires_grad=True)
        loss = _ours(name, student_t, teacher_t)
        loss.backward()
        assert torch.isfinite(loss)
        assert torch.isfinite(student_t.grad).all() and torch.isfinite(teacher_t.grad).all()
        np.testing.assert_allclose(student_t.grad.numpy(), _ours(name, both, other, grad=True),
                                   atol=1e-15)
        assert student_t.grad[0, 1] == 0.0


# --- libraries and dtypes ------------------------------------------------------------------------


@requires_jax
@pytest.mark.parametrize("name", NAMES)
def test_jax_values_and_jax_grad_equal_the_analytic_gradient(name: str) -> None:
    import optax

    rng = np.random.default_rng(7)
    student, teacher = rng.normal(size=(3, 6)), rng.normal(size=(3, 6))
    options = _options(name, temperature=2.0, beta=0.3)
    value = _ours(name, jnp.asarray(student), jnp.asarray(teacher), **options)
    np.testing.assert_allclose(value, _ours(name, student, teacher, **options), rtol=1e-13)
    jax_grad = jax.grad(lambda z: _ours(name, z, jnp.asarray(teacher), **options))(
        jnp.asarray(student))
    np.testing.assert_allclose(jax_grad, _ours(name, student, teacher, grad=True, **options),
                               rtol=1e-11, atol=1e-14)
    if name == "kl":  # optax's KL(targets ‖ predictions) per distribution
        log_s = jax.nn.log_softmax(jnp.asarray(student) / 2.0)
        log_t = jax.nn.log_softmax(jnp.asarray(teacher) / 2.0)
        np.testing.assert_allclose(
            _ours(name, student, teacher, temperature=2.0, reduction="none"),
            optax.losses.kl_divergence_with_log_targets(log_s, log_t), rtol=1e-12)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_16_bit_inputs_are_computed_in_float32(dtype: torch.dtype) -> None:
    rng = np.random.default_rng(8)
    student = torch.tensor(rng.normal(size=(4, 8)), dtype=dtype)
    teacher = torch.tensor(rng.normal(size=(4, 8)), dtype=dtype)
    for name in NAMES:
        loss = _ours(name, student, teacher)
        grad = _ours(name, student, teacher, grad=True)
        assert loss.dtype == torch.float32 and grad.dtype == dtype
        exact = _ours(name, student.double(), teacher.double())  # the same rounded inputs
        torch.testing.assert_close(loss.double(), exact, rtol=1e-6, atol=1e-7)


def test_mixed_float_precisions_keep_the_wider_one() -> None:
    student = np.float32([[0.1, 0.2, 0.3]])
    teacher = np.float64([[0.3, 0.2, 0.1]])
    assert ce.kl_divergence_with_logits(student, teacher).dtype == np.float64
    assert ce.grad.kl_divergence_with_logits(student, teacher).dtype == np.float32


# --- errors --------------------------------------------------------------------------------------


def test_errors_name_the_argument_the_value_and_the_fix() -> None:
    logits = np.zeros((2, 3))
    with pytest.raises(ValueError, match=r"teacher_logits .*shape"):
        ce.kl_divergence_with_logits(logits, np.zeros((2, 4)))
    with pytest.raises(ValueError, match=r"temperature must be > 0, got 0.0"):
        ce.total_variation_distance(logits, logits, temperature=0.0)
    with pytest.raises(ValueError, match=r"reduction must be one of 'batchmean', 'mean', 'sum', "
                                         r"'none', got 'avg'"):
        ce.jensen_shannon_divergence(logits, logits, reduction="avg")
    with pytest.raises(ValueError, match=r"beta must be in \[0, 1\], got 1.5"):
        ce.jensen_shannon_divergence(logits, logits, beta=1.5)
    with pytest.raises(TypeError, match=r"student_logits must have a floating-point dtype"):
        ce.kl_divergence_with_logits(np.zeros((2, 3), dtype=np.int64), logits)
    with pytest.raises(TypeError, match=r"reverse must be True or False, got 'yes'"):
        ce.kl_divergence_with_logits(logits, logits, reverse="yes")
    with pytest.raises(ValueError, match=r"axis 2 is out of range for student_logits"):
        ce.kl_divergence_with_logits(logits, logits, axis=2)


def test_value_and_grad_gives_both_from_one_pass() -> None:
    rng = np.random.default_rng(9)
    student, teacher = rng.normal(size=(2, 3)), rng.normal(size=(2, 3))
    loss, grad = ce.value_and_grad(ce.jensen_shannon_divergence, student, teacher, beta=0.2)
    assert float(loss) == float(ce.jensen_shannon_divergence(student, teacher, beta=0.2))
    np.testing.assert_array_equal(grad, ce.grad.jensen_shannon_divergence(student, teacher,
                                                                          beta=0.2))


# --- explain --------------------------------------------------------------------------------------


@pytest.mark.parametrize("options", [
    {"name": "kl"}, {"name": "reverse_kl", "reduction": "none", "temperature": 2.0},
    {"name": "jsd", "beta": 0.3, "reduction": "sum"}, {"name": "jsd", "beta": 0.0},
    {"name": "jsd", "beta": 1.0, "reduction": "mean"}, {"name": "tvd", "temperature": 0.5},
], ids=str)
def test_explain_traces_equal_the_core_and_are_translated(options: dict) -> None:
    from crossent import explain
    from crossent.explain import _i18n

    options = dict(options)
    name = options.pop("name")
    student = np.array([[1.0, 2.0, 0.5], [0.0, 1.0, -INF]])
    teacher = np.array([[0.5, -1.0, 2.0], [1.0, 1.0, -INF]])
    tracer = {"kl": "kl_logits", "reverse_kl": "kl_logits", "jsd": "jsd", "tvd": "tvd"}[name]
    if name == "reverse_kl":
        options["reverse"] = True
    trace = explain.explain(tracer, student, teacher, **options)
    expected = _ours(name, student, teacher, **{k: v for k, v in options.items() if k != "reverse"})
    np.testing.assert_allclose(trace.value, expected, rtol=1e-14)
    for step in trace.steps:
        assert step.name and step.latex and step.text and step.values
        assert step.meaning.endswith("."), step.meaning
    assert _i18n.missing(trace, "zh") == []
    assert re.search(r"[\u4e00-\u9fff]", explain.translate(trace, "zh").title)


def test_explain_kl_shows_the_identity_cross_entropy_equals_entropy_plus_kl() -> None:
    from crossent import explain

    # seed 001's network against a one-hot teacher: H(p) = 0, so KL = H(p, q) = 0.1762
    trace = explain.kl_divergence_with_logits([[1.4, 3.2, 5.0]], [[-INF, -INF, 0.0]])
    steps = {step.name: step.values for step in trace.steps}
    assert steps["entropy"]["H(p)"] == 0.0
    np.testing.assert_allclose(steps["cross-entropy"]["H(p,q)"], steps["KL divergence"]["KL"])
    assert round(float(trace.value), 4) == 0.1762


# --- compare --------------------------------------------------------------------------------------


def test_compare_kl_rows_match_the_real_frameworks_and_say_why_they_differ() -> None:
    from crossent.explain import _i18n

    student = [[[1.0, 2.0, 0.5], [0.0, 1.0, -1.0]]]  # [B=1, T=2, V=3]
    teacher = [[[0.5, -1.0, 2.0], [1.0, 1.0, 1.0]]]
    result = ce.compare("kl_logits", student, teacher)
    rows = {row.convention: row for row in result.rows}
    native = result.native.value
    assert native == pytest.approx(float(np.mean(ce.kl_divergence_with_logits(
        student, teacher, reduction="none"))))
    torch_row = rows["PyTorch F.kl_div(log_target=True, reduction='batchmean')"]
    # PyTorch's batchmean divides the sum of 2 distributions by shape[0] = 1
    assert torch_row.value == pytest.approx(2 * native)
    assert torch_row.real_status == "matches"
    assert torch_row.reason == "PyTorch's 'batchmean' divides by input.shape[0] only"
    optax_row = rows["optax kl_divergence_with_log_targets (mean)"]
    assert optax_row.value == pytest.approx(native) and optax_row.real_status == "matches"
    assert any(row.real_status == "matches" for name, row in rows.items()
               if name.startswith("Keras"))
    # a teacher class of probability 0: PyTorch and optax give NaN, crossent the finite KL
    impossible = ce.compare("kl_logits", [[1.0, 2.0, 0.5]], [[0.5, -INF, 2.0]])
    for row in impossible.rows[1:]:
        assert row.real_status in ("matches", "Keras runs on jax in this process",
                                   "Keras runs on tensorflow in this process",
                                   "Keras runs on torch in this process", "not installed")
        for reason in filter(None, row.reason.split("; ")):
            assert _i18n.text(reason, "zh") != reason
    assert math.isnan(rows_of(impossible)["optax kl_divergence_with_log_targets (mean)"].value)
    with pytest.raises(ValueError, match=r"kl_divergence_with_logits compares logits .* "
                                         r"got inputs='probs'; pass inputs='logits'"):
        ce.compare("kl_logits", [[0.2, 0.8]], [[0.5, 0.5]], inputs="probs")


def rows_of(result) -> dict:
    return {row.convention: row for row in result.rows}
