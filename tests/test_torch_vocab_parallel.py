"""crossent.torch vocab-parallel cross-entropy on spawned gloo process groups.

Process start is expensive (each worker imports torch), so every world size is
spawned once (a module-scoped fixture) and runs all its cases; the workers save
their losses, gradients and errors, and the tests here compare them, case by
case, with references computed in this process from the *full* vocabulary:
``crossent.cross_entropy`` and ``torch.nn.functional.cross_entropy`` in float64
with autograd. Nothing expected is taken from the function under test.
"""

from __future__ import annotations

import datetime
import os
import re
import socket
import tempfile
import time
from dataclasses import dataclass

import pytest

torch = pytest.importorskip("torch")
import torch.distributed as dist  # noqa: E402
import torch.multiprocessing as mp  # noqa: E402
import torch.nn.functional as F  # noqa: E402

import crossent  # noqa: E402
from crossent.torch import (  # noqa: E402
    linear_cross_entropy,
    vocab_parallel_cross_entropy,
    vocab_parallel_linear_cross_entropy,
)

pytestmark = pytest.mark.skipif(not dist.is_available(), reason="needs torch.distributed")

# (vocab_start, shard_size) per rank; uneven, out of rank order, and with an empty shard
LAYOUTS = {
    "even2": [(0, 3), (3, 3)],
    "uneven2": [(0, 3), (3, 4)],
    "swapped2": [(4, 3), (0, 4)],
    "uneven3": [(0, 5), (5, 1), (6, 4)],
    "empty3": [(0, 6), (6, 0), (6, 4)],
}
HIDDEN_SIZE = 4
SPAWN_DEADLINE_S = 240


@dataclass(frozen=True)
class Case:
    name: str
    kind: str  # "logits" | "linear"
    layout: str
    positions: tuple = (6,)
    ignore: str = "none"  # "none" | "some" | "all"
    ignore_index: int = -100
    label_smoothing: float = 0.0
    reduction: str = "mean"
    dtype: str = "float64"
    scale: float = 2.0  # logits ~ scale · N(0, 1)
    neg_inf: bool = False  # one non-target class per row at -inf
    bias: bool = True  # linear only
    chunk_size: object = 2  # linear only
    hidden_grad: bool = True  # linear only: does hidden require a gradient
    no_grad: bool = False  # run the forward under torch.no_grad (loss only)
    rank_order: bool = False  # pass vocab_start=None: shards in rank order
    through_linear_cross_entropy: bool = False  # call linear_cross_entropy(..., group=WORLD)
    class_weight: bool = False  # linear only: class weights, sharded as the weight
    z_loss: float = 0.0  # linear only
    softcap: float | None = None  # linear only
    return_lse: bool = False  # linear only
    token_weight: bool = False  # linear only: random token weights, some 0
    temperature: float = 1.0  # linear only
    normalizer: float | None = None  # linear only, with 'mean'
    return_stats: bool = False  # linear only
    seed: int = 0

    @property
    def engine_options(self) -> bool:
        """Options of the linear engine that the logits form and crossent.cross_entropy lack."""
        return self.class_weight or self.z_loss > 0 or self.softcap is not None or self.return_lse

    @property
    def token_options(self) -> bool:
        """The per-token options of the linear engine (token weights, temperature, normalizer, stats)."""
        return (self.token_weight or self.temperature != 1.0 or self.normalizer is not None
                or self.return_stats)


