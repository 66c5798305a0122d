"""Vocabulary-parallel cross-entropy on 1 and 2 ranks: time, peak memory per rank, bytes communicated.

    PYTHONPATH=src python benchmarks/bench_vocab_parallel.py            # N=2048, V=32000, D=512
    PYTHONPATH=src python benchmarks/bench_vocab_parallel.py --quick    # N=512,  V=8000,  D=256

Contenders, each forward + backward of a 'mean' loss, float32:

- ``logits``: ``vocab_parallel_cross_entropy`` on an ``[N, V/P]`` logits shard;
- ``linear``: ``vocab_parallel_linear_cross_entropy`` on hidden ``[N, D]`` and a
  ``[V/P, D]`` weight shard (chunked, 'auto');
- ``plain``: the single-process PyTorch composition on the full vocabulary
  (``F.cross_entropy(logits)`` and ``F.cross_entropy(hidden @ W.T)``), no group.

Every (contender, ranks) runs in freshly spawned processes (gloo on CPU), one
thread per rank. Time: median of ``--repeats`` steps after one warm-up step,
the slowest rank's median (a step ends when every rank has its gradient).
Peak memory per rank, two figures, the largest rank reported: *first-step
peak*, the resident high-water mark (VmHWM) minus the resident size after
set-up, over the warm-up step (it includes one-time initialisation: thread
pools, gloo buffers, matmul workspaces); *step peak*, after resetting the
high-water mark (``/proc/self/clear_refs``) and freeing the warm-up's
gradients, over the timed steps: the working memory of a step. Inputs are built
in place so set-up does not itself peak above them, and glibc's mmap threshold
is pinned (``MALLOC_MMAP_THRESHOLD_=65536``) so that freed blocks leave the
resident size. Bytes communicated: every
``torch.distributed`` collective of one step is counted by wrapping
``all_gather``/``all_reduce`` (the payload each rank contributes; a ring
all-reduce moves about 2(P-1)/P times that over the wire per rank) and is
checked against the formula: agreement 80 (each rank's row of 10 int64; it
receives 80·P), MAX N·4, SUM 2N·4 (3N with label smoothing), and for
``linear`` the all-reduce of the hidden gradient, N·D·4. ``calls`` counts the
collectives of one step: ``linear``'s eager schedule runs MAX and SUM once per
chunk of positions (same bytes, more calls).

Timing on a shared machine is noisy: the whole plan runs ``--rounds`` times,
round-robin, and each configuration reports the median over rounds.

Results are printed as a table (or JSON with ``--format json``) and appended to
``benchmarks/results/vocab_parallel.csv`` with the version, machine and time.
The benchmark does not assert anything.
"""

from __future__ import annotations

import argparse
import csv
import datetime
import gc
import json
import os
import platform
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _memory  # noqa: E402

SIZES = {"full": (2048, 32000, 512), "quick": (512, 8000, 256)}  # (N, V, D)
CONTENDERS = ("plain", "logits", "linear")


class _CountCollectives:
    """Wraps torch.distributed.all_gather/all_reduce to add up the payload of each call."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, int]] = []
        self._saved: dict = {}

    def __enter__(self) -> _CountCollectives:
        for name in ("all_gather", "all_reduce"):
            original = getattr(dist, name)
            self._saved[name] = original

            def counted(*args, _name=name, _original=original, **kwargs):
                tensor = args[1] if _name == "all_gather" else args[0]
                self.calls.append((_name, tensor.numel() * tensor.element_size()))
                return _original(*args, **kwargs)

            setattr(dist, name, counted)
        return self

    def __exit__(self, *exc: object) -> None:
        for name, original in self._saved.items():
            setattr(dist, name, original)


def _step_function(contender: str, rank: int, world_size: int, sizes: tuple, smoothing: float):
    """Build this rank's inputs in place and return a function doing one forward + backward."""
    from crossent.torch import vocab_parallel_cross_entropy, vocab_parallel_linear_cross_entropy

    num_positions, num_classes, hidden_size = sizes
    base, extra = divmod(num_classes, world_size)
    start = rank * base + min(rank, extra)
    shard_size = base + (1 if rank < extra else 0)
    generator = torch.Generator().manual_seed(0)
    target = torch.randint(0, num_classes, (num_positions,), generator=generator)
    torch.manual_seed(1 + rank)  # each rank's own slice; values only need to be realistic
    if contender in ("plain", "logits"):
        width = num_classes if contender == "plain" else shard_size
        logits = torch.empty(num_positions, width).normal_().mul_(2.0).requires_grad_(True)

        def step() -> None:
            if contender == "plain":
                loss = F.cross_entropy(logits, target, label_smoothing=smoothing)
            else:
                loss = vocab_parallel_cross_entropy(logits, target, vocab_start=start,
                                                    label_smoothing=smoothing)
            loss.backward()

        def clear() -> None:
            logits.grad = None

        return step, clear
    rows = num_classes if contender == "plain_linear" else shard_size
    hidden = torch.empty(num_positions, hidden_size).normal_().requires_grad_(True)
    weight = torch.empty(rows, hidden_size).normal_().mul_(0.02).requires_grad_(True)

    def linear_step() -> None:
        if contender == "plain_linear":
            loss = F.cross_entropy(hidden @ weight.T, target, label_smoothing=smoothing)
        else:
            loss = vocab_parallel_linear_cross_entropy(hidden, weight, target, vocab_start=start,
                                                       label_smoothing=smoothing)
        loss.backward()

    def linear_clear() -> None:
        hidden.grad = weight.grad = None

    return linear_step, linear_clear


