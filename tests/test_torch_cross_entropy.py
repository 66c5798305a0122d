"""crossent.torch.cross_entropy / CrossEntropyLoss against torch.nn.functional.cross_entropy.

Expected values come from PyTorch 2.13 itself (loss and ``.grad``), from
``torch.autograd.gradcheck`` (finite differences) and from a float64 reference.
"""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
import torch.nn.functional as F  # noqa: E402

import crossent.torch as ct  # noqa: E402
from crossent import kernels  # noqa: E402


@pytest.fixture
def kernel_calls(monkeypatch):
    """Counts calls into the fused kernel."""
    calls: list[bool] = []
    original = kernels.cross_entropy

    def spy(inputs, label_smoothing, reduction, compute_grad):
        calls.append(compute_grad)
        return original(inputs, label_smoothing, reduction, compute_grad)

    monkeypatch.setattr(kernels, "cross_entropy", spy)
    return calls


def both(input, target, grad_output=None, **options):
    """(loss, grad) from crossent.torch and from F.cross_entropy on the same inputs."""
    results = []
    for function in (ct.cross_entropy, F.cross_entropy):
        x = input.detach().clone().requires_grad_(True)
        loss = function(x, target, **options)
        loss.backward(torch.ones_like(loss) if grad_output is None else grad_output)
        results.append((loss.detach(), x.grad))
    return results


TOLERANCE = {torch.float32: dict(rtol=2e-5, atol=1e-6), torch.float64: dict(rtol=1e-12, atol=1e-14)}

OPTIONS = [
    {},
    {"reduction": "sum"},
    {"reduction": "none"},
    {"label_smoothing": 0.15},
    {"weight": True},
    {"weight": True, "label_smoothing": 0.3},
    {"ignore_index": 2},
    {"ignore_index": 2, "weight": True, "label_smoothing": 0.1, "reduction": "none"},
    {"ignore_index": -100, "label_smoothing": 0.2, "reduction": "mean"},
]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("kind", ["index", "probability"])
@pytest.mark.parametrize("option_set", range(len(OPTIONS)))
def test_matches_pytorch(kernel_calls, dtype, kind, option_set):
    generator = torch.Generator().manual_seed(option_set)
    input = torch.randn(13, 7, generator=generator, dtype=dtype) * 3
    options = dict(OPTIONS[option_set])
    if options.get("weight"):
        options["weight"] = torch.rand(7, generator=generator, dtype=dtype) + 0.1
    if kind == "index":
        target = torch.randint(0, 7, (13,), generator=generator)
        target[::4] = options.get("ignore_index", -100)
    else:
        target = torch.softmax(torch.randn(13, 7, generator=generator, dtype=dtype), dim=1)
        options.pop("ignore_index", None)
    grad_output = None
    if options.get("reduction") == "none":
        grad_output = torch.randn(13, generator=generator, dtype=dtype)
    (loss, grad), (expected_loss, expected_grad) = both(input, target, grad_output, **options)
    assert loss.dtype == expected_loss.dtype and loss.shape == expected_loss.shape
    torch.testing.assert_close(loss, expected_loss, **TOLERANCE[dtype])
    torch.testing.assert_close(grad, expected_grad, **TOLERANCE[dtype])
    assert kernel_calls == [True]


def test_spatial_and_unbatched(kernel_calls):
    """(N, C, H, W) with class axis 1, and a single unbatched (C,) row."""
    input = torch.randn(2, 5, 3, 4)
    target = torch.randint(0, 5, (2, 3, 4))
    for reduction in ("mean", "none"):
        grad_output = torch.randn(2, 3, 4) if reduction == "none" else None
        (loss, grad), (expected_loss, expected_grad) = both(
            input, target, grad_output, reduction=reduction, label_smoothing=0.1
        )
        torch.testing.assert_close(loss, expected_loss)
        torch.testing.assert_close(grad, expected_grad)
    (loss, grad), (expected_loss, expected_grad) = both(torch.randn(6), torch.tensor(4))
    torch.testing.assert_close(loss, expected_loss)
    torch.testing.assert_close(grad, expected_grad)
    assert len(kernel_calls) == 3


def test_scaled_and_repeated_backward():
    """grad_output ≠ 1 scales the saved gradient; retain_graph backward twice accumulates."""
    input = torch.randn(8, 6, requires_grad=True)
    target = torch.randint(0, 6, (8,))
    loss = ct.cross_entropy(input, target)
    (3.0 * loss).backward(retain_graph=True)
    loss.backward()
    reference = torch.randn(8, 6).copy_(input.detach()).requires_grad_(True)
    expected = F.cross_entropy(reference, target)
    (3.0 * expected).backward(retain_graph=True)
    expected.backward()
    torch.testing.assert_close(input.grad, reference.grad)


