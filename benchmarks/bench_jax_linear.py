"""crossent.jax.linear_cross_entropy vs the plain jitted composition (hidden @ W.T, optax).

Per shape and dtype, for ``jax.value_and_grad`` w.r.t. hidden and weight under ``jax.jit``:
- XLA's ``.lower(...).compile().memory_analysis()``: temporaries (target ours ≤ 0.15× plain)
  and resident memory above the inputs (temporaries + outputs) over the gradients' bytes
  (target ≤ 1.2×); compile only, nothing runs;
- with ``--time``: the median of ``--repeat`` steps (target ≤ 1.1× plain).

    PYTHONPATH=src python benchmarks/bench_jax_linear.py                 # memory, both shapes
    PYTHONPATH=src python benchmarks/bench_jax_linear.py --time --shape 1024,512,8000
"""

from __future__ import annotations

import argparse
import statistics
import time

import jax
import jax.numpy as jnp
import optax

import crossent.jax as cj

SHAPES = ((4096, 1024, 32000), (2048, 1024, 128000))


def plain_loss(hidden, weight, target):
    """The composition the engine replaces: whole logits, then optax."""
    logits = (hidden @ weight.T).astype(jnp.float32)
    return jnp.mean(optax.softmax_cross_entropy_with_integer_labels(logits, target))


def ours_loss(hidden, weight, target):
    return cj.linear_cross_entropy(hidden, weight, target)


def _step(loss):
    return jax.jit(jax.value_and_grad(loss, argnums=(0, 1)))


def _inputs(tokens, hidden_size, vocab, dtype):
    keys = jax.random.split(jax.random.PRNGKey(0), 3)
    hidden = jax.random.normal(keys[0], (tokens, hidden_size), dtype)
    weight = (jax.random.normal(keys[1], (vocab, hidden_size)) * 0.02).astype(dtype)
    target = jax.random.randint(keys[2], (tokens,), 0, vocab)
    return hidden, weight, target


def memory_row(shape, dtype):
    tokens, hidden_size, vocab = shape
    specs = (
        jax.ShapeDtypeStruct((tokens, hidden_size), dtype),
        jax.ShapeDtypeStruct((vocab, hidden_size), dtype),
        jax.ShapeDtypeStruct((tokens,), jnp.int32),
    )
    gradient_bytes = (tokens + vocab) * hidden_size * jnp.dtype(dtype).itemsize
    row = {}
    for name, loss in (("plain", plain_loss), ("ours", ours_loss)):
        stats = _step(loss).lower(*specs).compile().memory_analysis()
        row[name] = (stats.temp_size_in_bytes, stats.temp_size_in_bytes + stats.output_size_in_bytes)
    return {
        "shape": shape,
        "dtype": jnp.dtype(dtype).name,
        "temp_plain_MiB": row["plain"][0] / 2**20,
        "temp_ours_MiB": row["ours"][0] / 2**20,
        "temp_ratio": row["ours"][0] / row["plain"][0],
        "resident_over_gradients_ours": row["ours"][1] / gradient_bytes,
        "resident_over_gradients_plain": row["plain"][1] / gradient_bytes,
    }


def time_row(shape, dtype, repeat):
    args = _inputs(*shape, dtype)
    row = {"shape": shape, "dtype": jnp.dtype(dtype).name}
    for name, loss in (("plain", plain_loss), ("ours", ours_loss)):
        step = _step(loss)
        jax.block_until_ready(step(*args))  # compile and warm up
        times = []
        for _ in range(repeat):
            start = time.perf_counter()
            jax.block_until_ready(step(*args))
            times.append(time.perf_counter() - start)
        row[f"{name}_s"] = statistics.median(times)
    row["time_ratio"] = row["ours_s"] / row["plain_s"]
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", action="append", help="N,D,V (repeatable); default: both")
    parser.add_argument("--dtype", action="append", choices=["float32", "bfloat16"])
    parser.add_argument("--time", action="store_true", help="also time the steps (runs them)")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    shapes = [tuple(map(int, s.split(","))) for s in args.shape] if args.shape else SHAPES
    dtypes = [jnp.dtype(d) for d in (args.dtype or ["float32", "bfloat16"])]
    print(f"jax {jax.__version__} on {jax.devices()[0].platform}")
    for shape in shapes:
        for dtype in dtypes:
            print(memory_row(shape, dtype), flush=True)
            if args.time:
                print(time_row(shape, dtype, args.repeat), flush=True)


if __name__ == "__main__":
    main()
