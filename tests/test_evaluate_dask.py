"""crossent.evaluate on Dask: a 2-worker LocalCluster (threads, so it starts in a second).

Expected values: scikit-learn's ``log_loss`` on the same rows in memory; the dask-ml
worked example of docs/evaluate.md recomputed from dask-ml's algorithm.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import pytest

from crossent import evaluate as ev
from crossent.evaluate import _api, _dask, _files

sklearn_metrics = pytest.importorskip("sklearn.metrics")
dd = pytest.importorskip("dask.dataframe")
da = pytest.importorskip("dask.array")
distributed = pytest.importorskip("distributed")
pd = pytest.importorskip("pandas")
pq = pytest.importorskip("pyarrow.parquet")
pa = pytest.importorskip("pyarrow")

pytestmark = pytest.mark.timeout(180)


@pytest.fixture(scope="module")
def client():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                                  dashboard_address=None, silence_logs=logging.ERROR) as cluster, \
            distributed.Client(cluster, timeout="30s") as client:
        yield client


def _data(rows: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    prob = rng.random(rows)
    return pd.DataFrame({"click": (rng.random(rows) < prob).astype(np.int64), "p": prob,
                         "w": rng.random(rows), "g": rng.integers(0, 4, rows)})


def test_files_on_the_cluster_equal_streaming(client, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    frame = _data(5000)
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), tmp_path / "a.parquet",
                   row_group_size=600)
    np.save(tmp_path / "b.npy", frame.to_records(index=False))
    frame.to_csv(tmp_path / "c.csv", index=False)
    monkeypatch.setattr(_api, "PIECE_ROWS", 1000)  # 9 Parquet pieces, 5 .npy pieces
    monkeypatch.setattr(_files, "BATCH_VALUES", 2000)
    options = {"label": "click", "prob": "p", "weight": "w", "by": "g"}
    paths = sorted(tmp_path.iterdir())
    streamed = ev.evaluate_files(paths, **options)
    clustered = ev.evaluate_files(paths, scheduler=client, **options)
    assert clustered.rows == streamed.rows == 15000
    assert clustered.log_loss == pytest.approx(streamed.log_loss, rel=1e-12)
    for key, group in streamed.groups.items():
        assert clustered.groups[key].log_loss == pytest.approx(group.log_loss, rel=1e-12)
    assert streamed.log_loss == pytest.approx(
        sklearn_metrics.log_loss(frame.click, frame.p, sample_weight=frame.w), rel=1e-13)


def test_task_errors_reach_the_caller(client, tmp_path: Path) -> None:
    pd.DataFrame({"click": [0, 1], "p": [0.5, 2.0]}).to_csv(tmp_path / "bad.csv", index=False)
    with pytest.raises(ValueError, match=r"bad.csv: prob 'p' must hold probabilities in \[0, 1\], "
                                         r"found 2 at row 1"):
        ev.evaluate_files(tmp_path / "bad.csv", label="click", prob="p", scheduler=client)


def test_dask_dataframe_equals_sklearn(client) -> None:
    frame = _data(4000, seed=1)
    parts = dd.from_pandas(frame, npartitions=7).repartition(divisions=[0, 10, 900, 2500, 3999])
    state = ev.from_dask_dataframe(parts, label="click", prob="p", weight="w", split_every=2)
    result = client.compute(state).result(timeout=60).result()
    assert result.log_loss == pytest.approx(
        sklearn_metrics.log_loss(frame.click, frame.p, sample_weight=frame.w), rel=1e-13)
    with pytest.raises(ValueError, match=r"^weight column 'weight' is not in the dataframe"):
        ev.from_dask_dataframe(parts, label="click", prob="p", weight="weight")


def test_dask_arrays_with_uneven_chunks_equal_sklearn(client) -> None:
    rng = np.random.default_rng(2)
    y_true = rng.integers(0, 3, 3000)
    prob = rng.dirichlet(np.ones(3), 3000)
    state = ev.from_dask_arrays(da.from_array(y_true, chunks=((5, 1995, 1000),)),
                                da.from_array(prob, chunks=(700, 2)), labels=[0, 1, 2])
    result = client.compute(state).result(timeout=60).result()
    assert result.log_loss == pytest.approx(sklearn_metrics.log_loss(y_true, prob), rel=1e-13)
    assert result.accuracy == pytest.approx(
        sklearn_metrics.accuracy_score(y_true, prob.argmax(axis=1)), rel=1e-15)


# docs/evaluate.md's worked example: two blocks of 2 and 6 rows
BLOCKS = [([1, 0], [0.5, 0.5]), ([1, 1, 1, 0, 0, 0], [0.9, 0.9, 0.9, 0.1, 0.1, 0.1])]


def test_the_dask_ml_bias_of_the_docs() -> None:
    y_true = np.concatenate([np.array(y) for y, _ in BLOCKS])
    prob = np.concatenate([np.array(p) for _, p in BLOCKS])
    # dask-ml's log_loss without weights: sklearn's log_loss per block, then the mean
    mean_of_means = np.mean([sklearn_metrics.log_loss(y, p) for y, p in BLOCKS])
    assert mean_of_means == pytest.approx((np.log(2) - np.log(0.9)) / 2, rel=1e-15)
    assert round(mean_of_means, 4) == 0.3993
    true = sklearn_metrics.log_loss(y_true, prob)
    assert true == pytest.approx((2 * np.log(2) - 6 * np.log(0.9)) / 8, rel=1e-15)
    assert round(true, 4) == 0.2523
    state = ev.from_dask_arrays(da.from_array(y_true, chunks=((2, 6),)),
                                da.from_array(prob, chunks=((2, 6),)))
    assert state.compute(scheduler="sync").result().log_loss == pytest.approx(true, rel=1e-15)


def test_the_real_dask_ml_shows_the_bias() -> None:
    classification = pytest.importorskip("dask_ml.metrics.classification")
    y_true = da.from_array(np.concatenate([y for y, _ in BLOCKS]), chunks=((2, 6),))
    prob = da.from_array(np.concatenate([p for _, p in BLOCKS]).astype(float), chunks=((2, 6),))
    with pytest.raises(TypeError, match="eps"):  # dask-ml passes eps=, removed by scikit-learn
        classification.log_loss(y_true, prob).compute(scheduler="sync")


def _worker_settings() -> dict[str, object]:
    import dask

    return {key: dask.config.get(key) for key in (
        "distributed.worker.profile.enabled", "distributed.admin.tick.interval",
        "distributed.admin.system-monitor.interval", "distributed.worker.memory.monitor-interval")}


def test_a_local_cluster_of_worker_processes(tmp_path: Path) -> None:
    """``scheduler="local:N"``: N worker processes, one thread each, with the quieter timers
    in the worker processes themselves; the result is scikit-learn's."""
    frame = _data(3000, seed=3)
    frame.to_csv(tmp_path / "a.csv", index=False)
    client, cluster = _dask.connect("local:1")
    try:
        assert list(client.nthreads().values()) == [1]
        (worker_pid, settings), = client.run(lambda: (os.getpid(), _worker_settings())).values()
        assert worker_pid != os.getpid()
        assert settings == {"distributed.worker.profile.enabled": False,
                            "distributed.admin.tick.interval": "1s",
                            "distributed.admin.system-monitor.interval": "5s",
                            "distributed.worker.memory.monitor-interval": "100ms"}
        result = ev.evaluate_files(tmp_path / "a.csv", label="click", prob="p", scheduler=client)
    finally:
        client.close()
        cluster.close()
    assert result.log_loss == pytest.approx(sklearn_metrics.log_loss(frame.click, frame.p),
                                            rel=1e-13)


def test_scheduler_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValueError, match=r"^scheduler 'local:0' needs a number of workers"):
        _dask.connect("local:0")
    monkeypatch.setattr(_dask, "CONNECT_TIMEOUT", "0.5s")
    with pytest.raises(ValueError, match=r"^scheduler 'tcp://127.0.0.1:9': no Dask scheduler "
                                         r"answered \(.*\); give a running scheduler's address"):
        _dask.connect("tcp://127.0.0.1:9")


def test_tree_reduce_groups_by_split_every() -> None:
    calls: list[int] = []

    def combine(*items: int) -> int:
        calls.append(len(items))
        return sum(items)

    assert _dask.tree_reduce(list(range(20)), combine, split_every=8) == sum(range(20))
    assert calls == [8, 8, 4, 3]
    with pytest.raises(ValueError, match="^split_every must be at least 2, got 1$"):
        _dask.tree_reduce([1], combine, split_every=1)
