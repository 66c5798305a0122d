"""The training loop and the experiment driver.

Each run is seeded (``torch.manual_seed`` for the initial weights, a separate
generator for the mini-batch order; the bundled data sets also split with the
seed) and trains with Adam on mini-batches (learning rate 1e-3, Keras's default,
for the small binary set; 3e-3 for the larger sets, so that 20 epochs converge;
see :data:`DEFAULTS`; every run records its settings). After every epoch the
whole train and test sets are evaluated: the loss under test,
``crossent.metrics.binary_accuracy`` and, where it differs,
``categorical_accuracy``; for multi-label data the exact-match rate (all 10 yes/no
decisions right at threshold 0.5) and the top-k match (the k highest scores are
exactly the k true labels, k known), which shows whether a loss learned to *rank*
the labels even when its probabilities cannot be thresholded.
"""

from __future__ import annotations

import math
import os
import platform
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

import crossent as ce

from . import datasets as ds
from .results import EpochRecord, ExperimentResults, RunResult, summarise
from .setups import MODELS, SETUPS, Setup, make_model

__all__ = ["SCENARIOS", "DEFAULTS", "train_run", "run_experiments", "load_scenario_data"]

SCENARIOS = ("binary", "multiclass", "multilabel")

# Per scenario: epochs, batch size, learning rate (Adam). Small enough that the default
# `crossent experiment all` (3 seeds, 2 models, all setups) finishes in well under 3
# minutes on 2 CPU cores; large enough that the learning setups converge.
DEFAULTS: dict[str, dict[str, Any]] = {
    "binary": {"epochs": 30, "batch_size": 32, "lr": 1e-3},
    "multiclass": {"epochs": 20, "batch_size": 64, "lr": 3e-3},
    "multilabel": {"epochs": 20, "batch_size": 128, "lr": 3e-3},
}

# The seed's own data sets (--data) are 10-40x larger: bigger batches and fewer epochs
# keep `crossent experiment all --data ...` within minutes (an explicit --epochs wins).
LARGE_DATA = {"min_train": 10_000, "batch_size": 256, "epochs": 5}

# The metric each scenario's verdict rests on.
PRIMARY_METRIC = {
    "binary": "binary_accuracy",
    "multiclass": "categorical_accuracy",
    "multilabel": "exact_match",
}

ProgressCallback = Callable[[str, int], None]
"""Called as ``progress(scenario, epochs_done)`` after every epoch of every run."""


@contextmanager
def _torch_threads(count: int) -> Iterator[None]:
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def _metrics(task: str, setup: Setup, logits: Any, target: Any) -> dict[str, float]:
    import torch

    probs = setup.probs(logits)
    values = {
        "loss": float(setup.loss(logits, target)),
        "binary_accuracy": float(ce.metrics.binary_accuracy(target, probs)),
    }
    if task == "multiclass":
        values["categorical_accuracy"] = float(ce.metrics.categorical_accuracy(target, probs))
    if task == "multilabel":
        decided = probs > 0.5
        values["exact_match"] = float((decided == (target > 0.5)).all(dim=-1).float().mean())
        # top-k: the k highest scores are the k true labels (k = number of true labels)
        counts = target.sum(dim=-1).long()
        ranks = torch.argsort(torch.argsort(logits, dim=-1, descending=True), dim=-1)
        top = ranks < counts[:, None]
        values["top_k_match"] = float((top == (target > 0.5)).all(dim=-1).float().mean())
    return values


def train_run(
    data: ds.Dataset,
    setup: Setup,
    model_kind: str,
    *,
    seed: int,
    epochs: int,
    batch_size: int,
    lr: float,
    on_epoch: Callable[[], None] | None = None,
) -> RunResult:
    """Train one model with one setup on ``data``; the learning curve as a :class:`RunResult`.

    Epoch 0 is the initial model. ``grad_norm`` is the largest global L2 norm of the
    gradients the optimizer received in the epoch; ``param_change`` the L2 distance of
    the weights from their initial values (both exactly 0 when no gradient flows).
    """
    import torch

    started = time.perf_counter()
    torch.manual_seed(seed)
    model = make_model(model_kind, data.x_train.shape[1], data.num_outputs)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    order = torch.Generator().manual_seed(seed)
    x_train, x_test = torch.from_numpy(data.x_train), torch.from_numpy(data.x_test)
    t_train = torch.from_numpy(data.targets("train"))
    t_test = torch.from_numpy(data.targets("test"))
    initial = [p.detach().clone() for p in model.parameters()]

    def record(epoch: int, grad_norm: float) -> EpochRecord:
        with torch.no_grad():
            change = math.sqrt(sum(
                float((p - p0).pow(2).sum())
                for p, p0 in zip(model.parameters(), initial, strict=True)
            ))
            return EpochRecord(
                epoch=epoch,
                train=_metrics(data.task, setup, model(x_train), t_train),
                test=_metrics(data.task, setup, model(x_test), t_test),
                grad_norm=grad_norm,
                param_change=change,
            )

    history = [record(0, 0.0)]
    count = len(x_train)
    for epoch in range(1, epochs + 1):
        largest = 0.0
        permutation = torch.randperm(count, generator=order)
        for start in range(0, count, batch_size):
            batch = permutation[start:start + batch_size]
            optimizer.zero_grad(set_to_none=False)
            loss = setup.loss(model(x_train[batch]), t_train[batch])
            loss.backward()
            norm = math.sqrt(sum(float(p.grad.pow(2).sum()) for p in model.parameters()))
            largest = max(largest, norm)
            optimizer.step()
        history.append(record(epoch, largest))
        if on_epoch is not None:
            on_epoch()
    return RunResult(
        scenario=data.task,
        dataset=data.name,
        model=model_kind,
        setup=setup.key,
        setup_label=setup.label,
        loss_code=setup.loss_code,
        output=setup.output,
        seed=seed,
        split=data.info()["split"] | {"num_train": len(data.x_train), "num_test": len(data.x_test)},
        epochs=epochs,
        batch_size=batch_size,
        optimizer="Adam (torch.optim.Adam, betas 0.9/0.999, eps 1e-8)",
        lr=lr,
        history=history,
        wall_s=time.perf_counter() - started,
    )


