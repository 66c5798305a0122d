"""Seed 004's CE-vs-BCE experiments on real data: datasets, models, training, verdicts, report.

Seed 004 claims, from Keras runs on IMDB and MNIST: (a) a binary task with one
sigmoid output trained with categorical CE does not learn (loss ≈ 0, accuracy ≈
chance) while BCE converges; (b) for single-label multi-class, BCE works about as
well as CE; (c) for multi-label, CE cannot learn what BCE learns. This package
reproduces all three with PyTorch models whose losses are crossent's own
functions (native, or Keras's conventions from :mod:`crossent.compat.keras`).

>>> from crossent import experiments
>>> results = experiments.run_experiments(["binary"], epochs=2, seeds=1, models=("linear",))
>>> [v.status for v in results.verdicts][1:]
['not run', 'not run']

Command line: ``crossent experiment binary|multiclass|multilabel|all`` and
``crossent report --out DIR``. Requires the ``experiments`` extra (torch, scikit-learn).
"""

from .datasets import (
    DataError,
    Dataset,
    breast_cancer,
    digit_strips,
    digits,
    find_data,
    load_imdb,
    load_mnist,
    read_idx,
)
from .report import write_report
from .results import ExperimentResults, RunResult, SummaryRow, Verdict
from .runner import DEFAULTS, SCENARIOS, run_experiments, train_run
from .setups import MODELS, SETUPS, Setup, make_model
from .verdicts import compare, judge, learning

__all__ = [
    "DataError",
    "Dataset",
    "breast_cancer",
    "digits",
    "digit_strips",
    "read_idx",
    "load_mnist",
    "load_imdb",
    "find_data",
    "Setup",
    "SETUPS",
    "MODELS",
    "make_model",
    "SCENARIOS",
    "DEFAULTS",
    "train_run",
    "run_experiments",
    "ExperimentResults",
    "RunResult",
    "SummaryRow",
    "Verdict",
    "compare",
    "learning",
    "judge",
    "write_report",
]