def _rank_main(rank: int, world_size: int, port: int, config: dict, outdir: str) -> None:
    torch.set_num_threads(1)
    grouped = not config["contender"].startswith("plain")
    if grouped:
        dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank,
                                world_size=world_size, timeout=datetime.timedelta(minutes=10))
    step, clear = _step_function(config["contender"], rank, world_size, tuple(config["sizes"]),
                                 config["label_smoothing"])
    gc.collect()
    setup_rss = _memory.rss_bytes()
    counter = _CountCollectives()
    with counter:  # the warm-up step, with every collective counted
        step()
    first_peak = _memory.high_water_bytes() - setup_rss  # includes one-time initialisation
    clear()
    gc.collect()
    reset = _memory.reset_high_water()
    baseline = _memory.rss_bytes()
    times = []
    for _ in range(config["repeats"]):
        clear()
        if grouped:
            dist.barrier()
        began = time.perf_counter()
        step()
        times.append(time.perf_counter() - began)
    step_peak = _memory.high_water_bytes() - baseline if reset else None
    result = {"rank": rank, "median_s": statistics.median(times), "times_s": times,
              "peak_above_setup_bytes": first_peak, "step_peak_bytes": step_peak,
              "collectives": counter.calls}
    with open(os.path.join(outdir, f"rank{rank}.json"), "w") as out:
        json.dump(result, out)
    if grouped:
        dist.destroy_process_group()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run_one(contender: str, world_size: int, sizes: tuple, repeats: int, smoothing: float) -> dict:
    """One (contender, ranks) configuration in fresh processes; the per-rank results combined."""
    config = {"contender": contender, "sizes": list(sizes), "repeats": repeats,
              "label_smoothing": smoothing}
    with tempfile.TemporaryDirectory() as outdir:
        mp.start_processes(_rank_main, args=(world_size, _free_port(), config, outdir),
                           nprocs=world_size, join=True, start_method="spawn")
        ranks = [json.loads(Path(outdir, f"rank{r}.json").read_text()) for r in range(world_size)]
    num_positions, num_classes, hidden_size = sizes
    by_kind: dict[str, int] = {}
    for name, size in ranks[0]["collectives"]:
        by_kind[name] = by_kind.get(name, 0) + size
    floats = 4
    expected = 0
    if not contender.startswith("plain"):
        expected = 80 + num_positions * floats * (3 if smoothing == 0 else 4)
        if contender == "linear":
            expected += num_positions * hidden_size * floats
    largest_shard = num_classes if contender.startswith("plain") else -(-num_classes // world_size)
    if contender in ("plain", "logits"):  # the gradient of the logits (shard)
        gradients = num_positions * largest_shard * floats
    else:  # the gradients of hidden and of the weight (shard)
        gradients = (num_positions + largest_shard) * hidden_size * floats
    return {
        "contender": contender, "ranks": world_size, "N": num_positions, "V": num_classes,
        "D": hidden_size if "linear" in contender else None, "label_smoothing": smoothing,
        "time_s": max(r["median_s"] for r in ranks),
        "peak_mb_per_rank": max(r["peak_above_setup_bytes"] for r in ranks) / 2**20,
        "step_peak_mb_per_rank": (None if ranks[0]["step_peak_bytes"] is None
                                  else max(r["step_peak_bytes"] for r in ranks) / 2**20),
        "gradients_mb_per_rank": gradients / 2**20,
        "bytes_per_step": sum(by_kind.values()),
        "bytes_expected": expected,
        "collective_calls": len(ranks[0]["collectives"]),
        "bytes_by_collective": by_kind,
    }


def _table(rows: list[dict]) -> str:
    header = ("contender", "ranks", "N", "V", "D", "time (s)", "first-step peak MB/rank",
              "step peak MB/rank", "grads MB/rank",
              "calls", "bytes/step/rank", "formula")
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        lines.append("| " + " | ".join(str(x) for x in (
            row["contender"], row["ranks"], row["N"], row["V"], row["D"] or "-",
            f"{row['time_s']:.3f}", f"{row['peak_mb_per_rank']:.1f}",
            "-" if row["step_peak_mb_per_rank"] is None else f"{row['step_peak_mb_per_rank']:.1f}",
            f"{row['gradients_mb_per_rank']:.1f}",
            row["collective_calls"], f"{row['bytes_per_step']:,}", f"{row['bytes_expected']:,}",
        )) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (N=512, V=8000, D=256)")
    parser.add_argument("--ranks", default="1,2", help="world sizes to run, comma-separated")
    parser.add_argument("--repeats", type=int, default=3, help="timed steps per configuration (>= 3)")
    parser.add_argument("--rounds", type=int, default=2, help="round-robin passes over the plan")
    parser.add_argument("--label-smoothing", type=float, default=0.0)
    parser.add_argument("--format", choices=("table", "json"), default="table")
    parser.add_argument("--csv", default=str(Path(__file__).parent / "results" / "vocab_parallel.csv"))
    args = parser.parse_args(argv)
    sizes = SIZES["quick" if args.quick else "full"]
    plan = [("plain", 1), ("plain_linear", 1)]
    for world_size in (int(r) for r in args.ranks.split(",")):
        plan += [("logits", world_size), ("linear", world_size)]
    from rich.progress import Progress

    # large blocks go straight to mmap and back to the OS when freed, so the resident size
    # follows the live tensors (glibc otherwise keeps freed blocks up to 32 MB in its heap)
    os.environ.setdefault("MALLOC_MMAP_THRESHOLD_", "65536")
    runs: dict[tuple, list[dict]] = {}
    load_before = os.getloadavg()[0]
    with Progress(transient=True, disable=args.format == "json") as progress:
        task = progress.add_task("vocab-parallel benchmark", total=len(plan) * args.rounds)
        for _ in range(args.rounds):
            for contender, world_size in plan:
                progress.update(task, description=f"{contender} on {world_size} rank(s)")
                runs.setdefault((contender, world_size), []).append(
                    run_one(contender, world_size, sizes, max(3, args.repeats), args.label_smoothing))
                progress.advance(task)
    rows = []
    for results in runs.values():
        row = dict(results[0])
        row["time_s"] = statistics.median(r["time_s"] for r in results)
        row["time_s_rounds"] = [r["time_s"] for r in results]
        row["peak_mb_per_rank"] = max(r["peak_mb_per_rank"] for r in results)
        if row["step_peak_mb_per_rank"] is not None:
            row["step_peak_mb_per_rank"] = max(r["step_peak_mb_per_rank"] for r in results)
        rows.append(row)
    load = (load_before, os.getloadavg()[0])
    stamp = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    machine = f"{platform.machine()} {os.cpu_count()} cpus, load {load[0]:.1f} -> {load[1]:.1f}"
    if args.format == "json":
        print(json.dumps({"rows": rows, "machine": machine, "time": stamp,
                          "torch": torch.__version__}, indent=2))
    else:
        print(_table(rows))
        print(f"\nfloat32, forward+backward of a 'mean' loss, 1 thread per rank, gloo; "
              f"torch {torch.__version__}; {machine} (1-min load average before -> after); {stamp}")
    path = Path(args.csv)
    path.parent.mkdir(parents=True, exist_ok=True)
    new = not path.exists()
    with path.open("a", newline="") as out:
        writer = csv.writer(out)
        if new:
            writer.writerow(["time", "torch", "machine", "contender", "ranks", "N", "V", "D",
                             "label_smoothing", "time_s", "peak_mb_per_rank", "step_peak_mb_per_rank",
                             "gradients_mb_per_rank",
                             "bytes_per_step", "bytes_expected", "collective_calls"])
        for row in rows:
            step_peak = row["step_peak_mb_per_rank"]
            writer.writerow([stamp, torch.__version__, machine, row["contender"], row["ranks"], row["N"],
                             row["V"], row["D"], row["label_smoothing"], f"{row['time_s']:.4f}",
                             f"{row['peak_mb_per_rank']:.1f}",
                             "" if step_peak is None else f"{step_peak:.1f}",
                             f"{row['gradients_mb_per_rank']:.1f}",
                             row["bytes_per_step"], row["bytes_expected"], row["collective_calls"]])
    return 0


if __name__ == "__main__":
    sys.exit(main())