def _cases() -> list[Case]:
    cases: list[Case] = []
    seed = 0
    for layout in LAYOUTS:
        for reduction in ("mean", "sum", "none"):
            for eps in (0.0, 0.1):
                for ignore in ("none", "some", "all"):
                    seed += 1
                    tag = f"{layout}-{reduction}-eps{eps}-ignore_{ignore}"
                    cases.append(Case(f"logits-{tag}", "logits", layout, ignore=ignore,
                                      label_smoothing=eps, reduction=reduction, seed=seed))
                    if layout in ("uneven2", "uneven3", "empty3", "swapped2"):
                        cases.append(Case(f"linear-{tag}", "linear", layout, ignore=ignore,
                                          label_smoothing=eps, reduction=reduction, seed=seed,
                                          chunk_size=(2 if seed % 2 else "auto"), bias=bool(seed % 3)))
        world = len(LAYOUTS[layout])
        extra = [
            Case(f"logits-{layout}-3d", "logits", layout, positions=(2, 3), ignore="some",
                 label_smoothing=0.2, seed=1000 + world),
            Case(f"logits-{layout}-ignore_index_1", "logits", layout, ignore="some", ignore_index=1,
                 seed=1100 + world),
            Case(f"logits-{layout}-extreme", "logits", layout, scale=1e4, seed=1200 + world),
            Case(f"logits-{layout}-neg_inf", "logits", layout, neg_inf=True, seed=1300 + world),
            Case(f"logits-{layout}-float32", "logits", layout, dtype="float32", ignore="some",
                 label_smoothing=0.1, seed=1400 + world),
            Case(f"logits-{layout}-bfloat16", "logits", layout, dtype="bfloat16", seed=1500 + world),
            Case(f"linear-{layout}-3d", "linear", layout, positions=(2, 5), ignore="some",
                 label_smoothing=0.1, chunk_size=3, seed=1600 + world),
            Case(f"linear-{layout}-float32", "linear", layout, dtype="float32", ignore="some",
                 chunk_size=4, seed=1700 + world),
            Case(f"linear-{layout}-bfloat16", "linear", layout, dtype="bfloat16", seed=1800 + world),
            Case(f"linear-{layout}-one_chunk", "linear", layout, chunk_size=100, seed=1900 + world),
            Case(f"linear-{layout}-weight_grad_only", "linear", layout, hidden_grad=False,
                 label_smoothing=0.1, reduction="sum", seed=2000 + world),
            Case(f"linear-{layout}-no_grad", "linear", layout, no_grad=True, ignore="some",
                 seed=2100 + world),
            Case(f"logits-{layout}-no_grad", "logits", layout, no_grad=True, seed=2200 + world),
        ]
        if layout != "swapped2":  # the others list their shards in rank order
            extra += [
                Case(f"logits-{layout}-vocab_start_none", "logits", layout, rank_order=True,
                     ignore="some", label_smoothing=0.1, seed=2300 + world),
                Case(f"linear-{layout}-vocab_start_none", "linear", layout, rank_order=True,
                     reduction="none", seed=2400 + world),
                Case(f"linear-{layout}-linear_cross_entropy_group", "linear", layout,
                     rank_order=True, through_linear_cross_entropy=True, ignore="some",
                     label_smoothing=0.1, seed=2500 + world),
        ]
        # every option of the linear engine at once, on both entry points
        for reduction, dtype, chunk, seed in (("mean", "float64", 2, 2600), ("sum", "float64", "auto", 2700),
                                              ("none", "float64", 3, 2800), ("mean", "bfloat16", 2, 2900)):
            extra.append(Case(
                f"linear-{layout}-all_options-{reduction}-{dtype}", "linear", layout,
                positions=(7,), ignore="some", label_smoothing=0.1, reduction=reduction,
                dtype=dtype, chunk_size=chunk, class_weight=True, z_loss=0.05, softcap=3.0,
                return_lse=True, rank_order=layout != "swapped2",
                through_linear_cross_entropy=layout != "swapped2" and reduction != "sum",
                seed=seed + world,
            ))
        # the per-token options, on both entry points, with and without the engine's others
        for name, reduction, changes, seed in (
            ("mean-normalizer-stats", "mean", dict(normalizer=4.5, return_stats=True), 3000),
            ("mean-dropped", "mean", dict(), 3100),
            ("none-stats", "none", dict(return_stats=True), 3200),
            ("sum-all_options-stats", "sum", dict(return_stats=True, class_weight=True, z_loss=0.05,
                                                   softcap=3.0, return_lse=True), 3300),
        ):
            extra.append(Case(
                f"linear-{layout}-tokens-{name}", "linear", layout, positions=(7,), ignore="some",
                label_smoothing=0.1, reduction=reduction, chunk_size=3, token_weight=True,
                temperature=0.7, rank_order=layout != "swapped2",
                through_linear_cross_entropy=layout != "swapped2" and seed % 200 == 0,
                seed=seed + world, **changes,
            ))
        cases += extra
    return cases


CASES = _cases()
STATS = ("lse", "target_logprob", "entropy", "predicted", "correct")
DTYPES = {"float64": torch.float64, "float32": torch.float32, "bfloat16": torch.bfloat16}


def _num_classes(layout: str) -> int:
    return sum(size for _, size in LAYOUTS[layout])


