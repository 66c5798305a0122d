"""Verdicts on seed 004's three claims, worded from the measured numbers by fixed rules.

All figures are final-epoch *test* metrics, mean ± sample std over seeds. The
rules (also in docs/experiments.md):

**Comparing two setups A and B** on a metric (:func:`compare`): the difference
``d = mean_A - mean_B`` is judged against the run-to-run spread
``s = sqrt(std_A² + std_B²)``, with a floor of half a point
(``tol = max(s, 0.005)``), because a handful of seeds cannot resolve less:

- ``|d| <= tol``: A works **about as well as** B;
- ``tol < |d| <= 3 tol``: A works **slightly better / slightly worse than** B;
- ``|d| > 3 tol``: A works **better / worse than** B.

The spread of single runs is used, not the standard error of the mean, so a
"better" is a difference larger than what reseeding one run moves — conservative
on purpose.

**Whether a setup learns** (:func:`learning`), against the baseline of a model
that ignores its input (the test set's majority-class rate; for multi-label exact
match, the rate of its most common label set):

- every gradient the optimizer received was exactly 0.0 → **receives no gradient**
  (the weights never move; its accuracy is that of the random initial model);
- ``mean - baseline >= 0.10`` → **learns**;
- ``mean - baseline < 0.05`` → **does not learn**;
- otherwise → **learns a little**.

A loss is "≈ 0" when its final training value is below 1e-3.

**Claim status**: (a) *holds* when Keras CE on one sigmoid output does not learn
(or receives no gradient) with a loss ≈ 0 while BCE learns, for every model;
(b) *holds* when every BCE setup works about as well as, or better than, CE on
categorical accuracy for every model, *does not hold* when every BCE setup works
"worse than" CE, and *partly holds* otherwise (a "slightly worse", or a mix);
(c) per model, *holds* when BCE learns and no CE setup learns (exact match), *does
not hold* when BCE does not learn or a CE setup works about as well as BCE or
better, and *partly holds* when a CE setup learns but works worse than BCE. Mixed
outcomes across models are *partly holds*.

**Peaks**: a setup whose mean test accuracy peaked more than 0.02 above its final
value is reported as "peaked at X (epoch k), then fell to Y".
"""

from __future__ import annotations

import math
from typing import Any

from .results import ExperimentResults, Stat, SummaryRow, Verdict

__all__ = ["compare", "learning", "judge", "SEED_CLAIMS"]

SEED_CLAIMS = {
    "a": (
        "Binary task, one sigmoid output: trained with (Keras) categorical cross-entropy "
        "the model does not learn — loss ≈ 0, accuracy ≈ chance (IMDB: loss 5.9557e-08, "
        "acc 0.5005) — while binary cross-entropy converges (loss 0.5104, acc 0.7282)."
    ),
    "b": (
        "Single-label multi-class: BCE works about as well as CE (MNIST after 100 steps: "
        "BCE categorical_accuracy 0.8137, CE acc 0.8107, \"BCE even slightly better\"); "
        "Keras shows binary_accuracy for BCE and categorical_accuracy for CE."
    ),
    "c": (
        "Multi-label: CE cannot learn what BCE learns — with independent sigmoid outputs "
        "CE only sees the labels that are 1, so it is hard to converge; use BCE."
    ),
}

TOLERANCE_FLOOR = 0.005
LEARNS_MARGIN = 0.10
NO_LEARNING_MARGIN = 0.05
LOSS_ZERO = 1e-3
PEAK_DROP = 0.02


def compare(a: Stat, b: Stat) -> tuple[str, float, float]:
    """How A compares with B: ``(wording, difference, tolerance)`` by the rules above.

    >>> compare(Stat(0.903, 0.005, 3), Stat(0.900, 0.004, 3))[0]
    'about as well as'
    >>> compare(Stat(0.95, 0.01, 3), Stat(0.80, 0.01, 3))[0]
    'better than'
    """
    difference = a.mean - b.mean
    tolerance = max(math.hypot(a.std, b.std), TOLERANCE_FLOOR)
    size = abs(difference)
    if size <= tolerance:
        return "about as well as", difference, tolerance
    direction = "better" if difference > 0 else "worse"
    if size <= 3 * tolerance:
        return f"slightly {direction} than", difference, tolerance
    return f"{direction} than", difference, tolerance


