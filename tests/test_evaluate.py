"""crossent.evaluate.LogLoss: against scikit-learn, hand derivations and math.fsum references.

Expected values come from scikit-learn 1.9.1 (``sklearn.metrics``), scipy, ``math`` and
``math.fsum`` of per-row losses written out here, never from crossent itself.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys

import numpy as np
import pytest

from crossent import evaluate as ev
from crossent.evaluate import _sums

sklearn_metrics = pytest.importorskip("sklearn.metrics")
special = pytest.importorskip("scipy.special")
scipy_stats = pytest.importorskip("scipy.stats")

U = 2.0**-53


def _binary(rows: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    prob = rng.random(rows)
    return (rng.random(rows) < prob).astype(np.int64), prob


def _multiclass(rows: int, classes: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.integers(0, classes, rows), rng.dirichlet(np.ones(classes), rows)


# --- equal to scikit-learn ---------------------------------------------------------------


def test_binary_probabilities_equal_sklearn() -> None:
    y_true, prob = _binary(5000)
    prob[:3] = [0.0, 1.0, 1e-300]  # clipped to [eps, 1 - eps] as scikit-learn does
    result = ev.LogLoss().update(y_true, prob).result()
    assert result.log_loss == pytest.approx(sklearn_metrics.log_loss(y_true, prob), rel=1e-13)
    assert result.loss_sum == pytest.approx(
        sklearn_metrics.log_loss(y_true, prob, normalize=False), rel=1e-13)
    assert result.accuracy == sklearn_metrics.accuracy_score(y_true, prob > 0.5)
    assert result.rows == 5000 and result.weight == 5000.0 and result.classes == (0, 1)


def test_string_labels_weights_and_labels_argument_equal_sklearn() -> None:
    y_index, prob = _multiclass(4000, 4, seed=1)
    names = np.array(["ant", "bee", "cat", "dog"])
    y_true = names[y_index]
    weight = np.random.default_rng(2).random(4000) * 3
    result = ev.LogLoss().update(y_true, prob, sample_weight=weight).result()
    assert result.log_loss == pytest.approx(
        sklearn_metrics.log_loss(y_true, prob, sample_weight=weight), rel=1e-13)
    assert result.accuracy == pytest.approx(sklearn_metrics.accuracy_score(
        y_true, names[prob.argmax(axis=1)], sample_weight=weight), rel=1e-13)
    # a class that never occurs: labels= says the 4 columns are these 4 classes
    seen = y_true != "cat"
    state = ev.LogLoss(labels=list(names)).update(y_true[seen], prob[seen])
    assert state.result().log_loss == pytest.approx(
        sklearn_metrics.log_loss(y_true[seen], prob[seen], labels=names), rel=1e-13)
    assert state.result().base_rate[2] == 0.0


def test_float32_probabilities_clip_with_float32_eps() -> None:
    y_true = np.array([0, 1, 1, 0])
    prob = np.array([0.0, 1.0, 0.25, 1.0], dtype=np.float32)
    eps = float(np.finfo(np.float32).eps)
    # by hand: rows 0, 1 are clipped to 1 - eps; row 3 to eps for its true class 0
    expected = (-2 * math.log1p(-eps) - math.log(0.25) - math.log(eps)) / 4
    result = ev.LogLoss().update(y_true, prob).result()
    assert result.log_loss == pytest.approx(expected, rel=1e-12)
    assert result.log_loss == pytest.approx(sklearn_metrics.log_loss(y_true, prob), rel=1e-6)


def test_integer_probabilities_are_float64_as_sklearn() -> None:
    y_true, prob = np.array([0, 1, 1]), np.array([0, 1, 0])
    expected = sklearn_metrics.log_loss(y_true, prob)
    assert ev.LogLoss().update(y_true, prob).result().log_loss == pytest.approx(expected, rel=1e-14)


def test_unnormalised_rows_warn_and_are_not_renormalised() -> None:
    y_true, prob = np.array([0, 1]), np.array([[0.5, 0.4], [0.2, 0.7]])
    with pytest.warns(UserWarning, match="do not sum to one"):
        result = ev.LogLoss().update(y_true, prob).result()
    assert result.log_loss == pytest.approx((-math.log(0.5) - math.log(0.7)) / 2, rel=1e-15)


# --- logits ------------------------------------------------------------------------------


def test_binary_logits_equal_sklearn_on_sigmoid_and_are_exact_at_1e4() -> None:
    rng = np.random.default_rng(3)
    logits = rng.standard_normal(3000) * 4
    y_true = (rng.random(3000) < special.expit(logits)).astype(int)
    result = ev.LogLoss(from_logits=True).update(y_true, logits).result()
    assert result.log_loss == pytest.approx(
        sklearn_metrics.log_loss(y_true, special.expit(logits)), rel=1e-12)
    # log(1 + e^1e4) = 1e4 (+ e^-1e4): probabilities would clip at -log(eps) = 36.04
    extreme = ev.LogLoss(from_logits=True).update([0, 1], [1e4, -1e4]).result()
    assert extreme.log_loss == 1e4
    assert extreme.accuracy == 0.0


def test_softmax_logits_equal_sklearn_on_softmax() -> None:
    rng = np.random.default_rng(4)
    logits = rng.standard_normal((2000, 5)) * 3
    y_true = rng.integers(0, 5, 2000)
    result = ev.LogLoss(from_logits=True).update(y_true, logits).result()
    assert result.log_loss == pytest.approx(
        sklearn_metrics.log_loss(y_true, special.softmax(logits, axis=1)), rel=1e-12)
    entropy = scipy_stats.entropy(special.softmax(logits, axis=1), axis=1).mean()
    assert result.prediction_entropy == pytest.approx(entropy, rel=1e-12)
    # shift-invariant, and exact where probabilities would underflow: -log softmax = 2e4
    far = ev.LogLoss(labels=[0, 1, 2], from_logits=True).update([1], [[1e4, -1e4, 0.0]]).result()
    assert far.log_loss == pytest.approx(2e4, rel=1e-15)


# --- entropy, normalised entropy, groups ----------------------------------------------------


def test_normalized_entropy_and_prediction_entropy_by_hand() -> None:
    y_true = np.array([1, 0, 0, 0])
    prob = np.array([0.9, 0.2, 0.1, 0.4])
    weight = np.array([1.0, 2.0, 1.0, 0.5])
    losses = [-math.log(0.9), -math.log(0.8), -math.log(0.9), -math.log(0.6)]
    log_loss = math.fsum(w * loss for w, loss in zip(weight, losses, strict=True)) / 4.5
    base = 1 / 4.5  # the weight of class 1
    base_entropy = -base * math.log(base) - (1 - base) * math.log(1 - base)
    entropies = [-p * math.log(p) - (1 - p) * math.log(1 - p) for p in prob]
    result = ev.LogLoss().update(y_true, prob, sample_weight=weight).result()
    assert result.log_loss == pytest.approx(log_loss, rel=1e-15)
    assert result.base_rate == pytest.approx((1 - base, base), rel=1e-15)
    assert result.base_rate_entropy == pytest.approx(base_entropy, rel=1e-15)
    assert result.normalized_entropy == pytest.approx(log_loss / base_entropy, rel=1e-15)
    assert result.prediction_entropy == pytest.approx(
        math.fsum(w * h for w, h in zip(weight, entropies, strict=True)) / 4.5, rel=1e-15)
    assert result.accuracy == pytest.approx(4.5 / 4.5)


def test_groups_equal_sklearn_on_each_group() -> None:
    y_true, prob = _binary(6000, seed=5)
    group = np.random.default_rng(6).choice(np.array(["de", "fr", "us"]), 6000)
    weight = np.random.default_rng(7).random(6000)
    result = ev.LogLoss().update(y_true, prob, sample_weight=weight, by=group).result()
    assert list(result.groups) == ["de", "fr", "us"]
    for key, part in result.groups.items():
        rows = group == key
        assert part.rows == rows.sum()
        assert part.log_loss == pytest.approx(sklearn_metrics.log_loss(
            y_true[rows], prob[rows], sample_weight=weight[rows], labels=[0, 1]), rel=1e-13)
    assert result.log_loss == pytest.approx(
        sklearn_metrics.log_loss(y_true, prob, sample_weight=weight), rel=1e-13)
    data = result.to_dict()
    assert [g["group"] for g in data["groups"]] == ["de", "fr", "us"]


def test_a_group_with_one_class_has_no_normalized_entropy() -> None:
    result = ev.LogLoss().update([0, 0, 1], [0.2, 0.3, 0.8], by=["a", "a", "b"]).result()
    assert math.isnan(result.groups["a"].normalized_entropy)
    assert result.groups["a"].log_loss == pytest.approx(-(math.log(0.8) + math.log(0.7)) / 2)
    # strict JSON has no NaN: undefined values are null
    text = json.dumps(result.to_dict(), allow_nan=False)
    assert json.loads(text)["groups"][0]["normalized_entropy"] is None


# --- exact however split --------------------------------------------------------------------


def test_shuffled_and_repartitioned_agree_to_1e_12_where_naive_sums_do_not() -> None:
    rows = 60000
    y_true, prob = _multiclass(rows, 3, seed=8)
    # one row of weight 1 and many below half an ulp of 1: a running float64 sum that meets
    # the big row first never grows again (the worst case of naive summation)
    weight = np.full(rows, 0.9e-16)
    weight[0] = 1.0
    # the per-row terms, written out: scikit-learn's clipping, then -log of the true column
    eps = np.finfo(np.float64).eps
    losses = -np.log(np.clip(prob, eps, 1 - eps)[np.arange(rows), y_true])
    exact = math.fsum((weight * losses).tolist()) / math.fsum(weight.tolist())
    # the test can fail: plain float64 sums in two orders differ by more than 1e-12
    naive = [float(np.cumsum(weight[o] * losses[o])[-1] / np.cumsum(weight[o])[-1])
             for o in (np.arange(rows), np.arange(rows)[::-1])]
    assert abs(naive[0] - naive[1]) > 1e-12 * exact
    whole = ev.LogLoss().update(y_true, prob, sample_weight=weight).result().log_loss
    rng = np.random.default_rng(11)
    order = rng.permutation(rows)
    states = [ev.LogLoss().update(y_true[part], prob[part], sample_weight=weight[part])
              for part in np.split(order, np.sort(rng.choice(rows, 37, replace=False)))]
    while len(states) > 1:  # merged in a random tree
        i, j = sorted(rng.choice(len(states), 2, replace=False))
        states.append(states.pop(j).merge(states.pop(i)))
    split = states[0].result().log_loss
    assert abs(whole - exact) <= 4 * U * exact
    assert abs(split - exact) <= 4 * U * exact
    assert abs(split - whole) <= 1e-12 * exact


@pytest.mark.parametrize("kernel", ["numba", "numpy"])
def test_compensated_sums_meet_their_bound(kernel: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CROSSENT_KERNELS", kernel)
    rng = np.random.default_rng(12)
    values = 10.0 ** rng.uniform(-12, 12, (5000, 2))
    slot = rng.integers(0, 3, 5000)
    sums = _sums.Sums.zeros((3, 2))
    for part in np.array_split(np.arange(5000), 7):
        sums.scatter_add(slot[part], None, values[part])
    assert _sums.backend() == kernel
    got = sums.value()
    for s in range(3):
        for j in range(2):
            terms = values[slot == s, j]
            exact = math.fsum(terms.tolist())
            gamma = len(terms) * U / (1 - len(terms) * U)
            assert abs(got[s, j] - exact) <= U * exact + gamma**2 * exact


def test_labels_seen_in_different_batches_map_like_sklearn() -> None:
    # labels=None: the classes are known only at the end; each batch holds one class
    y_true, prob = _multiclass(900, 3, seed=13)
    states = [ev.LogLoss().update(y_true[y_true == c], prob[y_true == c]) for c in (2, 0, 1)]
    merged = states[0].merge(states[1]).merge(states[2]).result()
    assert merged.log_loss == pytest.approx(sklearn_metrics.log_loss(y_true, prob), rel=1e-13)
    assert merged.accuracy == pytest.approx(
        sklearn_metrics.accuracy_score(y_true, prob.argmax(axis=1)), rel=1e-15)


def test_merge_leaves_both_states_unchanged() -> None:
    a = ev.LogLoss().update([0, 1], [0.3, 0.6])
    b = ev.LogLoss().update([1], [0.9])
    merged = a.merge(b)
    assert (a.rows, b.rows, merged.rows) == (2, 1, 3)
    assert ev.LogLoss().merge(a).result() == a.result()


# --- errors ----------------------------------------------------------------------------


@pytest.mark.parametrize(("call", "message"), [
    (lambda: ev.LogLoss().update([0, 1], [0.5, 1.5]),
     r"^y_pred must hold probabilities in \[0, 1\], found 1.5 at row 1; if these are logits, "
     r"pass them as logits \(from_logits=True, --logit\)$"),
    (lambda: ev.LogLoss().update([0, 1], [0.5, np.nan]),
     r"^y_pred is NaN at row 1; drop or fill the missing predictions$"),
    (lambda: ev.LogLoss(labels=[0, 1]).update([0, 3], [0.5, 0.5]),
     r"^y_true contains 3, which is not among labels=\[0, 1\]; add it to labels or drop those "
     r"rows$"),
    (lambda: ev.LogLoss().update([0, 1], [0.5, 0.5], sample_weight=[1.0, -2.0]),
     r"^sample_weight must be finite and non-negative, found -2 at row 1; drop the row or give "
     r"it weight 0$"),
    (lambda: ev.LogLoss().update([0, 1, 2], [0.5, 0.5]),
     r"^y_true has 3 rows, but the predictions have 2$"),
    (lambda: ev.LogLoss().update([0, 1], [[0.5, 0.5], [0.5, 0.5]]).update([1], [[.2, .3, .5]]),
     r"^y_pred has 3 class columns, but earlier rows had 2; every batch must have the same "
     r"columns$"),
    (lambda: ev.LogLoss().update([0], [0.5], by=["a"]).update([1], [0.5]),
     r"^by was given for earlier rows; give it for every batch of a state or for none$"),
    (lambda: ev.LogLoss().update([1.0, np.nan], [0.5, 0.5]),
     r"^y_true is missing \(NaN\) at row 1; drop or fill those rows$"),
    (lambda: ev.LogLoss().update([[0, 1]], [0.5]),
     r"^y_true must be 1-D, one value per row, got shape \(1, 2\); for a one-hot matrix pass "
     r"its argmax$"),
    (lambda: ev.LogLoss().update([0, "a"], [0.5, 0.5], by=[1, None]),
     r"^by is missing \(None/NaN\) at row 1; drop or fill those rows$"),
    (lambda: ev.LogLoss().result(),
     r"^no rows were added: call update\(y_true, y_pred\) with some data$"),
    (lambda: ev.LogLoss().update([1, 1], [0.5, 0.2]).result(),
     r"^y_true contains only one label \(1\); pass every class the predictions stand for "
     r"through labels \(e.g. \[0, 1\]\)$"),
    (lambda: ev.LogLoss().update([0, 1, 2], [0.5, 0.2, 0.1]).result(),
     r"^y_pred has 2 class columns but y_true has 3 classes \[0, 1, 2\]; pass the classes of "
     r"the columns through labels$"),
    (lambda: ev.LogLoss().update([0, 1], [0.5, 0.2], sample_weight=[0, 0]).result(),
     r"^the sample weights sum to zero, so no mean exists; give some rows a weight > 0$"),
    (lambda: ev.LogLoss(labels=[0, 1]).merge(ev.LogLoss()),
     r"^cannot merge states with different labels"),
    (lambda: ev.LogLoss(from_logits=True).update([0, 1], [[np.inf, np.inf], [0.0, 1.0]]),
     r"^the predictions of row 0 \(array\(\[inf, inf\]\)\) give no distribution \(NaN\); logits "
     r"must not be \+inf among several columns$"),
])
def test_errors_name_the_argument_the_value_and_the_fix(call, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        call()


def test_import_crossent_imports_no_dataframe_library() -> None:
    code = ("import sys, crossent, crossent.evaluate; "
            "print(sorted(m for m in ('dask', 'distributed', 'pyarrow', 'pandas', 'numba') "
            "if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_the_numpy_fallback_gives_the_same_result(monkeypatch: pytest.MonkeyPatch) -> None:
    y_true, prob = _multiclass(3000, 3, seed=14)
    weight = np.random.default_rng(15).random(3000)
    weight[::7] = 0.0
    group = np.arange(3000) % 4
    results = {}
    for kernel in ("numba", "numpy"):
        monkeypatch.setenv("CROSSENT_KERNELS", kernel)
        results[kernel] = ev.LogLoss().update(y_true, prob, sample_weight=weight, by=group).result()
        assert _sums.backend() == kernel
    for name in ("log_loss", "accuracy", "prediction_entropy", "weight", "rows"):
        assert getattr(results["numpy"], name) == pytest.approx(
            getattr(results["numba"], name), rel=4 * U)
    for key, group_result in results["numba"].groups.items():
        assert results["numpy"].groups[key].log_loss == pytest.approx(group_result.log_loss,
                                                                      rel=4 * U)


def _edge_probabilities(rows: int, classes: int, dtype: type, seed: int) -> np.ndarray:
    """Probabilities with exact zeros and ones, values below the dtype's epsilon (the
    clipping's edges) and ties (0.5; uniform rows); one column (``classes == 1``) is the
    positive class's."""
    rng = np.random.default_rng(seed)
    if classes == 1:
        prob = rng.random(rows)
        prob[::11], prob[1::11], prob[2::11], prob[3::11] = 0.0, 1.0, 1e-20, 0.5
        return prob.astype(dtype)
    prob = rng.dirichlet(np.ones(classes) * 0.3, rows)
    prob[::13] = np.eye(classes)[rng.integers(0, classes, prob[::13].shape[0])]
    prob[1::13, 0] = 1e-20
    prob[2::13] = 1 / classes  # ties: the first largest column is predicted
    return prob.astype(dtype)