def make_inputs(case: Case) -> dict:
    """The full-vocabulary inputs of a case, in float64, identical in every process."""
    generator = torch.Generator().manual_seed(case.seed)
    num_classes = _num_classes(case.layout)
    target = torch.randint(0, num_classes, case.positions, generator=generator)
    if case.ignore == "some":
        flat = target.view(-1)
        flat[0] = case.ignore_index
        flat[-1] = case.ignore_index
    elif case.ignore == "all":
        target.fill_(case.ignore_index)
    upstream = torch.randn(case.positions, generator=generator, dtype=torch.float64)
    inputs = {"target": target, "upstream": upstream}
    if case.kind == "logits":
        logits = torch.randn(*case.positions, num_classes, generator=generator, dtype=torch.float64)
        logits *= case.scale
        if case.neg_inf:  # an impossible class per row, never the target
            flat_logits = logits.view(-1, num_classes)
            for row, y in enumerate(target.view(-1).tolist()):
                flat_logits[row, (y + 1) % num_classes] = -float("inf")
        inputs["logits"] = logits.to(DTYPES[case.dtype])
    else:
        hidden = torch.randn(*case.positions, HIDDEN_SIZE, generator=generator, dtype=torch.float64)
        weight = torch.randn(num_classes, HIDDEN_SIZE, generator=generator, dtype=torch.float64)
        bias = torch.randn(num_classes, generator=generator, dtype=torch.float64)
        inputs["hidden"] = hidden.to(DTYPES[case.dtype])
        inputs["weight"] = weight.to(DTYPES[case.dtype])
        inputs["bias"] = bias.to(DTYPES[case.dtype]) if case.bias else None
        class_weight = torch.rand(num_classes, generator=generator, dtype=torch.float64) + 0.5
        inputs["class_weight"] = class_weight.to(DTYPES[case.dtype]) if case.class_weight else None
        token_weight = torch.rand(case.positions, generator=generator, dtype=torch.float64)
        token_weight.view(-1)[1] = 0.0  # a counted token of weight 0: dropped, gradient 0
        inputs["token_weight"] = token_weight if case.token_weight else None
    return inputs


def _backward(loss: torch.Tensor, case: Case, upstream: torch.Tensor) -> None:
    """Backpropagate 1.5·loss, or Σ upstream·loss for 'none' (a non-trivial incoming gradient)."""
    if case.reduction == "none":
        (loss * upstream.to(loss.dtype)).sum().backward()
    else:
        (1.5 * loss).backward()


# ----------------------------------------------------------------------------------
# What every worker runs
# ----------------------------------------------------------------------------------


def _run_case(case: Case, rank: int) -> dict:
    inputs = make_inputs(case)
    start, size = LAYOUTS[case.layout][rank]
    options = dict(vocab_start=None if case.rank_order else start, ignore_index=case.ignore_index,
                   label_smoothing=case.label_smoothing, reduction=case.reduction)
    if case.kind == "logits":
        shard = inputs["logits"][..., start:start + size].clone().requires_grad_(True)
        if case.no_grad:
            with torch.no_grad():
                return {"loss": vocab_parallel_cross_entropy(shard, inputs["target"], **options)}
        loss = vocab_parallel_cross_entropy(shard, inputs["target"], **options)
        _backward(loss, case, inputs["upstream"])
        return {"loss": loss.detach(), "grad_logits": shard.grad}
    hidden = inputs["hidden"].clone().requires_grad_(case.hidden_grad)
    weight = inputs["weight"][start:start + size].clone().requires_grad_(True)
    bias = None if inputs["bias"] is None else inputs["bias"][start:start + size].clone().requires_grad_(True)
    if case.no_grad:
        with torch.no_grad():
            return {"loss": vocab_parallel_linear_cross_entropy(
                hidden, weight, inputs["target"], bias_shard=bias, chunk_size=case.chunk_size, **options)}
    class_weight = inputs["class_weight"]
    if class_weight is not None:
        class_weight = class_weight[start:start + size]
    engine = dict(z_loss=case.z_loss, softcap=case.softcap, return_lse=case.return_lse,
                  chunk_size=case.chunk_size, ignore_index=case.ignore_index,
                  label_smoothing=case.label_smoothing, reduction=case.reduction,
                  token_weight=inputs["token_weight"], temperature=case.temperature,
                  normalizer=case.normalizer, return_stats=case.return_stats)
    if case.through_linear_cross_entropy:  # the public entry point
        loss = linear_cross_entropy(
            hidden, weight, inputs["target"], bias=bias, group=dist.group.WORLD,
            class_weight=class_weight, **engine,
        )
    else:
        loss = vocab_parallel_linear_cross_entropy(
            hidden, weight, inputs["target"], bias_shard=bias, class_weight_shard=class_weight,
            vocab_start=options["vocab_start"], **engine,
        )
    stats = {}
    if case.return_lse or case.return_stats:
        stats = {name: getattr(loss, name) for name in STATS}
        loss = loss.loss
    _backward(loss, case, inputs["upstream"])
    return {"loss": loss.detach(), "grad_hidden": hidden.grad, "grad_weight": weight.grad,
            "grad_bias": None if bias is None else bias.grad, **stats}