def load_scenario_data(
    scenario: str, seed: int, found: dict[str, Path] | None = None,
    cache: dict[str, ds.Dataset] | None = None,
) -> ds.Dataset:
    """The data set of ``scenario`` for ``seed``: the user's (``found`` by
    :func:`~crossent.experiments.datasets.find_data`) or the bundled one."""
    found = found or {}
    cache = cache if cache is not None else {}
    if scenario == "binary":
        if "imdb" in found:
            if "imdb" not in cache:
                cache["imdb"] = ds.load_imdb(found["imdb"])
            return cache["imdb"]
        return ds.breast_cancer(seed)
    if scenario == "multiclass":
        if "mnist" in found:
            if "mnist" not in cache:
                cache["mnist"] = ds.load_mnist(found["mnist"])
            return cache["mnist"]
        return ds.digits(seed)
    if scenario == "multilabel":
        if "mnist" in found:
            if "mnist" not in cache:
                cache["mnist"] = ds.load_mnist(found["mnist"])
            return ds.digit_strips(seed, source=cache["mnist"])
        return ds.digit_strips(seed)
    raise ValueError(
        f"scenario must be one of {', '.join(SCENARIOS)} or 'all', got {scenario!r}"
    )


def _environment(threads: int) -> dict[str, Any]:
    import sklearn
    import torch

    return {
        "crossent": ce.__version__,
        "torch": torch.__version__,
        "numpy": np.__version__,
        "scikit-learn": sklearn.__version__,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch_threads": threads,
    }


# Per worker process: the user's data sets, loaded once; the progress queue.
_WORKER_CACHE: dict[str, ds.Dataset] = {}
_WORKER_QUEUE: Any = None


def _init_worker(queue: Any, threads: int) -> None:
    global _WORKER_QUEUE
    import torch

    _WORKER_QUEUE = queue
    torch.set_num_threads(threads)


def _run_job(
    scenario: str, seed: int, found: dict[str, Path], setting: dict[str, Any],
    models: tuple[str, ...], progress: ProgressCallback | None = None,
) -> tuple[dict[str, Any], list[RunResult]]:
    """Every model × setup of one scenario and seed (one unit of parallel work)."""
    data_set = load_scenario_data(scenario, seed, found, _WORKER_CACHE)
    if len(data_set.x_train) >= LARGE_DATA["min_train"]:
        setting = setting | {"batch_size": LARGE_DATA["batch_size"]}
        if not setting.get("epochs_given"):
            setting["epochs"] = LARGE_DATA["epochs"]
    if progress is not None:
        def on_epoch() -> None:
            progress(scenario, 1)
    elif _WORKER_QUEUE is not None:
        def on_epoch() -> None:
            _WORKER_QUEUE.put(scenario)
    else:
        on_epoch = None  # type: ignore[assignment]
    runs = [
        train_run(data_set, setup, model, seed=seed, epochs=setting["epochs"],
                  batch_size=setting["batch_size"], lr=setting["lr"], on_epoch=on_epoch)
        for model in models
        for setup in SETUPS[scenario]
    ]
    return data_set.info(), runs


