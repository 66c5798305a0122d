"""The same state on Dask: one state per partition (or file piece), then a tree of merges.

Each partition of a ``dask.dataframe`` (each row block of ``dask.array`` inputs, each
piece of a file) becomes one :class:`~crossent.evaluate.LogLoss` task, as
``map_partitions`` would run it; the states are then merged ``split_every`` at a time,
level by level, until one is left (a tree reduction, like Dask's own ``reduction``). A
state is a few small arrays, so the merges cost nothing next to the partitions, and the
result is the same however the data was partitioned (the sums are compensated).

dask (and distributed, for a cluster) are imported only here.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ._files import Columns
from ._state import LogLoss

__all__ = ["from_dask_dataframe", "from_dask_arrays", "merge_all", "tree_reduce"]

SPLIT_EVERY = 8
CONNECT_TIMEOUT = "10s"  # how long to wait for a scheduler given by address


def merge_all(*states: LogLoss) -> LogLoss:
    """The merge of several states (one node of the tree)."""
    return functools.reduce(LogLoss.merge, states)


def tree_reduce(items: Sequence[Any], combine: Callable[..., Any],
                split_every: int = SPLIT_EVERY) -> Any:
    """``combine(*group)`` over groups of ``split_every`` items, level by level, to one item.

    ``combine`` is ``dask.delayed(merge_all)`` for a task graph, or ``client.submit`` of
    :func:`merge_all` for futures on a cluster.
    """
    if split_every < 2:
        raise ValueError(f"split_every must be at least 2, got {split_every}")
    if not items:
        raise ValueError("no partitions to evaluate")
    level = list(items)
    while len(level) > 1:
        level = [combine(*level[i:i + split_every]) for i in range(0, len(level), split_every)]
    return level[0]


def _frame_state(frame: Any, columns: Columns, labels: Any) -> LogLoss:
    """The state of one pandas partition."""
    state = LogLoss(labels=labels, from_logits=columns.from_logits)
    columns.update(state, {name: frame[name].to_numpy() for name in columns.needed()})
    return state


def from_dask_dataframe(
    frame: Any,
    *,
    label: str,
    prob: str | None = None,
    logit: str | None = None,
    prob_cols: Sequence[str] | None = None,
    weight: str | None = None,
    by: str | None = None,
    labels: Any = None,
    split_every: int = SPLIT_EVERY,
) -> Any:
    """A ``dask.delayed`` :class:`LogLoss` of the columns of a ``dask.dataframe``.

    Args:
      frame: a ``dask.dataframe.DataFrame``.
      label, prob, logit, prob_cols, weight, by: column names, as in
        :func:`crossent.evaluate.evaluate_files`.
      labels: the classes (scikit-learn's ``labels=``).
      split_every: states merged per node of the tree.

    Returns:
      A Delayed; ``.compute()`` gives the state, ``.compute().result()`` the metrics.
    """
    import dask

    columns = Columns(label, prob, logit, None if prob_cols is None else tuple(prob_cols),
                      weight, by)
    for name, role in columns.roles().items():
        if name not in frame.columns:
            raise ValueError(
                f"{role} column {name!r} is not in the dataframe; its columns are "
                f"{', '.join(repr(c) for c in list(frame.columns)[:20])}"
            )
    state_of = dask.delayed(_frame_state, pure=True)
    partitions = frame[columns.needed()].to_delayed()
    states = [state_of(partition, columns, labels) for partition in partitions]
    return tree_reduce(states, dask.delayed(merge_all, pure=True), split_every)


def _block_state(y_true: np.ndarray, y_pred: np.ndarray, weight: np.ndarray | None,
                 by: np.ndarray | None, labels: Any, from_logits: bool) -> LogLoss:
    return LogLoss(labels=labels, from_logits=from_logits).update(
        y_true, y_pred, sample_weight=weight, by=by)


def from_dask_arrays(
    y_true: Any,
    y_pred: Any,
    *,
    sample_weight: Any = None,
    by: Any = None,
    labels: Any = None,
    from_logits: bool = False,
    split_every: int = SPLIT_EVERY,
) -> Any:
    """A ``dask.delayed`` :class:`LogLoss` of ``dask.array`` inputs, block by row block.

    Args:
      y_true: labels ``(n,)``.
      y_pred: probabilities or logits ``(n,)`` or ``(n, C)`` (rechunked to whole rows).
      sample_weight, by: optional ``(n,)`` arrays.
      labels, from_logits: as for :class:`LogLoss`.
      split_every: states merged per node of the tree.

    Returns:
      A Delayed; ``.compute()`` gives the state.
    """
    import dask
    import dask.array as da

    y_true, y_pred = da.asarray(y_true), da.asarray(y_pred)
    if y_true.ndim != 1 or y_pred.ndim not in (1, 2) or y_pred.shape[0] != y_true.shape[0]:
        raise ValueError(
            f"y_true must be (n,) and y_pred (n,) or (n, C), got shapes {y_true.shape} and "
            f"{y_pred.shape}"
        )
    rows = y_true.chunks[0]
    y_pred = y_pred.rechunk((rows,) + ((y_pred.shape[1],) if y_pred.ndim == 2 else ()))
    extras = [None if extra is None else da.asarray(extra).rechunk((rows,))
              for extra in (sample_weight, by)]
    blocks = [y_true.to_delayed().reshape(-1), y_pred.to_delayed().reshape(-1)]
    blocks += [[None] * len(rows) if extra is None else extra.to_delayed().reshape(-1)
               for extra in extras]
    state_of = dask.delayed(_block_state, pure=True)
    states = [state_of(t, p, w, g, labels, from_logits) for t, p, w, g in zip(*blocks, strict=True)]
    return tree_reduce(states, dask.delayed(merge_all, pure=True), split_every)


def connect(scheduler: str, option: str = "scheduler") -> tuple[Any, Any]:
    """``(client, cluster)`` for ``local:N`` (a new LocalCluster of N worker processes,
    one thread each; the cluster is returned to be closed) or a scheduler's address."""
    from distributed import Client, LocalCluster

    if scheduler.startswith("local:"):
        count = scheduler.removeprefix("local:")
        if not count.isdigit() or int(count) < 1:
            raise ValueError(
                f"{option} {scheduler!r} needs a number of workers, e.g. local:2"
            )
        import dask

        # every process of a LocalCluster wakes on timers, CPU taken from the tasks when the
        # workers fill the cores (the workers inherit this configuration): no statistical
        # profiler (it samples every thread's stack every 10 ms), the event-loop watchdog
        # every 1 s (not 20 ms) and the dashboard's system monitor every 5 s (not 0.5 s;
        # there is no dashboard). Idle, a 2-worker cluster then takes 0.05 of a core, not
        # 0.13 (psutil over its processes, 10 s). The memory monitor keeps its default.
        with dask.config.set({"distributed.worker.profile.enabled": False,
                              "distributed.admin.tick.interval": "1s",
                              "distributed.admin.system-monitor.interval": "5s"}):
            cluster = LocalCluster(n_workers=int(count), threads_per_worker=1, processes=True,
                                   dashboard_address=None, silence_logs=logging.ERROR)
        return Client(cluster), cluster
    try:
        return Client(scheduler, timeout=CONNECT_TIMEOUT), None
    except (OSError, TimeoutError, ValueError) as error:
        raise ValueError(
            f"{option} {scheduler!r}: no Dask scheduler answered ({error}); give a running "
            f"scheduler's address (tcp://host:8786) or local:N"
        ) from None
