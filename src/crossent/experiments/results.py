"""Results of the experiments as dataclasses, summarised over seeds, saved as results.json.

results.json (``schema_version`` 1) holds::

    {"schema_version": 1, "config": {...}, "environment": {...},
     "datasets": {scenario: Dataset.info()},
     "runs": [RunResult, ...],            # one per scenario × model × setup × seed
     "summary": [SummaryRow, ...],        # mean ± std over seeds of the final epoch
     "verdicts": [Verdict, ...],          # one per seed claim (a), (b), (c)
     "wall_s": float}

Each run records its seed, data split, epochs, batch size, optimizer and learning
rate, and per epoch (epoch 0 = before training) the train and test loss and
accuracies, the largest gradient norm of the epoch's steps and the distance of
the weights from their initial values.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "SCHEMA_VERSION",
    "EpochRecord",
    "RunResult",
    "Stat",
    "SummaryRow",
    "Verdict",
    "ExperimentResults",
    "summarise",
]

SCHEMA_VERSION = 1


@dataclass
class EpochRecord:
    """Metrics after one epoch (epoch 0: the initial model)."""

    epoch: int
    train: dict[str, float]
    test: dict[str, float]
    grad_norm: float  # largest global L2 gradient norm over the epoch's steps (0 at epoch 0)
    param_change: float  # L2 distance of all weights from their initial values


@dataclass
class RunResult:
    """One training run: what was trained, how, and its learning curve."""

    scenario: str
    dataset: str
    model: str
    setup: str
    setup_label: str
    loss_code: str
    output: str
    seed: int
    split: dict[str, Any]
    epochs: int
    batch_size: int
    optimizer: str
    lr: float
    history: list[EpochRecord]
    wall_s: float

    def final(self, which: str = "test") -> dict[str, float]:
        """Metrics of the last epoch on ``which`` ('train' or 'test')."""
        record = self.history[-1]
        return record.train if which == "train" else record.test


@dataclass
class Stat:
    """Mean and sample standard deviation (ddof=1; 0 for a single seed) over seeds."""

    mean: float
    std: float
    n: int

    @classmethod
    def of(cls, values: list[float]) -> Stat:
        n = len(values)
        mean = math.fsum(values) / n
        std = math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1 else 0.0
        return cls(mean, std, n)

    def format(self, digits: int = 3) -> str:
        return f"{self.mean:.{digits}f} ± {self.std:.{digits}f}"


@dataclass
class SummaryRow:
    """One scenario × model × setup, over seeds: final test metrics, train loss, gradients."""

    scenario: str
    dataset: str
    model: str
    setup: str
    setup_label: str
    test: dict[str, Stat]
    train_loss: Stat
    max_grad_norm: float  # largest gradient norm seen in any step of any seed
    max_param_change: float


@dataclass
class Verdict:
    """Whether one of seed 004's claims holds on this data, with the figures behind it."""

    claim: str  # "a", "b", "c"
    seed_claim: str
    status: str  # "holds", "partly holds", "does not hold", "not run"
    headline: str
    details: list[str] = field(default_factory=list)
    figures: dict[str, Any] = field(default_factory=dict)


def summarise(runs: list[RunResult]) -> list[SummaryRow]:
    """Group runs by scenario × model × setup (in first-seen order) and average over seeds."""
    groups: dict[tuple[str, str, str], list[RunResult]] = {}
    for run in runs:
        groups.setdefault((run.scenario, run.model, run.setup), []).append(run)
    rows = []
    for (scenario, model, setup), members in groups.items():
        metrics = list(members[0].final("test"))
        rows.append(
            SummaryRow(
                scenario=scenario,
                dataset=members[0].dataset,
                model=model,
                setup=setup,
                setup_label=members[0].setup_label,
                test={m: Stat.of([r.final("test")[m] for r in members]) for m in metrics},
                train_loss=Stat.of([r.final("train")["loss"] for r in members]),
                max_grad_norm=max(e.grad_norm for r in members for e in r.history),
                max_param_change=max(e.param_change for r in members for e in r.history),
            )
        )
    return rows


def _stat(value: dict[str, Any]) -> Stat:
    return Stat(float(value["mean"]), float(value["std"]), int(value["n"]))


@dataclass
class ExperimentResults:
    """Everything one ``crossent experiment`` produced."""

    config: dict[str, Any]
    environment: dict[str, Any]
    datasets: dict[str, dict[str, Any]]
    runs: list[RunResult]
    summary: list[SummaryRow]
    verdicts: list[Verdict]
    wall_s: float
    schema_version: int = SCHEMA_VERSION

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def save(self, path: str | Path) -> Path:
        """Write results.json (indented, finite numbers only)."""
        path = Path(path)
        path.write_text(json.dumps(self.to_dict(), indent=1, allow_nan=False) + "\n")
        return path

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ExperimentResults:
        if data.get("schema_version") != SCHEMA_VERSION:
            raise ValueError(
                f"results schema_version {data.get('schema_version')!r} is not supported "
                f"(expected {SCHEMA_VERSION}); rerun `crossent experiment`"
            )
        runs = [
            RunResult(**{**r, "history": [EpochRecord(**e) for e in r["history"]]})
            for r in data["runs"]
        ]
        summary = [
            SummaryRow(**{
                **s,
                "test": {k: _stat(v) for k, v in s["test"].items()},
                "train_loss": _stat(s["train_loss"]),
            })
            for s in data["summary"]
        ]
        return cls(
            config=data["config"],
            environment=data["environment"],
            datasets=data["datasets"],
            runs=runs,
            summary=summary,
            verdicts=[Verdict(**v) for v in data["verdicts"]],
            wall_s=float(data["wall_s"]),
            schema_version=int(data["schema_version"]),
        )

    @classmethod
    def load(cls, path: str | Path) -> ExperimentResults:
        """Read a results.json written by :meth:`save`."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(
                f"results file {path} does not exist; run `crossent experiment --out DIR` first"
            )
        return cls.from_dict(json.loads(path.read_text()))

    def row(self, scenario: str, model: str, setup: str) -> SummaryRow | None:
        """The summary row of one scenario × model × setup, or None if not run."""
        for row in self.summary:
            if (row.scenario, row.model, row.setup) == (scenario, model, setup):
                return row
        return None