def _error_calls(world_size: int, rank: int) -> dict:
    """Each call is bad on one rank or on all; every rank records what it raised."""
    generator = torch.Generator().manual_seed(7)
    layout = LAYOUTS["uneven2" if world_size == 2 else "uneven3"]
    num_classes = sum(size for _, size in layout)
    start, size = layout[rank]
    logits = torch.randn(5, num_classes, generator=generator)
    target = torch.randint(0, num_classes, (5,), generator=generator)
    shard = logits[:, start:start + size]
    last = world_size - 1

    def call(shard=shard, target=target, **changes):
        options = dict(vocab_start=start) | changes
        return vocab_parallel_cross_entropy(shard, target, **options)

    bad_target = target.clone()
    bad_target[2] = num_classes
    negative_target = target.clone()
    negative_target[1] = -3
    hidden = torch.randn(5, 4, generator=generator)
    weight = torch.randn(num_classes, 4, generator=generator)[start:start + size]
    calls = {
        "gap": lambda: call(vocab_start=start + (1 if rank == last else 0)),
        "overlap": lambda: call(vocab_start=start - (1 if rank == last else 0)),
        "not_from_zero": lambda: call(vocab_start=start + 1),
        "no_owner": lambda: call(target=bad_target),
        "negative_target": lambda: call(target=negative_target),
        "target_differs": lambda: call(target=target.roll(1) if rank == last else target),
        "options_differ": lambda: call(reduction="sum" if rank == last else "mean"),
        "vocab_start_none_on_one_rank": lambda: call(vocab_start=None if rank == last else start),
        "positions_differ": lambda: call(shard=shard[:4], target=target[:4]) if rank == last else call(),
        "integer_logits_on_one_rank": lambda: call(shard=shard.long() if rank == last else shard),
        "bad_reduction_everywhere": lambda: call(reduction="avg"),
        "linear_width_on_one_rank": lambda: vocab_parallel_linear_cross_entropy(
            hidden, weight[:, :3] if rank == last else weight, target, vocab_start=start),
        "linear_hidden_size_differs": lambda: vocab_parallel_linear_cross_entropy(
            hidden[:, :3] if rank == last else hidden, weight[:, :3] if rank == last else weight,
            target, vocab_start=start),
    }
    def backward_twice():  # the second backward recomputes (collectives in step): twice the grad
        leaf = hidden.clone().requires_grad_(True)
        loss = vocab_parallel_linear_cross_entropy(leaf, weight, target, vocab_start=start)
        loss.backward(retain_graph=True)
        once = leaf.grad.clone()
        loss.backward()
        if not torch.allclose(leaf.grad, 2 * once):
            raise AssertionError(f"second backward: {leaf.grad} != 2 × {once}")

    def create_graph():  # the gradient with a graph is the fused engine's gradient
        leaf = hidden.clone().requires_grad_(True)
        loss = vocab_parallel_linear_cross_entropy(leaf, weight, target, vocab_start=start)
        (with_graph,) = torch.autograd.grad(loss, leaf, create_graph=True, retain_graph=True)
        (fused,) = torch.autograd.grad(loss, leaf)
        if not with_graph.requires_grad or not torch.allclose(with_graph, fused, atol=1e-6):
            raise AssertionError(f"create_graph: {with_graph} != {fused}")

    calls["linear_backward_twice"] = backward_twice
    calls["linear_create_graph"] = create_graph
    results = {}
    for name, function in calls.items():
        try:
            function()
            results[name] = ("no error", "")
        except Exception as error:  # noqa: BLE001 - recorded for the parent to check
            results[name] = (type(error).__name__, str(error))
    # the group is still in step after all those errors: a good call works
    results["after_errors"] = call(reduction="sum").detach()
    results["after_errors_expected"] = F.cross_entropy(logits.double(), target, reduction="sum")
    return results