def learning(row: SummaryRow, metric: str, baseline: float) -> str:
    """'receives no gradient', 'learns', 'learns a little' or 'does not learn'.

    >>> from crossent.experiments.results import SummaryRow, Stat
    >>> row = SummaryRow("binary", "d", "linear", "bce", "", {"acc": Stat(0.95, 0.01, 3)},
    ...                  Stat(0.1, 0.0, 3), 0.5, 1.0)
    >>> learning(row, "acc", 0.63)
    'learns'
    """
    if row.max_grad_norm == 0.0:
        return "receives no gradient"
    gain = row.test[metric].mean - baseline
    if gain >= LEARNS_MARGIN:
        return "learns"
    if gain < NO_LEARNING_MARGIN:
        return "does not learn"
    return "learns a little"


def _models(results: ExperimentResults, scenario: str) -> list[str]:
    return [m for m in results.config["models"]]


def _baseline(results: ExperimentResults, scenario: str) -> float:
    return float(results.datasets[scenario]["test_majority_rate"])


def _not_run(claim: str) -> Verdict:
    return Verdict(claim, SEED_CLAIMS[claim], "not run", "This scenario was not run.")


def _combine(statuses: list[str]) -> str:
    if all(s == "holds" for s in statuses):
        return "holds"
    if all(s == "does not hold" for s in statuses):
        return "does not hold"
    return "partly holds"


def _claim_a(results: ExperimentResults) -> Verdict:
    scenario, metric = "binary", "binary_accuracy"
    baseline = _baseline(results, scenario)
    dataset = results.datasets[scenario]["name"]
    statuses, details, figures = [], [], {}
    headline_parts = []
    for model in _models(results, scenario):
        bce = results.row(scenario, model, "bce")
        keras_ce = results.row(scenario, model, "keras_ce")
        if bce is None or keras_ce is None:
            continue
        bce_state = learning(bce, metric, baseline)
        ce_state = learning(keras_ce, metric, baseline)
        ce_loss = keras_ce.train_loss.mean
        loss_zero = ce_loss < LOSS_ZERO
        stuck = ce_state in ("receives no gradient", "does not learn")
        ok = stuck and loss_zero and bce_state == "learns"
        failed = bce_state != "learns" or ce_state == "learns"
        statuses.append("holds" if ok else "does not hold" if failed else "partly holds")
        figures[model] = {
            "bce": asdict_stat(bce.test[metric]),
            "keras_ce": asdict_stat(keras_ce.test[metric]),
            "keras_ce_train_loss": ce_loss,
            "keras_ce_max_grad_norm": keras_ce.max_grad_norm,
            "baseline": baseline,
        }
        headline_parts.append(
            f"{model}: Keras CE {keras_ce.test[metric].format()} ({ce_state}; train loss "
            f"{ce_loss:.3g}), BCE {bce.test[metric].format()} ({bce_state})"
        )
        if keras_ce.max_grad_norm == 0.0:
            details.append(
                f"{model}: with Keras CE every gradient was exactly 0.0 and the weights moved "
                f"{keras_ce.max_param_change:.3g}: Keras divides the single output by its sum "
                "(p/p = 1) and clips it to 1 - ε, where the clip passes no gradient."
            )
        for key in ("seed_ce", "softmax_ce"):
            other = results.row(scenario, model, key)
            if other is None:
                continue
            details.append(
                f"{model}: {other.setup_label} reaches {other.test[metric].format()} "
                f"({learning(other, metric, baseline)}; train loss "
                f"{other.train_loss.mean:.3g}){_peak(results, scenario, model, key, metric)}."
            )
    if not statuses:
        return _not_run("a")
    details.insert(0, f"Data: {dataset}; baseline (majority-class rate) {baseline:.3f}; "
                      f"metric: test {metric}.")
    expected = _keras_one_output_loss(results)
    if expected is not None:
        details.insert(1, expected)
    status = _combine(statuses)
    headline = f"Claim (a) {status} on {dataset}: " + "; ".join(headline_parts) + "."
    return Verdict("a", SEED_CLAIMS["a"], status, headline, details, figures)


