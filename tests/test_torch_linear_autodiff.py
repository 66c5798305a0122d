"""crossent.torch.linear_cross_entropy beyond one backward: double backward (create_graph),
torch.func transforms and torch.compile, each against the dense composition
F.cross_entropy(F.linear(hidden, weight, bias), target, ...) in float64."""

import warnings

import pytest
import torch
import torch.nn.functional as F

from crossent.torch import LinearCrossEntropyLoss, linear_cross_entropy

from .test_torch_linear import plain_linear_cross_entropy

EXACT = dict(rtol=1e-10, atol=1e-12)
TARGET = torch.tensor([0, 4, -100, 2, 1, 3, 6])
OPTION_SETS = [
    {},
    {"bias": True},
    {"class_weight": True, "label_smoothing": 0.2},
    {"z_loss": 0.05, "reduction": "sum"},
    {"softcap": 2.0, "reduction": "none"},
    {"ignore_index": 4, "label_smoothing": 0.1, "bias": True, "reduction": "none"},
    {"class_weight": True, "z_loss": 0.01, "softcap": 3.0, "label_smoothing": 0.3, "bias": True},
]


def _inputs(seed=0, vocab=7, hidden_size=3, tokens=7):
    generator = torch.Generator().manual_seed(seed)
    hidden = torch.randn(tokens, hidden_size, generator=generator, dtype=torch.float64)
    weight = torch.randn(vocab, hidden_size, generator=generator, dtype=torch.float64)
    bias = torch.randn(vocab, generator=generator, dtype=torch.float64)
    return hidden, weight, bias


def _options(option_set):
    options = dict(OPTION_SETS[option_set])
    if options.get("class_weight"):
        options["class_weight"] = torch.linspace(0.5, 2.0, 7, dtype=torch.float64)
    return options


def _call(function, hidden, weight, bias, options, target=TARGET, **extra):
    options = dict(options)
    options["bias"] = bias if options.pop("bias", False) else None
    if "ignore_index" in options:  # the ignored tokens (-100) and every target of that class
        target = torch.where(target == -100, options["ignore_index"], target)
    loss = function(hidden, weight, target, **options, **extra)
    return (
        loss
        if options.get("reduction") != "none"
        else loss @ torch.linspace(-1, 2, len(target), dtype=loss.dtype)
    )


@pytest.mark.parametrize("option_set", range(len(OPTION_SETS)))
def test_gradient_penalty_is_the_dense_compositions(option_set):
    """create_graph=True: the gradient carries a graph; the gradient of a penalty on it
    (Hessian-vector products w.r.t. hidden, weight and bias) is the dense composition's."""
    options = _options(option_set)
    results = []
    for function in (linear_cross_entropy, plain_linear_cross_entropy):
        leaves = [t.clone().requires_grad_(True) for t in _inputs(option_set)]
        extra = {"chunk_size": 3} if function is linear_cross_entropy else {}
        loss = _call(function, *leaves, options, **extra)
        grads = torch.autograd.grad(loss, leaves, create_graph=True, allow_unused=True)
        grads = [torch.zeros_like(leaf) if g is None else g for g, leaf in zip(grads, leaves, strict=True)]
        assert all(g.requires_grad for g in grads[:2])
        penalty = sum(
            (g * torch.cos(torch.arange(g.numel(), dtype=g.dtype)).reshape(g.shape)).sum() for g in grads
        ) + sum((g**2).sum() for g in grads)
        second = torch.autograd.grad(penalty, leaves, allow_unused=True)
        results.append(
            [
                loss.detach(),
                *[g.detach() for g in grads],
                *[torch.zeros_like(leaf) if s is None else s for s, leaf in zip(second, leaves, strict=True)],
            ]
        )
    for ours, theirs in zip(*results, strict=True):
        torch.testing.assert_close(ours, theirs, **EXACT)


