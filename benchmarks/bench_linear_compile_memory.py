"""Peak memory of linear_cross_entropy under torch.compile(fullgraph=True), one process per cell.

Usage: python benchmarks/bench_linear_compile_memory.py {plain,crossent} [vocab] [backend]

Prints the process's peak resident memory (ru_maxrss) over two compiled forward + backward
steps of ``N=2048, D=64`` float32 tokens: ``plain`` is ``F.cross_entropy(hidden @ weight.T)``,
``crossent`` is ``linear_cross_entropy(..., chunk_size=256)`` (under compile each chunk is
checkpointed, so the graph does not save the ``N × V`` logits). One logits copy is
``2048 × vocab × 4`` bytes.
"""

from __future__ import annotations

import resource
import sys

import torch
import torch.nn.functional as F

from crossent.torch import linear_cross_entropy


def main() -> None:
    mode = sys.argv[1]
    vocab = int(sys.argv[2]) if len(sys.argv) > 2 else 16384
    backend = sys.argv[3] if len(sys.argv) > 3 else "inductor"
    generator = torch.Generator().manual_seed(0)
    hidden = torch.randn(2048, 64, generator=generator).requires_grad_()
    weight = (0.1 * torch.randn(vocab, 64, generator=generator)).requires_grad_()
    target = torch.randint(0, vocab, (2048,), generator=generator)
    if mode == "plain":
        loss_fn = lambda h, w: F.cross_entropy(h @ w.T, target)  # noqa: E731
    else:
        loss_fn = lambda h, w: linear_cross_entropy(h, w, target, chunk_size=256)  # noqa: E731
    compiled = torch.compile(loss_fn, fullgraph=True, backend=backend)
    for _ in range(2):
        hidden.grad = weight.grad = None
        loss = compiled(hidden, weight)
        loss.backward()
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    logits_mib = 2048 * vocab * 4 / 2**20
    print(
        f"{mode} vocab={vocab} backend={backend} loss={loss.item():.6f} "
        f"peak_rss_mib={peak_mib:.0f} logits_copy_mib={logits_mib:.0f}"
    )


if __name__ == "__main__":
    main()
