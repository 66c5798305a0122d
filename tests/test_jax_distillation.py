"""crossent.jax.linear_distillation_loss against a dense float64 composition of the spec."""

from __future__ import annotations

import numpy as np
import pytest

jax = pytest.importorskip("jax")
jnp = pytest.importorskip("jax.numpy")

import crossent.jax as cj  # noqa: E402

N, D, DT, V, K = 9, 5, 4, 7, 3
IGNORE = -100


def _inputs(seed=0):
    rng = np.random.default_rng(seed)
    return dict(
        hidden=rng.normal(size=(N, D)), weight=rng.normal(size=(V, D)), bias=rng.normal(size=V),
        teacher_hidden=rng.normal(size=(N, DT)), teacher_weight=rng.normal(size=(V, DT)),
        target=np.where(np.arange(N) % 4 == 1, IGNORE, rng.integers(0, V, size=N)),
        token_weight=rng.uniform(0.5, 2.0, size=N),
    )


def dense(student_logits, teacher_log_probs, loss, beta, temperature):
    """The divergence per token, written from its definition with numpy-style jnp (float64)."""
    s = jax.nn.log_softmax(student_logits / temperature, axis=-1)
    q = teacher_log_probs
    ps, pt = jnp.exp(s), jnp.exp(q)
    safe_q = jnp.where(pt > 0, q, 0.0)
    kl = jnp.sum(jnp.where(pt > 0, pt * (safe_q - s), 0), -1)
    if loss == "kl" or (loss == "jsd" and beta == 0):
        return kl
    if loss == "reverse_kl" or (loss == "jsd" and beta == 1):
        return jnp.sum(ps * (s - q), -1)
    if loss == "tvd":
        return 0.5 * jnp.sum(jnp.abs(pt - ps), -1)
    m = beta * pt + (1 - beta) * ps
    return beta * jnp.sum(jnp.where(pt > 0, pt * (safe_q - jnp.log(m)), 0), -1) + (
        1 - beta) * jnp.sum(ps * (s - jnp.log(m)), -1)


@pytest.mark.parametrize("teacher_kind", ["logits", "linear", "sparse"])
@pytest.mark.parametrize("loss,beta", [("kl", 0.5), ("reverse_kl", 0.5), ("jsd", 0.3),
                                       ("jsd", 0.0), ("jsd", 1.0), ("tvd", 0.5)])
def test_equals_dense_float64(x64, teacher_kind, loss, beta):
    if teacher_kind == "sparse" and loss in ("reverse_kl",) or (
            teacher_kind == "sparse" and loss == "jsd" and beta == 1.0):
        pytest.skip("infinite for a sparse teacher")
    a = _inputs()
    temperature, hard_weight = 1.7, 0.25
    teacher_logits = a["teacher_hidden"] @ a["teacher_weight"].T
    if teacher_kind == "logits":
        teacher = teacher_logits
        q = jax.nn.log_softmax(teacher_logits / temperature, -1)
    elif teacher_kind == "linear":
        teacher = (a["teacher_hidden"], a["teacher_weight"])
        q = jax.nn.log_softmax(teacher_logits / temperature, -1)
    else:
        indices = np.argsort(-teacher_logits, axis=-1)[:, :K]
        logprobs = np.take_along_axis(np.asarray(jax.nn.log_softmax(teacher_logits)), indices, 1)
        teacher = (indices, logprobs)
        top = np.asarray(jax.nn.log_softmax(logprobs / temperature, -1))
        q = np.full((N, V), -np.inf)
        np.put_along_axis(q, indices, top, 1)
        q = jnp.asarray(q)

    def ours(h, w, b):
        return cj.linear_distillation_loss(
            h, w, teacher, loss=loss, beta=beta, temperature=temperature, target=a["target"],
            hard_weight=hard_weight, token_weight=a["token_weight"], bias=b, chunk_size=4)

    def reference(h, w, b):
        z = h @ w.T + b
        soft = temperature**2 * dense(z, q, loss, beta, temperature)
        counted = a["target"] != IGNORE
        safe = np.where(counted, a["target"], 0)
        hard = -jnp.take_along_axis(jax.nn.log_softmax(z), safe[:, None], 1)[:, 0]
        per = a["token_weight"] * jnp.where(counted, (1 - hard_weight) * soft + hard_weight * hard, 0)
        return jnp.sum(per) / jnp.sum(jnp.where(counted, a["token_weight"], 0))

    args = (a["hidden"], a["weight"], a["bias"])
    got = jax.value_and_grad(ours, argnums=(0, 1, 2))(*args)
    want = jax.value_and_grad(reference, argnums=(0, 1, 2))(*args)
    np.testing.assert_allclose(got[0], want[0], rtol=1e-11)
    for g, w in zip(got[1], want[1], strict=True):
        np.testing.assert_allclose(g, w, rtol=1e-9, atol=1e-12)


def test_teacher_equal_to_student_is_zero_with_zero_gradient():
    a = _inputs(1)
    hidden, weight = a["hidden"].astype(np.float32), a["weight"].astype(np.float32)
    for loss in ("kl", "reverse_kl", "jsd", "tvd"):
        value, grad = jax.value_and_grad(
            lambda h, loss=loss: cj.linear_distillation_loss(
                h, weight, (hidden, weight), loss=loss, temperature=2.0, chunk_size=4)
        )(hidden)
        assert abs(float(value)) < 1e-6
        if loss != "tvd":  # |x| has no derivative at 0
            assert float(jnp.max(jnp.abs(grad))) < 1e-6


def test_reductions_normalizer_and_errors():
    a = _inputs(2)
    hidden, weight = a["hidden"].astype(np.float32), a["weight"].astype(np.float32)
    teacher = (a["teacher_hidden"].astype(np.float32), a["teacher_weight"].astype(np.float32))
    per = cj.linear_distillation_loss(hidden, weight, teacher, target=a["target"],
                                      reduction="none")
    assert per.shape == (N,) and float(per[1]) == 0.0
    np.testing.assert_allclose(
        cj.linear_distillation_loss(hidden, weight, teacher, target=a["target"],
                                    reduction="sum"), jnp.sum(per), rtol=1e-6)
    np.testing.assert_allclose(
        cj.linear_distillation_loss(hidden, weight, teacher, target=a["target"], normalizer=4.0),
        jnp.sum(per) / 4.0, rtol=1e-6)
    with pytest.raises(ValueError, match="reverse_kl.*sparse"):
        cj.linear_distillation_loss(hidden, weight, (np.zeros((N, 2), int), np.zeros((N, 2))),
                                    loss="reverse_kl")
    with pytest.raises(ValueError, match="'jsd' .beta=1.0. with a sparse"):
        cj.linear_distillation_loss(hidden, weight, (np.zeros((N, 2), int), np.zeros((N, 2))),
                                    loss="jsd", beta=1.0)
    with pytest.raises(ValueError, match="hard_weight=0.5 needs target"):
        cj.linear_distillation_loss(hidden, weight, teacher, hard_weight=0.5)
    with pytest.raises(ValueError, match="loss must be one of"):
        cj.linear_distillation_loss(hidden, weight, teacher, loss="l2")