def test_gradcheck():
    input = torch.randn(4, 5, dtype=torch.float64, requires_grad=True)
    target = torch.tensor([0, 4, -100, 2])
    weight = torch.rand(5, dtype=torch.float64) + 0.5
    for reduction in ("mean", "sum", "none"):
        assert torch.autograd.gradcheck(
            lambda x, r=reduction: ct.cross_entropy(
                x, target, weight=weight, label_smoothing=0.2, reduction=r
            ),
            (input,),
        )


def test_forward_only_skips_the_gradient(kernel_calls):
    input = torch.randn(5, 4)
    target = torch.randint(0, 4, (5,))
    with torch.no_grad():
        loss = ct.cross_entropy(input, target)
    torch.testing.assert_close(loss, F.cross_entropy(input, target))
    assert kernel_calls == [False]
    assert not loss.requires_grad


def test_nothing_counted_is_nan_as_in_pytorch():
    """PyTorch's 'mean' over nothing counted: NaN loss, zero gradient (crossent's core gives 0)."""
    input = torch.randn(3, 4)
    target = torch.full((3,), -100)
    (loss, grad), (expected_loss, expected_grad) = both(input, target, label_smoothing=0.1)
    assert torch.isnan(loss) and torch.isnan(expected_loss)
    torch.testing.assert_close(grad, expected_grad)
    weight = torch.tensor([0.0, 1.0, 1.0, 1.0])
    (loss, grad), (expected_loss, expected_grad) = both(input, torch.zeros(3, dtype=torch.long),
                                                        weight=weight)
    torch.testing.assert_close(loss, expected_loss, equal_nan=True)
    torch.testing.assert_close(grad, expected_grad, equal_nan=True)
    (loss, _), (expected_loss, _) = both(input, target, reduction="sum")
    torch.testing.assert_close(loss, expected_loss)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_sixteen_bit_falls_back_to_pytorch(kernel_calls, dtype):
    input = torch.randn(6, 5).to(dtype)
    target = torch.randint(0, 5, (6,))
    (loss, grad), (expected_loss, expected_grad) = both(input, target)
    assert torch.equal(loss, expected_loss) and torch.equal(grad, expected_grad)
    assert kernel_calls == []


def test_weight_or_target_with_grad_falls_back(kernel_calls):
    """Gradients w.r.t. probability targets or class weights: PyTorch's own autograd."""
    input = torch.randn(4, 3, requires_grad=True)
    soft = torch.softmax(torch.randn(4, 3), 1).requires_grad_(True)
    weight = torch.rand(3, requires_grad=True)
    ct.cross_entropy(input, soft, weight=weight).backward()
    assert soft.grad is not None and weight.grad is not None
    with pytest.raises(RuntimeError, match="not differentiable with respect to argument 'weight'"):
        ct.cross_entropy(input, torch.tensor([0, 1, 2, 0]), weight=weight)  # PyTorch's error
    assert kernel_calls == []


def test_bad_arguments():
    input = torch.randn(2, 3)
    with pytest.raises(ValueError, match="reduction must be one of 'none', 'mean', 'sum'"):
        ct.cross_entropy(input, torch.tensor([0, 1]), reduction="avg")
    with pytest.raises(ValueError, match="target contains class index 3"):
        ct.cross_entropy(input, torch.tensor([0, 3]))
    with pytest.raises(ValueError, match="label_smoothing must be in"):
        ct.CrossEntropyLoss(label_smoothing=1.5)
    with pytest.raises(ValueError, match="reduction must be one of"):
        ct.CrossEntropyLoss(reduction="batchmean")
    with pytest.raises(ValueError, match="weight must be a 1-D floating tensor"):
        ct.CrossEntropyLoss(weight=torch.ones(2, 3))


def test_module_matches_pytorch_module():
    weight = torch.rand(5) + 0.5
    ours = ct.CrossEntropyLoss(weight=weight, ignore_index=1, label_smoothing=0.05)
    theirs = torch.nn.CrossEntropyLoss(weight=weight, ignore_index=1, label_smoothing=0.05)
    assert set(ours.state_dict()) == set(theirs.state_dict()) == {"weight"}
    input = torch.randn(9, 5)
    target = torch.randint(0, 5, (9,))
    torch.testing.assert_close(ours(input, target), theirs(input, target))
    assert "label_smoothing=0.05" in repr(ours)