@pytest.mark.filterwarnings("ignore:Using backward\\(\\) with create_graph=True")
def test_backward_with_create_graph_accumulates_a_differentiable_grad():
    # loss.backward(create_graph=True), the usual gradient-penalty idiom
    hidden, weight, _ = (t.requires_grad_(True) for t in _inputs(1))
    linear_cross_entropy(hidden, weight, TARGET, z_loss=0.1).backward(create_graph=True)
    assert hidden.grad.requires_grad and weight.grad.requires_grad
    (hessian_row,) = torch.autograd.grad(hidden.grad[0, 0], hidden)
    reference = [t.detach().clone().requires_grad_(True) for t in (hidden, weight)]
    (grad,) = torch.autograd.grad(
        plain_linear_cross_entropy(*reference, TARGET, z_loss=0.1), reference[0], create_graph=True
    )
    (expected,) = torch.autograd.grad(grad[0, 0], reference[0])
    torch.testing.assert_close(hessian_row, expected, **EXACT)


def test_gradcheck_and_gradgradcheck_with_every_option():
    hidden, weight, bias = (t[:5].clone().requires_grad_(True) for t in _inputs(2, vocab=4))
    target = torch.tensor([0, 3, -100, 1, 2])
    class_weight = torch.tensor([0.5, 1.0, 1.5, 2.0], dtype=torch.float64, requires_grad=True)

    def function(hidden, weight, bias, class_weight):
        return linear_cross_entropy(
            hidden,
            weight,
            target,
            bias=bias,
            class_weight=class_weight,
            label_smoothing=0.2,
            z_loss=0.1,
            softcap=3.0,
            chunk_size=2,
        )

    inputs = (hidden, weight, bias, class_weight)
    assert torch.autograd.gradcheck(function, inputs)
    assert torch.autograd.gradgradcheck(function, inputs)
    per_token = lambda hidden, weight: linear_cross_entropy(  # noqa: E731
        hidden, weight, target, reduction="none", softcap=2.0, chunk_size=2
    )
    assert torch.autograd.gradgradcheck(per_token, (hidden, weight))


def test_class_weight_gradient():
    """A class_weight that requires grad is differentiated (F.cross_entropy refuses it): the
    derivative of the hand-written weighted mean with label smoothing,
    Σ_i [(1-ε) w_{y_i} (-log p_{i,y_i}) + (ε/V) Σ_c w_c (-log p_ic)] / Σ_i w_{y_i}."""
    hidden, weight, _ = _inputs(3)
    epsilon, counted = 0.1, TARGET != -100
    results = []
    for ours in (True, False):
        class_weight = torch.linspace(0.5, 2.0, 7, dtype=torch.float64, requires_grad=True)
        if ours:
            loss = linear_cross_entropy(
                hidden, weight, TARGET, class_weight=class_weight, label_smoothing=epsilon
            )
        else:
            log_probs = torch.log_softmax(hidden[counted] @ weight.T, dim=1)
            target_weight = class_weight[TARGET[counted]]
            picked = log_probs.gather(1, TARGET[counted, None])[:, 0]
            loss = (
                -((1 - epsilon) * target_weight * picked + epsilon / 7 * log_probs @ class_weight).sum()
                / target_weight.sum()
            )
        results.append(torch.autograd.grad(loss, class_weight, create_graph=True)[0])
        results.append(torch.autograd.grad(results[-1].sum(), class_weight)[0])
    for got, expected in zip(results[:2], results[2:], strict=True):
        torch.testing.assert_close(got, expected, **EXACT)


