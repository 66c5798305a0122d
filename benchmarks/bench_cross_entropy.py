"""Softmax cross-entropy on CPU: crossent's fused kernel vs the frameworks, side by side.

Float32 logits ``(N, V)``, integer targets, 'mean' reduction; two measurements per
contender: the loss alone ("forward") and the loss with the gradient w.r.t. the logits
("forward+backward"). Contenders (the references are imported from
``tests/cross_entropy_references.py``, where the tests check them, so the timed code is
the tested code):

- ``crossent``        ``crossent.cross_entropy`` / ``crossent.value_and_grad`` on NumPy
- ``crossent.torch``  ``crossent.torch.cross_entropy`` (autograd.Function over the kernel)
- ``torch``           ``F.cross_entropy`` eager, ``.backward()``
- ``torch.compile``   ``torch.compile`` of the same (skipped with the reason if it fails)
- ``jax``             ``jax.jit`` of optax's loss / of ``jax.value_and_grad`` of it
- ``numpy``           NumPy written the obvious way (softmax, log, pick, mean)
- ``copy``            ``np.copy`` of the logits: one read and one write of the same bytes,
                      the memory-traffic floor of forward+backward

All contenders run in one process, interleaved (every repetition runs each contender
once, in an order rotated each repetition, after a 0.2 s pause so the previous
contender's worker threads stop spinning), after one warm-up call each; the table shows
the median of the repetitions, the spread (max-min over median: how noisy the machine
was), and ratios to crossent. Compile times (numba with an empty cache and from the disk
cache, jax.jit, torch.compile) and ``import crossent`` are measured separately, in fresh
processes where it matters. Results are appended to ``benchmarks/results.csv`` (version,
machine, date).

Usage::

    PYTHONPATH=src python benchmarks/bench_cross_entropy.py            # full table
    PYTHONPATH=src python benchmarks/bench_cross_entropy.py --quick    # a smoke test
    crossent bench cross-entropy --quick

Benchmarks do not assert.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))

import _provenance  # noqa: E402

import cross_entropy_references as references  # noqa: E402

BENCHMARK = "cross_entropy"
CONTENDERS = ("crossent", "crossent.torch", "torch", "torch.compile", "jax", "numpy", "copy")
PEERS = ("torch", "torch.compile", "jax", "numpy")  # the frameworks crossent is compared with
FULL_SIZES = ((65536, 10), (16384, 1000), (4096, 32000), (1024, 128000), (256, 256000))
QUICK_SIZES = ((4096, 100), (64, 32000))
MODES = ("forward", "forward+backward")
PAUSE_S = 0.2  # idle time before each timed call (OpenMP / XLA threads spin after work)

Timed = Callable[[], Any]


# ==================================================================================
# Contenders: each returns {mode: zero-argument callable} for one input, or raises
# ==================================================================================


def _crossent(logits: np.ndarray, target: np.ndarray) -> dict[str, Timed]:
    import crossent as ce

    return {
        "forward": lambda: ce.cross_entropy(logits, target),
        "forward+backward": lambda: ce.value_and_grad(ce.cross_entropy, logits, target),
    }


def _crossent_torch(logits: np.ndarray, target: np.ndarray) -> dict[str, Timed]:
    import torch

    import crossent.torch as ct

    logits_t, target_t = torch.from_numpy(logits), torch.from_numpy(target)

    def forward_backward() -> Any:
        x = logits_t.detach().requires_grad_(True)
        ct.cross_entropy(x, target_t).backward()
        return x.grad

    def forward() -> Any:
        with torch.no_grad():
            return ct.cross_entropy(logits_t, target_t)

    return {"forward": forward, "forward+backward": forward_backward}


def _torch(logits: np.ndarray, target: np.ndarray) -> dict[str, Timed]:
    import torch
    import torch.nn.functional as F

    logits_t, target_t = torch.from_numpy(logits), torch.from_numpy(target)

    def forward() -> Any:
        with torch.no_grad():
            return F.cross_entropy(logits_t, target_t)

    return {"forward": forward,
            "forward+backward": lambda: references.torch_eager(logits_t, target_t)}


def _torch_compile(logits: np.ndarray, target: np.ndarray) -> dict[str, Timed]:
    import torch
    import torch.nn.functional as F

    logits_t, target_t = torch.from_numpy(logits), torch.from_numpy(target)
    compiled_forward = torch.compile(F.cross_entropy)
    compiled_both = references.torch_compiled()

    def forward() -> Any:
        with torch.no_grad():
            return compiled_forward(logits_t, target_t)

    return {"forward": forward,
            "forward+backward": lambda: compiled_both(logits_t, target_t)}


def _jax(logits: np.ndarray, target: np.ndarray) -> dict[str, Timed]:
    import jax
    import jax.numpy as jnp

    logits_j = jax.device_put(jnp.asarray(logits, dtype=jnp.float32))
    target_j = jax.device_put(jnp.asarray(target, dtype=jnp.int32))
    loss_only, loss_and_grad = references.jax_optax(False), references.jax_optax(True)
    return {
        "forward": lambda: jax.block_until_ready(loss_only(logits_j, target_j)),
        "forward+backward": lambda: jax.block_until_ready(loss_and_grad(logits_j, target_j)),
    }


def _numpy(logits: np.ndarray, target: np.ndarray) -> dict[str, Timed]:
    return {
        "forward": lambda: references.numpy_naive(logits, target, with_grad=False),
        "forward+backward": lambda: references.numpy_naive(logits, target),
    }


def _copy(logits: np.ndarray, target: np.ndarray) -> dict[str, Timed]:
    return {"forward": lambda: np.copy(logits), "forward+backward": lambda: np.copy(logits)}


FACTORIES: dict[str, Callable[[np.ndarray, np.ndarray], dict[str, Timed]]] = {
    "crossent": _crossent,
    "crossent.torch": _crossent_torch,
    "torch": _torch,
    "torch.compile": _torch_compile,
    "jax": _jax,
    "numpy": _numpy,
    "copy": _copy,
}


# ==================================================================================
# Timing
# ==================================================================================


def _time_once(function: Timed) -> tuple[float, float]:
    """Wall-clock and process CPU seconds (all threads) of one call."""
    cpu, start = time.process_time(), time.perf_counter()
    result = function()
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    del result
    return elapsed, cpu


def measure_size(
    num_rows: int, num_classes: int, contenders: tuple[str, ...], repeats: int,
    progress: Callable[[str], None],
) -> list[dict[str, Any]]:
    """Median time of each contender and mode at one size, interleaved; warm-up times kept."""
    rng = np.random.default_rng(0)
    logits = rng.standard_normal((num_rows, num_classes), dtype=np.float32)
    logits *= 2.0
    target = rng.integers(0, num_classes, num_rows)
    functions: dict[tuple[str, str], Timed] = {}
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    for contender in contenders:
        try:
            timed = FACTORIES[contender](logits, target)
            for mode in MODES:  # warm-up: jit compilation, caches, allocator
                warm_up, _ = _time_once(timed[mode])
                functions[contender, mode] = timed[mode]
                rows[contender, mode] = {"contender": contender, "mode": mode,
                                         "N": num_rows, "V": num_classes, "times": [],
                                         "cpu_times": [], "first_call_s": warm_up}
        except Exception as error:  # noqa: BLE001 - a contender that cannot run is reported
            for mode in MODES:
                functions.pop((contender, mode), None)
                rows[contender, mode] = {"contender": contender, "mode": mode, "N": num_rows,
                                         "V": num_classes, "times": [],
                                         "error": f"{type(error).__name__}: {error}"[:200]}
    keys = list(functions)
    for repeat in range(repeats):
        progress(f"({num_rows}, {num_classes}) repetition {repeat + 1}/{repeats}")
        # rotate the order each repetition, so no contender always follows the same one
        shift = repeat % len(keys) if keys else 0
        for key in keys[shift:] + keys[:shift]:
            function = functions[key]
            gc.collect()
            time.sleep(PAUSE_S)  # let the previous contender's worker threads stop spinning
            wall, cpu = _time_once(function)
            rows[key]["times"].append(wall)
            rows[key]["cpu_times"].append(cpu)
    for row in rows.values():
        if row["times"]:
            times = row["times"]
            row["median_s"] = statistics.median(times)
            row["min_s"] = min(times)
            row["cpu_median_s"] = statistics.median(row["cpu_times"])
            row["spread"] = (max(times) - min(times)) / row["median_s"]
    _add_ratios(list(rows.values()))
    return list(rows.values())


def _add_ratios(rows: list[dict[str, Any]]) -> None:
    for mode in MODES:
        timed = {r["contender"]: r["median_s"] for r in rows
                 if r["mode"] == mode and "median_s" in r}
        ours = timed.get("crossent")
        peers = [timed[p] for p in PEERS if p in timed]
        for row in rows:
            if row["mode"] == mode and "median_s" in row and ours:
                row["vs_crossent"] = row["median_s"] / ours
                if peers:
                    row["vs_fastest_peer"] = row["median_s"] / min(peers)


# ==================================================================================
# Start-up costs, in fresh processes
# ==================================================================================


def _python(code: str, env: dict[str, str] | None = None) -> float:
    """Run ``code`` in a fresh interpreter; it prints one number, returned here."""
    environment = {**os.environ, "PYTHONPATH": str(ROOT / "src"), **(env or {})}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env=environment, check=True)
    return float(result.stdout.strip().splitlines()[-1])


def startup_costs() -> dict[str, float]:
    """``import crossent``; first kernel call with an empty numba cache; and from the cache."""
    import_code = ("import time; t = time.perf_counter(); import crossent; "
                   "print(time.perf_counter() - t)")
    call_code = (
        "import time, numpy as np, crossent as ce\n"
        "x = np.random.default_rng(0).standard_normal((64, 1000), dtype=np.float32)\n"
        "y = np.arange(64) % 1000\n"
        "t = time.perf_counter()\n"
        "ce.value_and_grad(ce.cross_entropy, x, y); ce.cross_entropy(x, y)\n"
        "print(time.perf_counter() - t)\n"
    )
    with tempfile.TemporaryDirectory() as cache:
        env = {"NUMBA_CACHE_DIR": cache}
        compile_s = _python(call_code, env)  # empty cache: numba compiles
        cached_s = _python(call_code, env)  # a later process: loads from the disk cache
    return {"import_crossent_s": min(_python(import_code) for _ in range(3)),
            "first_call_empty_cache_s": compile_s, "first_call_cached_s": cached_s}


# ==================================================================================
# Output
# ==================================================================================


def append_csv(rows: list[dict[str, Any]], startup: dict[str, float]) -> Path:
    """One CSV row per metric (the long format shared with the other benchmarks)."""
    metrics = (("median_s", "s"), ("min_s", "s"), ("cpu_median_s", "s"), ("spread", "ratio"),
               ("vs_crossent", "ratio"),
               ("vs_fastest_peer", "ratio"), ("first_call_s", "s"))
    records = [
        {"case": f"N={row['N']} V={row['V']} float32 {row['mode']}", "contender": row["contender"],
         "metric": metric, "value": row[metric], "unit": unit}
        for row in rows for metric, unit in metrics if metric in row
    ]
    records += [{"case": "startup", "contender": "crossent", "metric": metric, "value": value,
                 "unit": "s"} for metric, value in startup.items()]
    return _provenance.append_csv(BENCHMARK, records)


def print_table(rows: list[dict[str, Any]], startup: dict[str, float], load: tuple) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(width=120)
    table = Table(title="Softmax cross-entropy, float32, integer targets, mean "
                        "(median ms; x = time / crossent's)")
    for column in ("N × V", "contender", "forward ms", "x", "fwd+bwd ms", "x", "fwd+bwd cpu ms",
                   "spread"):
        table.add_column(column, justify="left" if column in ("N × V", "contender") else "right")
    sizes = sorted({(r["N"], r["V"]) for r in rows}, key=lambda s: s[1])
    for size in sizes:
        for contender in CONTENDERS:
            cells = {r["mode"]: r for r in rows if (r["N"], r["V"]) == size
                     and r["contender"] == contender}
            if not cells:
                continue
            line = [f"{size[0]} × {size[1]}" if contender == "crossent" else "", contender]
            spreads = []
            for mode in MODES:
                row = cells[mode]
                if "median_s" in row:
                    line += [f"{1e3 * row['median_s']:.1f}", f"{row.get('vs_crossent', 0):.2f}"]
                    spreads.append(row["spread"])
                else:
                    line += ["n/a", ""]
            both = cells[MODES[1]]
            line.append(f"{1e3 * both['cpu_median_s']:.0f}" if "cpu_median_s" in both else "")
            line.append(f"{100 * max(spreads):.0f}%" if spreads else
                        cells[MODES[0]].get("error", "")[:60])
            table.add_row(*line, end_section=contender == CONTENDERS[-1])
    console.print(table)
    if startup:
        console.print(
            f"import crossent: {startup['import_crossent_s']:.2f} s; first kernel call with an "
            f"empty numba cache (compile): {startup['first_call_empty_cache_s']:.2f} s; "
            f"in a later process (disk cache): {startup['first_call_cached_s']:.2f} s"
        )
    first_calls = [f"{r['contender']} {r['mode']} {r['first_call_s']:.2f} s" for r in rows
                   if r["contender"] in ("jax", "torch.compile") and "first_call_s" in r
                   and (r["N"], r["V"]) == sizes[0]]
    if first_calls:
        console.print("first call at the first size (jit compile): " + "; ".join(first_calls))
    console.print(f"load average (1 min) before / after: {load[0]:.2f} / {load[1]:.2f} on "
                  f"{os.cpu_count()} cores; spread = (max - min) / median of the wall times; "
                  f"cpu = process CPU time summed over threads (median)")


# ==================================================================================
# Main
# ==================================================================================


def run(
    sizes: tuple[tuple[int, int], ...], repeats: int, contenders: tuple[str, ...]
) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for num_rows, num_classes in sizes:
        rows += measure_size(num_rows, num_classes, contenders, repeats,
                             progress=lambda text: print(text, file=sys.stderr, flush=True))
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="two small sizes, 3 repetitions, no torch.compile (seconds)")
    parser.add_argument("--format", choices=("table", "json"), default="table",
                        help="print a table or JSON")
    parser.add_argument("--repeats", type=int, default=None,
                        help="timed repetitions per contender (default 7; 3 with --quick)")
    parser.add_argument("--contenders", default=None,
                        help=f"comma-separated subset of {','.join(CONTENDERS)}")
    parser.add_argument("--no-csv", action="store_true", help="do not append to results.csv")
    parser.add_argument("--sizes", default=None,
                        help="comma-separated NxV sizes, e.g. 4096x32000 (default: the five "
                             "target sizes; two small ones with --quick)")
    parser.add_argument("--no-startup", action="store_true",
                        help="skip the import / compile / cache timings (fresh processes)")
    args = parser.parse_args(argv)
    repeats = args.repeats or (3 if args.quick else 7)
    default = tuple(c for c in CONTENDERS if not (args.quick and c == "torch.compile"))
    contenders = tuple(args.contenders.split(",")) if args.contenders else default
    unknown = set(contenders) - set(CONTENDERS)
    if unknown:
        parser.error(f"unknown contender(s) {sorted(unknown)}; choose from {list(CONTENDERS)}")
    load_before = os.getloadavg()[0]
    startup = {} if args.no_startup else startup_costs()
    sizes = QUICK_SIZES if args.quick else FULL_SIZES
    if args.sizes:
        try:
            sizes = tuple(tuple(int(n) for n in size.lower().split("x", 1))  # type: ignore[misc]
                          for size in args.sizes.split(","))
        except ValueError:
            parser.error(f"--sizes must look like 4096x32000,256x256000, got {args.sizes!r}")
    rows = run(sizes, repeats, contenders)
    load = (load_before, os.getloadavg()[0])
    if args.format == "json":
        print(json.dumps({"rows": rows, "startup": startup, "load_average": load}, indent=2))
    else:
        print_table(rows, startup, load)
    if not args.no_csv:
        path = append_csv(rows, startup)
        print(f"appended to {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