def test_extreme_logits_match_float64():
    """|logits| up to 1e4 and -inf classes: within 4x PyTorch's float32 error of float64."""
    generator = torch.Generator().manual_seed(9)
    input = (torch.rand(256, 1000, generator=generator) - 0.5) * 2e4
    input[:, ::7] = -float("inf")
    target = torch.randint(0, 1000, (256,), generator=generator)
    target = torch.where(target % 7 == 0, target + 1, target)
    exact = input.double().requires_grad_(True)
    F.cross_entropy(exact, target).backward()
    errors = []
    for function in (ct.cross_entropy, F.cross_entropy):
        x = input.clone().requires_grad_(True)
        loss = function(x, target)
        loss.backward()
        loss_error = abs(loss.item() - F.cross_entropy(exact, target).item())
        grad_error = (x.grad.double() - exact.grad).abs().max().item()
        errors.append(np.array([loss_error, grad_error]))
    floor = np.finfo(np.float32).eps * np.array([abs(loss.item()), exact.grad.abs().max().item()])
    assert np.all(errors[0] <= 4 * np.maximum(errors[1], floor)), errors


# --- higher derivatives, torch.func, torch.compile ---------------------------------------

HIGHER_OPTIONS = [{}, {"weight": True, "label_smoothing": 0.2}, {"reduction": "none"},
                  {"reduction": "sum", "label_smoothing": 0.1}]


def _options(options):
    options = dict(options)
    if options.get("weight"):
        options["weight"] = torch.linspace(0.5, 2.0, 4, dtype=torch.float64)
    return options


@pytest.mark.parametrize("option_set", range(len(HIGHER_OPTIONS)))
def test_double_backward_is_pytorchs(kernel_calls, option_set):
    """create_graph=True: the gradient carries a graph, and its derivative (a Hessian-vector
    product, as in a gradient penalty) is F.cross_entropy's."""
    options = _options(HIGHER_OPTIONS[option_set])
    input = torch.randn(5, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    target = torch.tensor([0, 3, -100, 1, 2])
    direction = torch.arange(20.0, dtype=torch.float64).reshape(5, 4)
    results = []
    for function in (ct.cross_entropy, F.cross_entropy):
        x = input.clone().requires_grad_(True)
        loss = function(x, target, **options).sum()
        (grad,) = torch.autograd.grad(loss, x, create_graph=True)
        assert grad.requires_grad
        (hessian_direction,) = torch.autograd.grad((grad * direction).sum(), x)
        results.append((loss.detach(), grad.detach(), hessian_direction))
    for ours, theirs in zip(*results, strict=True):
        torch.testing.assert_close(ours, theirs, rtol=1e-12, atol=1e-14)
    assert kernel_calls == [True]  # the fused forward; backward builds its graph from torch ops


@pytest.mark.parametrize("option_set", range(len(HIGHER_OPTIONS)))
def test_torch_func_transforms(option_set):
    from torch.func import grad, hessian, jacrev, vmap

    options = _options(HIGHER_OPTIONS[option_set])
    input = torch.randn(5, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(4))
    target = torch.tensor([0, 3, -100, 1, 2])
    for transform in (grad, jacrev, hessian):
        ours, theirs = (transform(lambda x, f=f: f(x, target, **options).sum())(input)
                        for f in (ct.cross_entropy, F.cross_entropy))
        torch.testing.assert_close(ours, theirs, rtol=1e-12, atol=1e-14)
    batch = torch.stack([input, 2 * input, -input])
    ours, theirs = (vmap(lambda x, f=f: f(x, target, **options))(batch)
                    for f in (ct.cross_entropy, F.cross_entropy))
    torch.testing.assert_close(ours, theirs, rtol=1e-12, atol=1e-14)


def test_torch_compile_full_graph_without_warnings(kernel_calls):
    """One graph (fullgraph=True), the custom op's fake implementation for tracing, no
    warnings; forward and backward are the eager numbers. ("aot_eager" traces forward and
    backward as inductor does, without generating code.)"""
    import warnings

    input = torch.randn(6, 5, generator=torch.Generator().manual_seed(5))
    target = torch.tensor([0, 4, -100, 2, 1, 3])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        compiled = torch.compile(ct.cross_entropy, fullgraph=True, backend="aot_eager")
        module = torch.compile(ct.CrossEntropyLoss(label_smoothing=0.1, reduction="none"),
                               fullgraph=True, backend="aot_eager")
        x = input.clone().requires_grad_(True)
        loss = compiled(x, target)
        loss.backward()
        per_position = module(input, target)
        nothing_counted = compiled(input, torch.full((6,), -100))
    assert [str(w.message) for w in caught] == []
    reference = input.clone().requires_grad_(True)
    F.cross_entropy(reference, target).backward()
    torch.testing.assert_close(loss, F.cross_entropy(input, target))
    torch.testing.assert_close(x.grad, reference.grad)
    torch.testing.assert_close(per_position, F.cross_entropy(input, target, reduction="none",
                                                             label_smoothing=0.1))
    assert torch.isnan(nothing_counted)
    assert kernel_calls  # the fused kernel ran inside the compiled graph