def test_float32_double_backward_matches():
    hidden, weight, bias = (t.float() for t in _inputs(4))
    results = []
    for function in (linear_cross_entropy, plain_linear_cross_entropy):
        leaves = [hidden.clone().requires_grad_(True), weight.clone().requires_grad_(True)]
        (grad,) = torch.autograd.grad(function(*leaves, TARGET, softcap=5.0), leaves[0], create_graph=True)
        results.append(torch.autograd.grad(grad.square().sum(), leaves))
    for ours, theirs in zip(*results, strict=True):
        torch.testing.assert_close(ours, theirs, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("option_set", [0, 2, 4, 6])
def test_torch_func_transforms(option_set):
    from torch.func import grad, hessian, jacrev, vmap

    options = _options(option_set)
    hidden, weight, bias = _inputs(5)
    for transform in (grad, jacrev):
        ours, theirs = (
            transform(lambda h, w, b, f=f: _call(f, h, w, b, options), argnums=(0, 1, 2))(
                hidden, weight, bias
            )
            for f in (linear_cross_entropy, plain_linear_cross_entropy)
        )
        for got, expected in zip(ours, theirs, strict=True):
            torch.testing.assert_close(got, expected, **EXACT)
    ours, theirs = (
        hessian(lambda h, f=f: _call(f, h, weight, bias, options))(hidden)
        for f in (linear_cross_entropy, plain_linear_cross_entropy)
    )
    torch.testing.assert_close(ours, theirs, **EXACT)
    # vmap over a batch of hidden states and targets (the targets' range check is skipped);
    # F.cross_entropy cannot vmap over targets with class weights, so the reference loops
    batch = torch.stack([hidden, 2 * hidden, -hidden])
    targets = torch.stack([TARGET, TARGET.flip(0), torch.full_like(TARGET, 5)])
    ours = vmap(lambda h, t: _call(linear_cross_entropy, h, weight, bias, options, target=t))(batch, targets)
    theirs = torch.stack(
        [
            _call(plain_linear_cross_entropy, h, weight, bias, options, target=t)
            for h, t in zip(batch, targets, strict=True)
        ]
    )
    torch.testing.assert_close(ours, theirs, **EXACT)


def test_torch_compile_full_graph_without_warnings():
    """One graph (fullgraph=True), no warnings; forward, backward and the per-token losses are
    the dense composition's. ("aot_eager" traces forward and backward as inductor does,
    without generating code.)"""
    hidden, weight, bias = _inputs(6)
    options = dict(z_loss=0.01, softcap=3.0, label_smoothing=0.1)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        compiled = torch.compile(linear_cross_entropy, fullgraph=True, backend="aot_eager")
        module = torch.compile(
            LinearCrossEntropyLoss(reduction="none", return_lse=True, **options),
            fullgraph=True,
            backend="aot_eager",
        )
        leaves = [t.clone().requires_grad_(True) for t in (hidden, weight, bias)]
        loss = compiled(leaves[0], leaves[1], TARGET, bias=leaves[2], chunk_size=3, **options)
        loss.backward()
        per_token = module(hidden, weight, TARGET, bias)
    assert [str(w.message) for w in caught] == []
    reference = [t.clone().requires_grad_(True) for t in (hidden, weight, bias)]
    expected = plain_linear_cross_entropy(reference[0], reference[1], TARGET, bias=reference[2], **options)
    expected.backward()
    torch.testing.assert_close(loss, expected, **EXACT)
    for leaf, ref in zip(leaves, reference, strict=True):
        torch.testing.assert_close(leaf.grad, ref.grad, **EXACT)
    torch.testing.assert_close(
        per_token.loss,
        plain_linear_cross_entropy(hidden, weight, TARGET, bias=bias, reduction="none", **options),
        **EXACT,
    )
    torch.testing.assert_close(
        per_token.lse, torch.logsumexp(3.0 * torch.tanh(F.linear(hidden, weight, bias) / 3.0), dim=1), **EXACT
    )


# token weights (with zeros: those tokens are dropped), temperature, the global normalizer and
# 'none' with a random upstream gradient, alone and with the older options
NEW_OPTION_SETS = [
    {"token_weight": True},
    {"temperature": 0.6, "bias": True, "label_smoothing": 0.2, "reduction": "sum"},
    {"normalizer": 5.5, "z_loss": 0.05, "class_weight": True},
    {"reduction": "none", "token_weight": True, "temperature": 1.8, "softcap": 2.0},
    {"reduction": "none", "temperature": 0.8, "z_loss": 0.02, "bias": True, "return_lse": True},
    {"normalizer": 3.0, "token_weight": True, "temperature": 1.3, "z_loss": 0.01,
     "label_smoothing": 0.1, "class_weight": True, "softcap": 3.0, "bias": True, "ignore_index": 4},
]


@pytest.mark.parametrize("option_set", range(len(NEW_OPTION_SETS)))
def test_gradient_penalty_with_token_weight_temperature_normalizer(option_set):
    """create_graph=True with the newer options: gradients and the gradient of a penalty on
    them (Hessian-vector products w.r.t. hidden, weight and bias) equal the dense float64
    oracle's (F.cross_entropy of the whole logits, tests/test_torch_linear_options.py)."""
    from .test_torch_linear_options import oracle

    options = dict(NEW_OPTION_SETS[option_set])
    generator = torch.Generator().manual_seed(100 + option_set)
    use_bias, return_lse = options.pop("bias", False), options.pop("return_lse", False)
    ignore_index = options.pop("ignore_index", -100)
    target = torch.where(TARGET == -100, ignore_index, TARGET)
    if options.get("class_weight"):
        options["class_weight"] = torch.linspace(0.5, 2.0, 7, dtype=torch.float64)
    if options.get("token_weight"):
        options["token_weight"] = torch.rand(len(TARGET), generator=generator, dtype=torch.float64)
        options["token_weight"][[1, 5]] = 0.0
    upstream = torch.randn(len(TARGET), generator=generator, dtype=torch.float64)
    results = []
    for ours in (True, False):
        leaves = [t.clone().requires_grad_(True) for t in _inputs(option_set)]
        bias = leaves[2] if use_bias else None
        if ours:
            loss = linear_cross_entropy(leaves[0], leaves[1], target, bias=bias, ignore_index=ignore_index,
                                        chunk_size=3, return_lse=return_lse, **options)
            loss = loss.loss if return_lse else loss
        else:
            loss = oracle(leaves[0], leaves[1], target, bias=bias, ignore_index=ignore_index, **options)
        if options.get("reduction") == "none":
            loss = loss @ upstream
        grads = torch.autograd.grad(loss, leaves, create_graph=True, allow_unused=True)
        grads = [torch.zeros_like(leaf) if g is None else g for g, leaf in zip(grads, leaves, strict=True)]
        assert all(g.requires_grad for g in grads[:2])
        penalty = sum(
            (g * torch.cos(torch.arange(g.numel(), dtype=g.dtype)).reshape(g.shape)).sum() for g in grads
        ) + sum((g**2).sum() for g in grads)
        second = torch.autograd.grad(penalty, leaves, allow_unused=True)
        second = [torch.zeros_like(leaf) if s is None else s for s, leaf in zip(second, leaves, strict=True)]
        results.append([loss.detach(), *[g.detach() for g in grads], *second])
    for got, expected in zip(*results, strict=True):
        torch.testing.assert_close(got, expected, **EXACT)


@pytest.mark.parametrize("option_set", [0, 3, 5])
def test_torch_func_with_token_weight_temperature_normalizer(option_set):
    """torch.func.grad and hessian with the newer options, against the dense oracle."""
    from torch.func import grad, hessian

    from .test_torch_linear_options import oracle

    options = dict(NEW_OPTION_SETS[option_set])
    options.pop("bias", None)
    ignore_index = options.pop("ignore_index", -100)
    target = torch.where(TARGET == -100, ignore_index, TARGET)
    if options.get("class_weight"):
        options["class_weight"] = torch.linspace(0.5, 2.0, 7, dtype=torch.float64)
    if options.get("token_weight"):
        options["token_weight"] = torch.linspace(0.0, 1.5, len(TARGET), dtype=torch.float64)
    upstream = torch.linspace(-1, 2, len(TARGET), dtype=torch.float64)
    hidden, weight, _ = _inputs(7)

    def scalar(loss):
        return loss @ upstream if options.get("reduction") == "none" else loss

    def ours(h, w):
        return scalar(linear_cross_entropy(h, w, target, ignore_index=ignore_index, chunk_size=2, **options))

    def theirs(h, w):
        return scalar(oracle(h, w, target, ignore_index=ignore_index, **options))

    for got, expected in zip(grad(ours, argnums=(0, 1))(hidden, weight),
                             grad(theirs, argnums=(0, 1))(hidden, weight), strict=True):
        torch.testing.assert_close(got, expected, **EXACT)
    torch.testing.assert_close(hessian(ours)(hidden, weight), hessian(theirs)(hidden, weight), **EXACT)