def _peak(results: ExperimentResults, scenario: str, model: str, setup: str,
          metric: str) -> str:
    """', peaked at X (epoch k), then fell to Y' when the mean curve fell by > 0.02."""
    runs = [r for r in results.runs
            if (r.scenario, r.model, r.setup) == (scenario, model, setup)]
    if not runs:
        return ""
    length = min(len(r.history) for r in runs)
    curve = [sum(r.history[e].test[metric] for r in runs) / len(runs) for e in range(length)]
    best = max(range(length), key=lambda e: curve[e])
    if curve[best] - curve[-1] <= PEAK_DROP:
        return ""
    return f", but its mean peaked at {curve[best]:.3f} (epoch {best}) and fell to {curve[-1]:.3f}"


def _keras_one_output_loss(results: ExperimentResults) -> str | None:
    """The loss Keras CE must show on one output: positive rate × (−log(1 − ε))."""
    row = next((r for r in results.summary if r.setup == "keras_ce"
                and r.scenario == "binary"), None)
    rate = results.datasets["binary"].get("train_positive_rate")
    if row is None or rate is None:
        return None
    import numpy as np

    from crossent.compat import keras

    # one sample with y = 1: p / p = 1 is clipped to 1 - ε, so the loss is -log(1 - ε)
    per_positive = float(keras.categorical_crossentropy(
        np.ones((1, 1), np.float32), np.full((1, 1), 0.5, np.float32))[0])
    return (
        f"Keras CE on one output is -y log(1 - ε) = {per_positive:.4g} · y for every sample, "
        f"whatever the weights: on this training set (positive rate {rate:.3f}) the mean is "
        f"{rate * per_positive:.4g}, measured {row.train_loss.mean:.4g}. On IMDB (half the "
        f"reviews positive) it is {0.5 * per_positive:.4g}; seed 004 printed 5.9557e-08."
    )


def asdict_stat(stat: Stat) -> dict[str, Any]:
    return {"mean": stat.mean, "std": stat.std, "n": stat.n}


def _claim_b(results: ExperimentResults) -> Verdict:
    scenario, metric = "multiclass", "categorical_accuracy"
    dataset = results.datasets[scenario]["name"]
    statuses, details, figures, parts = [], [], {}, []
    for model in _models(results, scenario):
        ce_row = results.row(scenario, model, "ce")
        if ce_row is None:
            continue
        figures[model] = {"ce": asdict_stat(ce_row.test[metric])}
        wordings: list[str] = []
        for key in ("bce", "keras_bce"):
            row = results.row(scenario, model, key)
            if row is None:
                continue
            wording, difference, tolerance = compare(row.test[metric], ce_row.test[metric])
            figures[model][key] = asdict_stat(row.test[metric]) | {
                "difference": difference, "tolerance": tolerance, "wording": wording,
            }
            parts.append(
                f"{model}: {row.setup_label} {row.test[metric].format()} works {wording} "
                f"{ce_row.setup_label} {ce_row.test[metric].format()}"
            )
            wordings.append(wording)
            shown = row.test["binary_accuracy"]
            details.append(
                f"{model}: Keras would show {row.setup_label} with binary_accuracy "
                f"{shown.format()} but {ce_row.setup_label} with categorical_accuracy "
                f"{ce_row.test[metric].format()}; on the same metric (categorical) "
                f"{row.setup_label} has {row.test[metric].format()}."
            )
        if all(not w.endswith("worse than") for w in wordings):
            statuses.append("holds")
        elif all(w == "worse than" for w in wordings):
            statuses.append("does not hold")
        else:
            statuses.append("partly holds")
    if not statuses:
        return _not_run("b")
    details.insert(0, f"Data: {dataset}; metric: test {metric} (one argmax per sample).")
    status = _combine(statuses)
    headline = f"Claim (b) {status} on {dataset}: " + "; ".join(parts) + "."
    return Verdict("b", SEED_CLAIMS["b"], status, headline, details, figures)


