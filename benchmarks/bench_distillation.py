"""Distillation over a large vocabulary: crossent's fused loss vs the whole-logits compositions.

Contenders (forward + backward of the 'mean' loss, gradients of the student's hidden and weight):

- ``crossent_kl`` / ``crossent_jsd``: ``crossent.torch.linear_distillation_loss`` (chunk 'auto')
  with ``loss='kl'`` / ``loss='jsd'`` (beta 0.5), ``temperature_scale=False``.
- ``plain_kl``: both logits whole, ``F.kl_div(log_softmax(s), log_softmax(t), log_target=True,
  reduction='batchmean')`` (``plain_distillation`` imported from tests/test_torch_distill.py).
- ``liger_jsd``: Liger-Kernel's published torch reference of the generalised JSD on whole
  logits (``liger_jsd_reference`` in tests/test_torch_distill.py, the mixture in log space).

The teacher is given as logits ``[N, V]`` (``--teacher logits``, an input) or as
``(hidden_t, weight_t)`` (``--teacher linear``; the whole-logits contenders then make the teacher's
logits whole too, under ``no_grad``). Each (size, dtype, teacher, contender) runs in its own
subprocess: inputs are built, one small pass warms the BLAS library, the resident size is the
baseline (the high-water mark ``VmHWM`` is reset there); the figure is the peak resident size
(``VmHWM``; ``ru_maxrss`` where it cannot be reset) during the first full pass minus it
("MB above the inputs"), also given as a multiple of the student's gradients' bytes
(``(N + V)·D`` elements). Time: the median of ``--repeats`` passes in that process.

Usage::

    PYTHONPATH=src python benchmarks/bench_distillation.py --quick
    PYTHONPATH=src python benchmarks/bench_distillation.py --sizes 4096,1024,32000 2048,1024,128000 \
        --dtype float32 --dtype bfloat16 --teacher logits --teacher linear  # every cell

Rows are printed and appended to ``benchmarks/results.csv``. Benchmarks do not assert.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
import _memory  # noqa: E402
import _provenance  # noqa: E402

BENCHMARK = "distillation"
SIZES = ((4096, 1024, 32000), (2048, 1024, 128000))
QUICK_SIZES = ((512, 256, 8000),)
CONTENDERS = ("crossent_kl", "plain_kl", "crossent_jsd", "liger_jsd")


def _references() -> Any:
    spec = importlib.util.spec_from_file_location("distill_refs", ROOT / "tests" / "test_torch_distill.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def worker(
    contender: str,
    tokens: int,
    hidden_size: int,
    vocab: int,
    dtype_name: str,
    teacher_kind: str,
    repeats: int,
) -> dict[str, Any]:
    import torch

    import crossent.torch as ct

    dtype = getattr(torch, dtype_name)
    torch.manual_seed(0)
    hidden = torch.randn(tokens, hidden_size, dtype=dtype).requires_grad_()
    weight = torch.randn(vocab, hidden_size, dtype=dtype).mul_(0.02).requires_grad_()
    if teacher_kind == "logits":
        teacher: Any = torch.randn(tokens, vocab, dtype=dtype)
    else:
        teacher = (
            torch.randn(tokens, hidden_size, dtype=dtype),
            torch.randn(vocab, hidden_size, dtype=dtype).mul_(0.02),
        )
    references = _references() if not contender.startswith("crossent") else None

    def one_pass() -> float:
        start = time.perf_counter()
        if contender.startswith("crossent"):
            loss = ct.linear_distillation_loss(
                hidden, weight, teacher, loss=contender.split("_")[1], temperature_scale=False
            )
        else:
            with torch.no_grad():
                teacher_logits = teacher if isinstance(teacher, torch.Tensor) else teacher[0] @ teacher[1].T
            student_logits = hidden @ weight.T
            if contender == "plain_kl":
                loss = references.plain_distillation(student_logits, teacher_logits)
            else:
                loss = references.liger_jsd_reference(student_logits, teacher_logits, beta=0.5)
        loss.backward()
        elapsed = time.perf_counter() - start
        hidden.grad = weight.grad = None
        return elapsed

    small = torch.randn(8, hidden_size, dtype=dtype)
    (small @ weight.detach()[:64].T).sum()  # the BLAS library's first-call buffers
    _memory.reset_high_water()  # the pass's own peak, not set-up's (where it can be reset)
    baseline = _memory.rss_bytes()
    times = [one_pass()]
    peak = _memory.high_water_bytes()
    times += [one_pass() for _ in range(repeats - 1)]
    gradient_bytes = (tokens + vocab) * hidden_size * torch.finfo(dtype).bits // 8
    return {
        "contender": contender,
        "tokens": tokens,
        "hidden": hidden_size,
        "vocab": vocab,
        "dtype": dtype_name,
        "teacher": teacher_kind,
        "mb_above": (peak - baseline) / 2**20,
        "x_gradients": (peak - baseline) / gradient_bytes,
        "seconds": statistics.median(times),
    }


def run_cell(
    contender: str, size: tuple[int, int, int], dtype: str, teacher: str, repeats: int, timeout: float
) -> dict[str, Any]:
    command = [
        sys.executable,
        __file__,
        "--worker",
        contender,
        "--size",
        ",".join(map(str, size)),
        "--dtype",
        dtype,
        "--teacher",
        teacher,
        "--repeats",
        str(repeats),
    ]
    base = {
        "contender": contender,
        "tokens": size[0],
        "hidden": size[1],
        "vocab": size[2],
        "dtype": dtype,
        "teacher": teacher,
    }
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return {**base, "error": f"timeout after {timeout:.0f} s"}
    if done.returncode != 0:
        return {**base, "error": (done.stderr.strip().splitlines() or ["failed"])[-1]}
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes only")
    parser.add_argument(
        "--size", "--sizes", nargs="+", help="N,D,V cells (default: 4096,1024,32000 and 2048,1024,128000)"
    )
    parser.add_argument("--dtype", action="append", choices=["float32", "bfloat16"])
    parser.add_argument("--teacher", action="append", choices=["logits", "linear"])
    parser.add_argument("--contender", action="append", choices=CONTENDERS)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds per cell")
    parser.add_argument("--no-csv", action="store_true")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        size = tuple(int(x) for x in args.size[0].split(","))
        print(json.dumps(worker(args.worker, *size, args.dtype[0], args.teacher[0], args.repeats)))
        return 0
    sizes = (
        [tuple(int(x) for x in cell.split(",")) for cell in args.size]
        if args.size
        else (QUICK_SIZES if args.quick else SIZES)
    )
    rows = []
    for size in sizes:
        for dtype in args.dtype or ["float32", "bfloat16"]:
            for teacher in args.teacher or ["logits", "linear"]:
                for contender in args.contender or CONTENDERS:
                    row = run_cell(contender, size, dtype, teacher, args.repeats, args.timeout)
                    rows.append(row)
                    if "error" in row:
                        print(f"{size} {dtype} {teacher} {contender}: {row['error']}", flush=True)
                    else:
                        print(
                            f"{size} {dtype} {teacher} {contender}: {row['mb_above']:.0f} MB above "
                            f"({row['x_gradients']:.2f}x gradients), {row['seconds']:.2f} s",
                            flush=True,
                        )
    if not args.no_csv:
        records = []
        for row in rows:
            case = f"{row['tokens']}x{row['hidden']}x{row['vocab']} {row['dtype']} teacher={row['teacher']}"
            if "error" in row:
                records.append(
                    {
                        "case": case,
                        "contender": row["contender"],
                        "metric": "error",
                        "value": row["error"],
                        "unit": "",
                    }
                )
                continue
            records += [
                {
                    "case": case,
                    "contender": row["contender"],
                    "metric": "mb_above",
                    "value": round(row["mb_above"], 1),
                    "unit": "MB",
                },
                {
                    "case": case,
                    "contender": row["contender"],
                    "metric": "seconds",
                    "value": round(row["seconds"], 3),
                    "unit": "s",
                },
            ]
        _provenance.append_csv(BENCHMARK, records)
    return 0


if __name__ == "__main__":
    sys.exit(main())