def _timeout_call(rank: int) -> tuple:
    """Rank 0 calls, rank 1 does not: rank 0 must get the backend's timeout error."""
    short = dist.new_group(ranks=[0, 1], timeout=datetime.timedelta(seconds=2))
    outcome = ("no error", "")
    if rank == 0:
        try:
            vocab_parallel_cross_entropy(torch.zeros(3, 2), torch.zeros(3, dtype=torch.long),
                                         vocab_start=0, group=short)
        except Exception as error:  # noqa: BLE001 - recorded for the parent to check
            outcome = (type(error).__name__, str(error))
    dist.barrier()  # rank 1 waits here until rank 0 has timed out
    return outcome


def _worker(rank: int, world_size: int, port: int, outdir: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank,
                            world_size=world_size, timeout=datetime.timedelta(seconds=60))
    results: dict = {"cases": {}, "errors": {}}
    for case in CASES:
        if len(LAYOUTS[case.layout]) != world_size:
            continue
        try:
            results["cases"][case.name] = _run_case(case, rank)
        except Exception as error:  # noqa: BLE001 - a failing case fails its own test
            results["cases"][case.name] = {"error": f"{type(error).__name__}: {error}"}
    results["errors"] = _error_calls(world_size, rank)
    if world_size == 2:
        results["timeout"] = _timeout_call(rank)
    torch.save(results, os.path.join(outdir, f"rank{rank}.pt"))
    dist.destroy_process_group()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _spawn(world_size: int, worker=None) -> list[dict]:
    """Run ``worker(rank, world_size, port, outdir)`` (default: this file's) on a fresh gloo
    group of ``world_size`` processes; each saves ``rank{r}.pt``, returned in rank order."""
    with tempfile.TemporaryDirectory() as outdir:
        context = mp.start_processes(worker or _worker, args=(world_size, _free_port(), outdir),
                                     nprocs=world_size, join=False, start_method="spawn")
        deadline = time.monotonic() + SPAWN_DEADLINE_S
        while not context.join(timeout=5):
            if time.monotonic() > deadline:
                for process in context.processes:
                    process.kill()
                pytest.fail(f"the {world_size}-process group did not finish in {SPAWN_DEADLINE_S} s")
        return [torch.load(os.path.join(outdir, f"rank{r}.pt"), weights_only=False)
                for r in range(world_size)]


@pytest.fixture(scope="module")
def worlds(tmp_path_factory) -> dict:
    return {"tmp": tmp_path_factory}