def _claim_c(results: ExperimentResults) -> Verdict:
    scenario, metric = "multilabel", "exact_match"
    baseline = _baseline(results, scenario)
    dataset = results.datasets[scenario]["name"]
    statuses, details, figures, parts = [], [], {}, []
    rankers: list[str] = []
    for model in _models(results, scenario):
        bce = results.row(scenario, model, "bce")
        if bce is None:
            continue
        bce_state = learning(bce, metric, baseline)
        figures[model] = {"bce": asdict_stat(bce.test[metric]), "baseline": baseline}
        bce_learns = bce_state == "learns"
        ce_parts, ce_states = [], []
        for key in ("seed_ce", "keras_ce", "softmax_ce"):
            row = results.row(scenario, model, key)
            if row is None:
                continue
            wording, difference, _ = compare(row.test[metric], bce.test[metric])
            state = learning(row, metric, baseline)
            ce_states.append((state, wording))
            figures[model][key] = asdict_stat(row.test[metric]) | {
                "difference": difference, "wording": wording, "learning": state,
                "top_k_match": asdict_stat(row.test["top_k_match"]),
            }
            ce_parts.append(f"{row.setup_label} {row.test[metric].format()} ({state})")
            rank = compare(row.test["top_k_match"], bce.test["top_k_match"])[0]
            if not rank.endswith("worse than"):
                rankers.append(f"{model} {row.setup_label}")
            details.append(
                f"{model}: {row.setup_label}: exact match {row.test[metric].format()}, "
                f"binary_accuracy {row.test['binary_accuracy'].format()}; ranking the labels "
                f"(top-k match, k known) {row.test['top_k_match'].format()}, which ranks "
                f"{rank} BCE's {bce.test['top_k_match'].format()}."
            )
            if key == "keras_ce" and state != "does not learn":
                details.append(
                    f"{model}: {row.setup_label} {state} ({wording} BCE): Keras renormalises "
                    "the outputs (p_c / sum_k p_k), so raising a wrong label's output lowers "
                    "the true labels' share; the zero labels do get a gradient, unlike in the "
                    "seed's -sum y log p."
                )
        stuck = all(s in ("does not learn", "receives no gradient") for s, _ in ce_states)
        rival = any(not w.endswith("worse than") for _, w in ce_states)
        if bce_learns and stuck:
            statuses.append("holds")
        elif not bce_learns or rival:
            statuses.append("does not hold")
        else:
            statuses.append("partly holds")  # some CE setup learns, but worse than BCE
        parts.append(
            f"{model}: BCE exact match {bce.test[metric].format()} ({bce_state}) vs "
            + ", ".join(ce_parts)
        )
    if not statuses:
        return _not_run("c")
    details.insert(0, (
        f"Data: {dataset}; metric: test exact match (all 10 yes/no decisions right at "
        f"threshold 0.5); baseline (most common label set) {baseline:.3f}. Top-k match "
        "asks only whether the k highest scores are the k true labels."
    ))
    if rankers:
        details.insert(1, (
            f"But {', '.join(rankers)} rank the labels at least about as well as BCE (top-k "
            "match, rule above): these CE setups learn which digits are present when told how "
            "many; what they do not learn is the independent yes/no decision per label."
        ))
    status = _combine(statuses)
    headline = f"Claim (c) {status} on {dataset}: " + "; ".join(parts) + "."
    return Verdict("c", SEED_CLAIMS["c"], status, headline, details, figures)


def judge(results: ExperimentResults) -> list[Verdict]:
    """One :class:`Verdict` per claim (a), (b), (c); 'not run' for scenarios not run."""
    scenarios = results.config["scenarios"]
    return [
        _claim_a(results) if "binary" in scenarios else _not_run("a"),
        _claim_b(results) if "multiclass" in scenarios else _not_run("b"),
        _claim_c(results) if "multilabel" in scenarios else _not_run("c"),
    ]
