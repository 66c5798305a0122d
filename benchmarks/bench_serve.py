"""The playground's API round trip for an 8 x 10 input: p50 and p95 per endpoint, in ms.

    PYTHONPATH=src python benchmarks/bench_serve.py              # 400 requests per endpoint
    PYTHONPATH=src python benchmarks/bench_serve.py --quick      # 60 (seconds)
    PYTHONPATH=src python benchmarks/bench_serve.py --format json

The server runs as ``crossent serve`` does (uvicorn, one process of its own, on a free
loopback port); one HTTP/1.1 client with keep-alive sends the requests one after
another, as the page does for one change, and times each from sending to the parsed
JSON answer. The input is 8 rows of 10 random logits (seeded), class-index targets,
label smoothing 0.1. Each request is sent ``--warmup`` times first (numba compiles,
caches fill), then the endpoints take turns, so a slow moment of the machine falls on
all of them. "page update" is the five requests one change of the page sends (explain,
gradient, curve, compare, numerics), one after another: the page sends them at once, so
this is an upper bound. The target of the design is p95 <= 50 ms for /api/explain. The
script prints the figures and asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _provenance import machine, version  # noqa: E402


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _start_server(port: int) -> subprocess.Popen:
    code = ("import uvicorn; from crossent.serve import create_app; "
            f"uvicorn.run(create_app(), host='127.0.0.1', port={port}, log_level='warning')")
    process = subprocess.Popen([sys.executable, "-c", code])
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return process
        except OSError:
            time.sleep(0.05)
    process.kill()
    raise RuntimeError("the playground's server did not start within 60 s")


def requests(rows: int, classes: int) -> dict[str, tuple[str, dict]]:
    rng = np.random.default_rng(0)
    logits = np.round(rng.standard_normal((rows, classes)) * 2, 4).tolist()
    target = rng.integers(0, classes, rows).tolist()
    problem = {"loss": "cross_entropy", "logits": logits, "target": target,
               "options": {"label_smoothing": 0.1}, "lang": "en"}
    return {
        "/api/explain": ("/api/explain", problem),
        "/api/explain (zh)": ("/api/explain", {**problem, "lang": "zh"}),
        "/api/gradient": ("/api/gradient", problem),
        "/api/plot (curve)": ("/api/plot", {**problem, "row": 0, "column": 1}),
        "/api/compare": ("/api/compare", problem),
        "/api/numerics": ("/api/numerics", {"logits": logits, "target": target}),
    }


def measure(count: int, warmup: int, rows: int, classes: int) -> dict[str, list[float]]:
    import httpx

    port = _free_port()
    server = _start_server(port)
    times: dict[str, list[float]] = {}
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            calls = requests(rows, classes)

            def send(path: str, body: dict) -> float:
                start = time.perf_counter()
                response = client.post(path, json=body)
                response.json()
                elapsed = time.perf_counter() - start
                if response.status_code != 200:
                    raise RuntimeError(f"{path} answered {response.status_code}: {response.text}")
                return elapsed

            for path, body in calls.values():
                for _ in range(warmup):
                    send(path, body)
            page = [calls[name] for name in ("/api/explain", "/api/gradient",
                                             "/api/plot (curve)", "/api/compare",
                                             "/api/numerics")]
            for index in range(count):
                for name, (path, body) in calls.items():
                    times.setdefault(name, []).append(send(path, body))
                times.setdefault("page update (5 requests)", []).append(
                    sum(send(path, body) for path, body in page))
                if (index + 1) % max(count // 10, 1) == 0:
                    print(f"  {index + 1}/{count} rounds", file=sys.stderr, flush=True)
    finally:
        server.terminate()
        server.wait(timeout=10)
    return times


def summary(times: dict[str, list[float]]) -> list[dict]:
    return [{"request": name, "count": len(values),
             "p50_ms": float(np.percentile(values, 50) * 1e3),
             "p95_ms": float(np.percentile(values, 95) * 1e3),
             "max_ms": float(np.max(values) * 1e3)} for name, values in times.items()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=400, help="requests per endpoint")
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--rows", type=int, default=8)
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--format", choices=["table", "json"], default="table")
    parser.add_argument("--quick", action="store_true", help="60 requests per endpoint")
    parser.add_argument("--no-csv", action="store_true",
                        help="accepted for `crossent bench`; this script writes no CSV")
    args = parser.parse_args()
    if args.quick:
        args.count, args.warmup = 60, 5
    rows = summary(measure(args.count, args.warmup, args.rows, args.classes))
    if args.format == "json":
        print(json.dumps({"version": version(), "machine": machine(), "rows": args.rows,
                          "classes": args.classes, "results": rows}, indent=2))
        return
    print(f"\n{args.rows} x {args.classes} logits, {args.count} requests per endpoint after "
          f"{args.warmup} warm-up ones; {machine()}, crossent {version()}")
    print(f"{'request':28} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8}")
    for row in rows:
        print(f"{row['request']:28} {row['p50_ms']:8.2f} {row['p95_ms']:8.2f} {row['max_ms']:8.2f}")


if __name__ == "__main__":
    main()