@pytest.mark.filterwarnings("ignore:The y_prob values do not sum to one")  # float32 rows
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(("classes", "layout"), [(1, "C"), (1, "one column"), (2, "C"), (3, "F"),
                                                 (10, "C"), (10, "F")])
def test_the_fused_kernel_gives_the_generic_terms(classes: int, dtype: type, layout: str,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    # the numba path adds probabilities in one fused kernel; the fallback computes
    # row_terms with the core's functions: every figure agrees to rounding
    prob = _edge_probabilities(4000, classes, dtype, seed=classes)
    prob = prob.reshape(-1, 1) if layout == "one column" else (
        np.asfortranarray(prob) if layout == "F" else prob)
    rng = np.random.default_rng(21)
    y_true = rng.integers(0, max(classes, 2), 4000)
    weight = rng.random(4000)
    weight[::5] = 0.0
    group = np.arange(4000) % 3
    results = {}
    for kernel in ("numba", "numpy"):
        monkeypatch.setenv("CROSSENT_KERNELS", kernel)
        state = ev.LogLoss()
        for start in range(0, 4000, 1500):  # several batches, as the file readers send them
            part = slice(start, start + 1500)
            state.update(y_true[part], prob[part], sample_weight=weight[part], by=group[part])
        results[kernel] = state.result()
        assert _sums.backend() == kernel
    for name in ("log_loss", "accuracy", "prediction_entropy", "normalized_entropy", "weight"):
        assert getattr(results["numba"], name) == pytest.approx(
            getattr(results["numpy"], name), rel=8 * U), name
    assert results["numba"].rows == results["numpy"].rows == 4000
    for key, group_result in results["numba"].groups.items():
        other = results["numpy"].groups[key]
        assert group_result.log_loss == pytest.approx(other.log_loss, rel=8 * U)
        assert group_result.prediction_entropy == pytest.approx(other.prediction_entropy, rel=8 * U)
        assert group_result.accuracy == pytest.approx(other.accuracy, rel=8 * U)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(("classes", "layout"), [(1, "C"), (5, "C"), (5, "F")])
def test_scratch_arrays_give_the_logs_of_fresh_ones(classes: int, dtype: type, layout: str) -> None:
    # the file readers take the temporaries from a Scratch, batch after batch: each batch's
    # logs are still log(clip(p, eps, 1 - eps)) in float64 (for one column, of [1 - p, p],
    # and log1p(-p)), bit for bit
    if not _sums.fused_probabilities():
        pytest.skip("the fused kernel needs numba")
    from crossent.evaluate import _rows

    prob = _edge_probabilities(3000, classes, dtype, seed=4)
    eps = np.finfo(dtype).eps
    scratch = _rows.Scratch()
    for start in range(0, 3000, 1000):  # three batches of one shape: the arrays come back
        part = prob[start:start + 1000]  # F: as the stacked columns of a file
        part = np.asfortranarray(part) if layout == "F" else part
        pooled = {id(array) for arrays in scratch._free.values() for array in arrays}
        logs = _rows.probability_logs(part, scratch)
        assert logs is not None
        columns = np.stack([1 - part, part], axis=1) if classes == 1 else part
        expected = np.log(np.clip(columns, eps, 1 - eps).astype(np.float64))
        assert np.array_equal(logs.log_clipped.view(np.uint64), expected.view(np.uint64))
        assert logs.log_clipped.flags.f_contiguous == (layout == "F")  # the columns' order
        if classes == 1:
            with np.errstate(divide="ignore"):
                negated = np.log1p(-part.astype(np.float64))
            assert np.array_equal(logs.log1p_negated.view(np.uint64), negated.view(np.uint64))
        if start:  # reused, not fresh
            assert {id(array) for array in logs.lent} <= pooled
        scratch.give(*logs.lent)


@pytest.mark.parametrize("labels", [[0, 1, 2, 3], [3, 1, 3], [5, 7, 7, 5, 6], [-2, 4, 4],
                                    [9]])
def test_integer_labels_are_encoded_as_np_unique_encodes_them(labels: list[int]) -> None:
    # small integer ranges are encoded without sorting: by their offsets when every value of
    # the range is present, else through a lookup; either way np.unique's codes
    from crossent.evaluate import _state

    for dtype in (np.int8, np.int64) if min(labels) < 0 else (np.int8, np.int64, np.uint16):
        keys = np.array(labels, dtype)
        values, index = _state._encode(keys, "y_true")
        unique, inverse = np.unique(keys, return_inverse=True)
        assert values.tolist() == unique.tolist() and values.dtype == keys.dtype
        assert index.tolist() == inverse.tolist()


@pytest.mark.parametrize("kernel", ["numba", "numpy"])
def test_the_normalisation_warning_follows_sklearn_near_its_threshold(
        kernel: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # np.isclose(row sum, 1, rtol=sqrt(eps)) in the input's dtype: rows just inside the
    # tolerance do not warn, rows just outside do, on both paths (as scikit-learn)
    monkeypatch.setenv("CROSSENT_KERNELS", kernel)
    tolerance = 1e-8 + math.sqrt(np.finfo(np.float32).eps)
    inside = np.array([[0.5, 0.5 + tolerance * 0.9]], np.float32)
    outside = np.array([[0.5, 0.5 + tolerance * 1.1]], np.float32)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ev.LogLoss().update([0], inside)
    with pytest.warns(UserWarning, match="do not sum to one"):
        ev.LogLoss().update([0], outside)
    with pytest.warns(UserWarning, match="do not sum to one"):  # a zero-weight row counts too
        ev.LogLoss().update([0, 1], np.vstack([inside, outside]), sample_weight=[1.0, 0.0])