def _run_jobs_in_processes(
    jobs: list[tuple[str, int]], found: dict[str, Path], settings: dict[str, dict[str, Any]],
    models: tuple[str, ...], workers: int, threads: int, progress: ProgressCallback | None,
) -> list[tuple[dict[str, Any], list[RunResult]]]:
    import multiprocessing
    import queue as queue_module
    from concurrent.futures import ProcessPoolExecutor, wait

    # spawn, not fork: forking a process that has started PyTorch's thread pools can hang
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    with ProcessPoolExecutor(max_workers=workers, mp_context=context,
                             initializer=_init_worker, initargs=(queue, threads)) as pool:
        futures = [pool.submit(_run_job, scenario, seed, found, settings[scenario], models)
                   for scenario, seed in jobs]
        pending = set(futures)
        while pending:
            _, pending = wait(pending, timeout=0.2)
            while True:
                try:
                    scenario = queue.get_nowait()
                except queue_module.Empty:
                    break
                if progress is not None:
                    progress(scenario, 1)
        return [future.result() for future in futures]


def run_experiments(
    scenarios: tuple[str, ...] | list[str] = SCENARIOS,
    *,
    epochs: int | None = None,
    seeds: int = 3,
    data: str | Path | None = None,
    models: tuple[str, ...] = MODELS,
    threads: int = 1,
    workers: int = 1,
    progress: ProgressCallback | None = None,
) -> ExperimentResults:
    """Run every setup of each scenario with each model and ``seeds`` seeds (0, 1, ...).

    Args:
      scenarios: any of 'binary', 'multiclass', 'multilabel'.
      epochs: overrides each scenario's default (:data:`DEFAULTS`).
      seeds: number of seeds; the summary gives mean ± std over them.
      data: optional ``--data PATH`` with the seed's own data (IMDB, MNIST); scenarios
        without matching files use the bundled data.
      models: 'linear' and/or 'mlp'.
      threads: PyTorch CPU threads per process (1 is fastest for these small models).
      workers: processes running (scenario, seed) jobs side by side; the numbers do
        not depend on it (every run is seeded and single-threaded).
      progress: called after every epoch (see :data:`ProgressCallback`).

    Returns:
      :class:`~crossent.experiments.results.ExperimentResults` with runs, summary and
      verdicts.
    """
    from .verdicts import judge

    for scenario in scenarios:
        if scenario not in SCENARIOS:
            raise ValueError(
                f"scenario must be one of {', '.join(SCENARIOS)} or 'all', got {scenario!r}"
            )
    if not isinstance(seeds, int) or seeds < 1:
        raise ValueError(f"seeds must be a positive integer, got {seeds!r}")
    if epochs is not None and (not isinstance(epochs, int) or epochs < 1):
        raise ValueError(f"epochs must be a positive integer, got {epochs!r}")
    if not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers must be a positive integer, got {workers!r}")
    for model in models:
        if model not in MODELS:
            raise ValueError(f"model must be one of {', '.join(MODELS)}, got {model!r}")
    found = ds.find_data(data) if data is not None else {}
    started = time.perf_counter()
    settings = {
        s: dict(DEFAULTS[s]) | ({"epochs": epochs, "epochs_given": True} if epochs else {})
        for s in scenarios
    }
    jobs = [(scenario, seed) for scenario in scenarios for seed in range(seeds)]
    if workers == 1:
        with _torch_threads(threads):
            outcomes = [_run_job(scenario, seed, found, settings[scenario], models, progress)
                        for scenario, seed in jobs]
    else:
        outcomes = _run_jobs_in_processes(jobs, found, settings, models, workers, threads,
                                          progress)
    runs: list[RunResult] = []
    datasets: dict[str, dict[str, Any]] = {}
    for (scenario, _), (info, job_runs) in zip(jobs, outcomes, strict=True):
        datasets.setdefault(scenario, info)
        runs.extend(job_runs)
    for scenario in scenarios:  # the settings the runs used (large data sets adapt them)
        first = next(r for r in runs if r.scenario == scenario)
        settings[scenario] = {"epochs": first.epochs, "batch_size": first.batch_size,
                              "lr": first.lr}
    summary = summarise(runs)
    config = {
        "scenarios": list(scenarios),
        "seeds": list(range(seeds)),
        "models": list(models),
        "settings": settings,
        "data": None if data is None else str(data),
        "data_found": {k: str(v) for k, v in found.items()},
        "primary_metric": {s: PRIMARY_METRIC[s] for s in scenarios},
    }
    results = ExperimentResults(
        config=config,
        environment=_environment(threads) | {"workers": workers},
        datasets=datasets,
        runs=runs,
        summary=summary,
        verdicts=[],
        wall_s=0.0,
    )
    results.verdicts = judge(results)
    results.wall_s = time.perf_counter() - started
    return results


def total_epochs(
    scenarios: tuple[str, ...] | list[str], *, epochs: int | None, seeds: int,
    models: tuple[str, ...] = MODELS,
) -> dict[str, int]:
    """Epochs each scenario will train in total (for progress bars)."""
    return {
        s: (epochs or DEFAULTS[s]["epochs"]) * seeds * len(models) * len(SETUPS[s])
        for s in scenarios
    }
