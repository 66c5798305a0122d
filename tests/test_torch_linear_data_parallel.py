"""Data parallelism with the global denominator, on spawned gloo groups of 2 and 3 ranks.

Each rank holds a slice of the tokens of one batch (uneven slices; one rank's tokens all
ignored, or none at all), computes ``linear_cross_entropy(..., normalizer=count_targets(...,
group=world))`` and backpropagates; the gradients of ``weight`` and ``bias`` are then summed
over the ranks (an all-reduce SUM, as a data-parallel optimizer step would). The sum of the
ranks' losses, the summed gradients and the concatenated gradients of ``hidden`` must be the
whole batch's, computed here in float64 from the dense oracle of
tests/test_torch_linear_options.py, for every case of its option matrix.

One group per world size runs every case (process start is the expensive part), with the
launcher of tests/test_torch_vocab_parallel.py.
"""

from __future__ import annotations

import datetime
import os

import pytest

torch = pytest.importorskip("torch")
import torch.distributed as dist  # noqa: E402

from crossent.torch import LinearCrossEntropyLoss, count_targets, linear_cross_entropy  # noqa: E402

from .test_torch_linear_options import OPTION_MATRIX, full_batch, hand_count, matrix_problem  # noqa: E402
from .test_torch_vocab_parallel import _spawn  # noqa: E402

pytestmark = pytest.mark.skipif(not dist.is_available(), reason="needs torch.distributed")

NUM_TOKENS = 12
# the tokens of each rank, per world size: uneven; in "ignored" layouts one rank's tokens are
# all ignored, in "empty" layouts one rank has no tokens at all
LAYOUTS = {
    2: {"uneven": [range(0, 8), range(8, 12)], "ignored": [range(0, 3), range(3, 12)]},
    3: {"uneven": [range(0, 2), range(2, 9), range(9, 12)],
        "ignored": [range(0, 5), range(5, 8), range(8, 12)],
        "empty": [range(0, 7), range(7, 7), range(7, 12)]},
}
IGNORED = {"uneven": [4, 11], "ignored": [0, 1, 2, 9], "empty": [3]}  # rank 0 of "ignored" (2 ranks)
IGNORED_3 = {"ignored": [5, 6, 7, 10]}  # rank 1 of "ignored" (3 ranks)


def cases(world_size: int) -> list[tuple[str, str, int]]:
    """(option set, layout, seed): every option set on every layout of the world size."""
    return [(name, layout, 10 * world_size + number)
            for number, name in enumerate(OPTION_MATRIX)
            for layout in LAYOUTS[world_size]]


def problem(name: str, layout: str, seed: int, world_size: int):
    ignored = IGNORED_3.get(layout, IGNORED[layout]) if world_size == 3 else IGNORED[layout]
    return matrix_problem(name, NUM_TOKENS, ignored, seed=seed)


def _run(name: str, layout: str, seed: int, world_size: int, rank: int) -> dict:
    hidden, weight, bias, target, options = problem(name, layout, seed, world_size)
    mine = list(LAYOUTS[world_size][layout][rank])
    token_weight = options.pop("token_weight", None)
    if token_weight is not None:
        token_weight = token_weight[mine]
    hidden = hidden[mine].clone().requires_grad_(True)
    weight = weight.clone().requires_grad_(True)
    bias = None if bias is None else bias.clone().requires_grad_(True)
    normalizer = count_targets(
        target[mine], ignore_index=options["ignore_index"], class_weight=options.get("class_weight"),
        token_weight=token_weight, group=dist.group.WORLD,
    )
    if seed % 2:  # the module form, half the cases
        loss_fn = LinearCrossEntropyLoss(chunk_size=2, **options)
        loss = loss_fn(hidden, weight, target[mine], bias, token_weight=token_weight,
                       normalizer=normalizer)
    else:
        loss = linear_cross_entropy(hidden, weight, target[mine], bias=bias, token_weight=token_weight,
                                    normalizer=normalizer, chunk_size="auto", **options)
    loss.backward()
    summed = [loss.detach().clone(), weight.grad] + ([] if bias is None else [bias.grad])
    for tensor in summed:
        dist.all_reduce(tensor)  # SUM: the data-parallel step
    return {"normalizer": normalizer, "loss": summed[0], "grad_hidden": hidden.grad,
            "grad_weight": weight.grad, "grad_bias": None if bias is None else bias.grad}


def _worker(rank: int, world_size: int, port: int, outdir: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank,
                            world_size=world_size, timeout=datetime.timedelta(seconds=60))
    results = {}
    for case in cases(world_size):
        try:
            results[case] = _run(*case, world_size, rank)
        except Exception as error:  # noqa: BLE001 - a failing case fails its own test
            results[case] = {"error": f"{type(error).__name__}: {error}"}
    torch.save(results, os.path.join(outdir, f"rank{rank}.pt"))
    dist.destroy_process_group()


@pytest.fixture(scope="module")
def worlds() -> dict:
    return {}


def _world(worlds: dict, world_size: int) -> list[dict]:
    if world_size not in worlds:
        worlds[world_size] = _spawn(world_size, _worker)
    return worlds[world_size]


@pytest.mark.parametrize(
    ("world_size", "case"),
    [(world_size, case) for world_size in (2, 3) for case in cases(world_size)],
    ids=lambda value: "-".join(map(str, value)) if isinstance(value, tuple) else f"{value}ranks",
)
def test_ranks_with_the_global_count_give_the_full_batch(worlds, world_size, case):
    ranks = [results[case] for results in _world(worlds, world_size)]
    for result in ranks:
        assert "error" not in result, result.get("error")
    hidden, weight, bias, target, options = problem(*case, world_size)
    expected, expected_grads = full_batch(hidden, weight, bias, target, options)
    exact = dict(rtol=0, atol=1e-12)
    for result in ranks:  # every rank has the global count, the summed loss and gradients
        torch.testing.assert_close(result["normalizer"].double(), hand_count(target, options), **exact)
        torch.testing.assert_close(result["loss"], expected, **exact)
        torch.testing.assert_close(result["grad_weight"], expected_grads[1], **exact)
        if bias is not None:
            torch.testing.assert_close(result["grad_bias"], expected_grads[2], **exact)
    grad_hidden = torch.cat([result["grad_hidden"] for result in ranks])
    torch.testing.assert_close(grad_hidden, expected_grads[0], **exact)


def test_the_layouts_are_what_they_claim():
    """Uneven slices covering the batch once; one rank wholly ignored; one rank empty."""
    for world_size, layouts in LAYOUTS.items():
        for layout, slices in layouts.items():
            assert sum((list(s) for s in slices), []) == list(range(NUM_TOKENS))
            assert len({len(s) for s in slices}) > 1
            ignored = IGNORED_3.get(layout, IGNORED[layout]) if world_size == 3 else IGNORED[layout]
            if layout == "ignored":
                assert any(set(s) <= set(ignored) for s in slices)
            if layout == "empty":
                assert any(len(s) == 0 for s in slices)