def _world(worlds: dict, world_size: int, worker=None, tag: str = "vocab_parallel") -> list[dict]:
    """Each world size is spawned once per test run (and ``worker``: default ``_worker``, named
    ``tag`` in the shared file), shared by pytest-xdist workers."""
    if world_size in worlds:
        return worlds[world_size]
    run_id = os.environ.get("PYTEST_XDIST_TESTRUNUID")  # set by pytest-xdist, one per run
    if run_id is None:
        worlds[world_size] = _spawn(world_size, worker)
        return worlds[world_size]
    import fcntl

    shared = worlds["tmp"].getbasetemp().parent  # common to this run's workers
    path = shared / f"{tag}_{run_id}_{world_size}.pt"
    with open(path.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # the first worker spawns, the others wait and load
        if not path.exists():
            torch.save(_spawn(world_size, worker), path)
        worlds[world_size] = torch.load(path, weights_only=False)
    return worlds[world_size]


# ----------------------------------------------------------------------------------
# References from the full vocabulary, in this process
# ----------------------------------------------------------------------------------


def _references(case: Case) -> dict:
    """Loss and gradients from crossent.cross_entropy and F.cross_entropy, float64 autograd."""
    inputs = make_inputs(case)
    results = {}
    for name in ("crossent", "torch"):
        if case.kind == "logits":
            leaves = {"logits": inputs["logits"].to(torch.float64, copy=True).requires_grad_(True)}
            logits = leaves["logits"]
        else:
            def leaf(name: str, wanted: bool = True) -> torch.Tensor:
                return inputs[name].to(torch.float64, copy=True).requires_grad_(wanted)

            leaves = {"hidden": leaf("hidden", case.hidden_grad), "weight": leaf("weight")}
            if inputs["bias"] is not None:
                leaves["bias"] = leaf("bias")
            logits = F.linear(leaves["hidden"], leaves["weight"], leaves.get("bias"))
        options = dict(ignore_index=case.ignore_index, label_smoothing=case.label_smoothing,
                       reduction=case.reduction)
        if case.engine_options or case.token_options:  # the spec's formula on the whole logits
            loss, stats = _dense_engine_loss(logits, inputs, case)
            results[name] = {"loss": loss.detach(), **stats}
            _backward(loss, case, inputs["upstream"])
            results[name] |= {k: t.grad for k, t in leaves.items() if t.requires_grad}
            continue
        if name == "crossent":
            loss = crossent.cross_entropy(logits, inputs["target"], **options)
        else:  # PyTorch's class axis is 1
            loss = F.cross_entropy(logits.movedim(-1, 1) if logits.ndim > 2 else logits,
                                   inputs["target"], **options)
        results[name] = {"loss": loss.detach()}
        if not case.no_grad:
            _backward(loss, case, inputs["upstream"])
            results[name] |= {k: t.grad for k, t in leaves.items() if t.requires_grad}
    return results


def _dense_engine_loss(logits: torch.Tensor, inputs: dict, case: Case) -> tuple:
    """z = cap(x)/T, PyTorch's weighted smoothed per-token cross-entropy plus λ·lse², token
    weights t_i; 'mean' divides the first by Σ t_i w_y and the second by Σ t_i (or both by
    the normalizer); and the per-token statistics of softmax(z)."""
    if case.softcap is not None:
        logits = case.softcap * torch.tanh(logits / case.softcap)
    logits = logits / case.temperature
    weight = inputs["class_weight"]
    weight = None if weight is None else weight.double()
    target = inputs["target"]
    ce = F.cross_entropy(logits, target, weight=weight, ignore_index=case.ignore_index,
                         label_smoothing=case.label_smoothing, reduction="none")
    lse = torch.logsumexp(logits, dim=-1)
    counted = target != case.ignore_index
    tokens = torch.ones_like(lse) if inputs["token_weight"] is None else inputs["token_weight"]
    tokens = torch.where(counted, tokens, 0.0)
    z_term = case.z_loss * lse.square() * counted
    target_weight = counted.double() if weight is None else weight[torch.where(counted, target, 0)] * counted
    if case.reduction == "none":
        loss = tokens * (ce + z_term)
    elif case.reduction == "sum":
        loss = (tokens * (ce + z_term)).sum()
    elif case.normalizer is not None:
        loss = (tokens * (ce + z_term)).sum() / case.normalizer
    else:
        loss = (tokens * ce).sum() / (tokens * target_weight).sum() + (tokens * z_term).sum() / tokens.sum()
    log_probs = torch.log_softmax(logits, dim=-1).detach()
    picked = log_probs.gather(-1, torch.where(counted, target, 0)[..., None])[..., 0]
    predicted = logits.argmax(dim=-1)
    stats = {"lse": lse.detach(), "target_logprob": torch.where(counted, picked, torch.nan),
             "entropy": -(log_probs.exp() * log_probs).sum(dim=-1), "predicted": predicted,
             "correct": predicted == target}
    return loss, stats


def _tolerance(case: Case) -> dict:
    if case.dtype == "bfloat16":
        return {"rtol": 2e-2, "atol": 2e-2}
    if case.dtype == "float32" or case.scale > 100:
        return {"rtol": 1e-5, "atol": 1e-5 * max(1.0, case.scale / 1e3)}
    return {"rtol": 1e-10, "atol": 1e-12}


def _close(actual: torch.Tensor, expected: torch.Tensor, case: Case, what: str) -> None:
    torch.testing.assert_close(actual.double(), expected.double(), **_tolerance(case),
                               equal_nan=False, msg=lambda m: f"{case.name}: {what}: {m}")


def _check_case(case: Case, ranks: list[dict]) -> None:
    references = _references(case)
    expected = references["crossent"]
    torch_says = references["torch"]
    nothing_counted = case.ignore == "all"
    for name in ("loss", *(k for k in expected if k not in ("loss", *STATS[1:]))):
        if nothing_counted and case.reduction == "mean":
            # crossent: 0 with a zero gradient; PyTorch: NaN (its documented behaviour)
            assert torch.isnan(torch_says["loss"]), case.name
        else:  # the two references agree, so the comparison below is also with PyTorch
            _close(expected[name], torch_says[name], case, f"crossent vs PyTorch {name}")
    for rank, result in enumerate(ranks):
        outcome = result["cases"][case.name]
        assert "error" not in outcome, f"rank {rank}: {outcome.get('error')}"
        _close(outcome["loss"], expected["loss"], case, f"rank {rank} loss")
        if case.return_lse or case.return_stats:
            _close(outcome["lse"], expected["lse"], case, f"rank {rank} lse")
        if case.return_stats:
            torch.testing.assert_close(outcome["target_logprob"], expected["target_logprob"],
                                       **_tolerance(case), equal_nan=True)
            _close(outcome["entropy"], expected["entropy"], case, f"rank {rank} entropy")
            assert torch.equal(outcome["predicted"], expected["predicted"]), case.name
            assert torch.equal(outcome["correct"], expected["correct"]), case.name
        start, size = LAYOUTS[case.layout][rank]
        if case.no_grad:
            assert set(outcome) == {"loss"}
        elif case.kind == "logits":
            assert outcome["grad_logits"].dtype == DTYPES[case.dtype]
            _close(outcome["grad_logits"], expected["logits"][..., start:start + size], case,
                   f"rank {rank} logits gradient")
        else:
            if case.hidden_grad:
                _close(outcome["grad_hidden"], expected["hidden"], case, f"rank {rank} hidden gradient")
            else:
                assert outcome["grad_hidden"] is None
            _close(outcome["grad_weight"], expected["weight"][start:start + size], case,
                   f"rank {rank} weight gradient")
            if "bias" in expected:
                _close(outcome["grad_bias"], expected["bias"][start:start + size], case,
                       f"rank {rank} bias gradient")
        if nothing_counted:
            assert float(outcome["loss"].abs().sum()) == 0.0


@pytest.mark.parametrize("case", [c for c in CASES if len(LAYOUTS[c.layout]) == 2], ids=lambda c: c.name)
def test_two_ranks_match_crossent_and_pytorch(worlds, case):
    _check_case(case, _world(worlds, 2))


@pytest.mark.parametrize("case", [c for c in CASES if len(LAYOUTS[c.layout]) == 3], ids=lambda c: c.name)
def test_three_ranks_match_crossent_and_pytorch(worlds, case):
    _check_case(case, _world(worlds, 3))


# ----------------------------------------------------------------------------------
# Errors: raised on every rank, and the group stays usable
# ----------------------------------------------------------------------------------

EVERY_RANK = {
    "gap": (r"inconsistent across ranks: rank \d starts at vocab_start=\d+, leaving a gap", "ValueError"),
    "overlap": (r"inconsistent across ranks: rank \d starts at vocab_start=\d+, leaving an overlap",
                "ValueError"),
    "not_from_zero": (r"rank \d starts at vocab_start=1, leaving a gap before it \(expected 0\)",
                      "ValueError"),
    "no_owner": (r"target contains class index (7|10), which no rank owns: the shards cover \[0, (7|10)\)",
                 "ValueError"),
    "negative_target": (r"target contains class index -3, which no rank owns", "ValueError"),
    "target_differs": (r"target differs between ranks", "ValueError"),
    "options_differ": (r"the ranks disagree on the options", "ValueError"),
    "vocab_start_none_on_one_rank": (r"vocab_start is None \(shards in rank order\) on rank\(s\) \[[12]\] "
                                     r"but an int on the others", "ValueError"),
    "positions_differ": (r"the ranks disagree on the number of positions: \[5, (5, )?4\]", "ValueError"),
    "bad_reduction_everywhere": (r"reduction must be one of 'none', 'mean', 'sum', got 'avg'",
                                 "ValueError"),
    "linear_hidden_size_differs": (r"the ranks disagree on the hidden size: \[4, (4, )?3\]", "ValueError"),
}
ONE_RANK = {  # the bad rank (the last) raises its own message, the others name it
    "integer_logits_on_one_rank": (r"logits_shard must be a floating-point torch.Tensor, got torch.int64",
                                   "TypeError"),
    "linear_width_on_one_rank": (r"weight_shard must have shape \(shard_size, 4\)", "ValueError"),
}


@pytest.mark.parametrize("world_size", [2, 3])
@pytest.mark.parametrize("error", sorted(EVERY_RANK))
def test_inconsistent_input_raises_the_same_error_on_every_rank(worlds, world_size, error):
    pattern, kind = EVERY_RANK[error]
    import re

    for rank, result in enumerate(_world(worlds, world_size)):
        raised, message = result["errors"][error]
        assert raised == kind, f"rank {rank}: {raised}: {message}"
        assert re.search(pattern, message), f"rank {rank}: {message}"


@pytest.mark.parametrize("world_size", [2, 3])
@pytest.mark.parametrize("error", sorted(ONE_RANK))
def test_bad_input_on_one_rank_is_reported_by_every_rank(worlds, world_size, error):
    import re

    pattern, kind = ONE_RANK[error]
    ranks = _world(worlds, world_size)
    for rank, result in enumerate(ranks):
        raised, message = result["errors"][error]
        if rank == world_size - 1:
            assert raised == kind and re.search(pattern, message), f"{raised}: {message}"
        else:
            assert raised == "ValueError", message
            assert f"rank(s) [{world_size - 1}] of the group rejected their inputs" in message


@pytest.mark.parametrize("world_size", [2, 3])
def test_second_backward_on_a_group_recomputes(worlds, world_size):
    for result in _world(worlds, world_size):
        assert result["errors"]["linear_backward_twice"] == ("no error", "")


@pytest.mark.parametrize("world_size", [2, 3])
def test_create_graph_on_a_group_gives_a_differentiable_gradient(worlds, world_size):
    # its second derivatives: tests/test_torch_vocab_parallel_autodiff.py
    for result in _world(worlds, world_size):
        assert result["errors"]["linear_create_graph"] == ("no error", "")


@pytest.mark.parametrize("world_size", [2, 3])
def test_group_still_works_after_the_errors(worlds, world_size):
    for result in _world(worlds, world_size):
        torch.testing.assert_close(result["errors"]["after_errors"].double(),
                                   result["errors"]["after_errors_expected"], rtol=1e-5, atol=1e-5)


def test_a_rank_that_never_calls_ends_in_the_process_group_timeout(worlds):
    ranks = _world(worlds, 2)
    raised, message = ranks[0]["timeout"]
    assert raised in ("DistBackendError", "RuntimeError"), (raised, message)
    assert "timed out" in message.lower() or "timeout" in message.lower(), message
    # the group's 2 s timeout, not the 60 s default of the test (gloo names it; no clock read)
    assert re.search(r"\b2000 ?ms\b", message), message
    assert ranks[1]["timeout"][0] == "no error"


# ----------------------------------------------------------------------------------
# In this process (no group needed)
# ----------------------------------------------------------------------------------


def test_without_an_initialised_group_says_how_to_start_one():
    assert not dist.is_initialized()
    with pytest.raises(RuntimeError, match=r"needs an initialised torch.distributed process group.*torchrun"):
        vocab_parallel_cross_entropy(torch.zeros(2, 3), torch.zeros(2, dtype=torch.long), vocab_start=0)


def test_cases_cover_every_option():
    """The case grid itself: every reduction, smoothing, ignore pattern and layout is run."""
    for kind in ("logits", "linear"):
        chosen = [c for c in CASES if c.kind == kind]
        assert {c.reduction for c in chosen} == {"mean", "sum", "none"}
        assert {c.label_smoothing for c in chosen} >= {0.0, 0.1}
        assert {c.ignore for c in chosen} == {"none", "some", "all"}
        assert {c.dtype for c in chosen} == {"float64", "float32", "bfloat16"}
    assert {c.layout for c in CASES} == set(LAYOUTS)
    engine = [c for c in CASES if c.engine_options]
    assert {c.reduction for c in engine} == {"mean", "sum", "none"}
    assert {c.through_linear_cross_entropy for c in engine} == {True, False}
    assert all(c.class_weight and c.z_loss and c.softcap and c.return_lse for c in engine)
    tokens = [c for c in CASES if c.token_options]
    assert {c.reduction for c in tokens} == {"mean", "sum", "none"}
    assert {c.through_linear_cross_entropy for c in tokens} == {True, False}
    assert {len(LAYOUTS[c.layout]) for c in tokens} == {2, 3}
    assert all(c.token_weight and c.temperature != 1.0 for c in tokens)
    assert any(c.normalizer for c in tokens) and any(c.return_stats for c in tokens)


def test_the_example_prints_the_single_process_loss_under_torchrun():
    import re
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    env = dict(os.environ, PYTHONPATH=str(root / "src"), OMP_NUM_THREADS="1")
    run = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
         str(root / "examples" / "vocab_parallel.py")],
        capture_output=True, text=True, timeout=180, env=env, cwd=root,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    assert "2 rank(s) (gloo)" in run.stdout and "split [6, 5]" in run.stdout
    sections = run.stdout.split("linear form")
    for section in sections:
        losses = re.findall(r"(?:sharded|1 process) .*?(-?\d+\.\d{12})$", section, flags=re.MULTILINE)
        assert len(losses) >= 2 and len(set(losses)) == 1, run.stdout
        difference = float(re.search(r"largest gradient difference.*?: (\S+)$", section, re.MULTILINE)[1])
        assert difference < 1e-12, run.stdout
