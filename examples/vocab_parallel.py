"""Vocabulary-parallel cross-entropy with crossent on torch.distributed.

Run on CPU with two processes (gloo):

    torchrun --nproc-per-node 2 examples/vocab_parallel.py

(``python examples/vocab_parallel.py`` runs a world of one.) Every rank builds the
same full logits from one seed, keeps its own slice of the vocabulary (an uneven
split when the ranks do not divide it), and computes the loss with
``crossent.torch.vocab_parallel_cross_entropy``; rank 0 prints it beside the
single-process ``crossent.cross_entropy`` and ``torch.nn.functional.cross_entropy``
of the full logits, and the largest gradient difference over all shards. The
same follows for the output-layer form, ``vocab_parallel_linear_cross_entropy``.
"""

from __future__ import annotations

import os
import socket

import torch
import torch.distributed as dist
import torch.nn.functional as F

import crossent
from crossent.torch import vocab_parallel_cross_entropy, vocab_parallel_linear_cross_entropy

NUM_POSITIONS, NUM_CLASSES, HIDDEN_SIZE = 8, 11, 5
OPTIONS = dict(ignore_index=-100, label_smoothing=0.1, reduction="mean")


def shard_bounds(num_classes: int, world_size: int, rank: int) -> tuple[int, int]:
    """This rank's classes [start, stop): as even as possible, the first ranks one larger."""
    base, extra = divmod(num_classes, world_size)
    start = rank * base + min(rank, extra)
    return start, start + base + (1 if rank < extra else 0)


def largest_difference_everywhere(local: float) -> float:
    """The largest of every rank's value (an all-reduce MAX)."""
    value = torch.tensor([local], dtype=torch.float64)
    dist.all_reduce(value, op=dist.ReduceOp.MAX)
    return float(value)


def main() -> None:
    if "RANK" not in os.environ:  # run without torchrun: a world of one process
        with socket.socket() as sock:  # a free port for the store
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        os.environ.update(RANK="0", WORLD_SIZE="1", MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    rank, world_size = dist.get_rank(), dist.get_world_size()
    device = torch.device("cuda", rank % torch.cuda.device_count()) if torch.cuda.is_available() else "cpu"
    if device != "cpu":
        torch.cuda.set_device(device)
    start, stop = shard_bounds(NUM_CLASSES, world_size, rank)
    sizes = [b - a for a, b in (shard_bounds(NUM_CLASSES, world_size, r) for r in range(world_size))]

    generator = torch.Generator().manual_seed(0)  # the same numbers on every rank
    logits = (3 * torch.randn(NUM_POSITIONS, NUM_CLASSES, generator=generator, dtype=torch.float64))
    target = torch.randint(0, NUM_CLASSES, (NUM_POSITIONS,), generator=generator)
    target[[2, 5]] = OPTIONS["ignore_index"]  # two padded positions
    hidden = torch.randn(NUM_POSITIONS, HIDDEN_SIZE, generator=generator, dtype=torch.float64)
    weight = torch.randn(NUM_CLASSES, HIDDEN_SIZE, generator=generator, dtype=torch.float64)
    logits, target, hidden, weight = (t.to(device) for t in (logits, target, hidden, weight))

    # --- the sharded computation: each rank holds logits[:, start:stop]
    shard = logits[:, start:stop].clone().requires_grad_(True)
    loss = vocab_parallel_cross_entropy(shard, target, vocab_start=start, **OPTIONS)
    loss.backward()

    # --- the single-process references on the full logits
    full = logits.clone().requires_grad_(True)
    reference = crossent.cross_entropy(full, target, **OPTIONS)
    reference.backward()
    pytorch = F.cross_entropy(logits, target, **OPTIONS)
    grad_difference = largest_difference_everywhere(
        float((shard.grad - full.grad[:, start:stop]).abs().max())
    )

    # --- the output-layer form: each rank holds rows start:stop of the weight
    hidden_leaf = hidden.clone().requires_grad_(True)
    weight_shard = weight[start:stop].clone().requires_grad_(True)
    linear_loss = vocab_parallel_linear_cross_entropy(
        hidden_leaf, weight_shard, target, vocab_start=start, chunk_size=3, **OPTIONS
    )
    linear_loss.backward()
    hidden_full = hidden.clone().requires_grad_(True)
    weight_full = weight.clone().requires_grad_(True)
    linear_reference = F.cross_entropy(hidden_full @ weight_full.T, target, **OPTIONS)
    linear_reference.backward()
    linear_difference = largest_difference_everywhere(max(
        float((hidden_leaf.grad - hidden_full.grad).abs().max()),
        float((weight_shard.grad - weight_full.grad[start:stop]).abs().max()),
    ))

    if rank == 0:
        print(f"vocab-parallel cross-entropy: {world_size} rank(s) ({dist.get_backend()}), "
              f"N={NUM_POSITIONS} positions (2 ignored), C={NUM_CLASSES} classes split {sizes}, "
              f"label_smoothing={OPTIONS['label_smoothing']}, float64")
        print(f"  sharded     crossent.torch.vocab_parallel_cross_entropy  {loss.item():.12f}")
        print(f"  1 process   crossent.cross_entropy                       {reference.item():.12f}")
        print(f"  1 process   torch.nn.functional.cross_entropy            {float(pytorch):.12f}")
        print(f"  largest gradient difference over all shards: {grad_difference:.1e}")
        print("linear form (hidden @ weight.T, weight sharded by rows, chunks of 3 positions):")
        print(f"  sharded     crossent.torch.vocab_parallel_linear_cross_entropy  {linear_loss.item():.12f}")
        print(f"  1 process   torch.nn.functional.cross_entropy(hidden @ W.T)     "
              f"{linear_reference.item():.12f}")
        print(f"  largest gradient difference (hidden, weight shards): {linear_difference:.1e}")
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
