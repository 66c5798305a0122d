"""Every number printed in the five seeds (docs/seeds.md) that crossent can produce.

Each test names the seed and the printed values, and compares to the digits
printed (``assert_printed``: rounds to the printed digits unless a comment says
why one unit of the last digit is allowed). Inputs are the seeds' own inputs.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import crossent as ce
from crossent import grad
from crossent import information as info
from crossent_testing import assert_float32_printed, assert_printed, requires_torch, to_numpy, torch

# ==================================================================================
# seed 000: information -> entropy -> cross-entropy, PyTorch's path, BCELoss
# ==================================================================================

SEED000_RAND = [[0.7576, 0.2793, 0.4031], [0.7347, 0.0293, 0.7999], [0.3971, 0.7544, 0.5695]]


@requires_torch
def test_seed000_cross_entropy_of_torch_rand_is_1_2005() -> None:
    # torch.manual_seed(1); torch.rand([3, 3]) reproduces the seed's input exactly
    torch.manual_seed(1)
    dummy_input = torch.rand([3, 3])
    assert_printed(dummy_input, [[f"{v:.4f}" for v in row] for row in SEED000_RAND])
    loss = ce.cross_entropy(dummy_input, torch.tensor([0, 1, 2]), axis=1)
    assert isinstance(loss, torch.Tensor)
    assert_printed(loss, "1.2005")


def test_seed000_cross_entropy_of_printed_input_is_1_2005() -> None:
    # from the 4-digit values the seed prints, in float64
    assert_printed(ce.cross_entropy(np.array(SEED000_RAND), np.array([0, 1, 2])), "1.2005")


def test_seed000_information_in_bits() -> None:
    # H(A) = -log2 0.1 ≈ 3.32, H(B) = -log2 0.9 ≈ 0.152
    assert_printed(info.self_information([0.1, 0.9], base=2), ["3.32", "0.152"])


SEED000_PROBS = [[0.5, 0.2, 0.3], [0.8, 0.1, 0.1]]
SEED000_LOGITS = [[0.7467, -0.1696, 0.2359], [1.2666, -0.8129, -0.8129]]


def _seed000_logits_float32() -> np.ndarray:
    """The seed's own computation of the logits, in float32 as torch.FloatTensor does:
    model_output = log(Σ_k exp(p_k) · p)."""
    probs = np.array(SEED000_PROBS, dtype=np.float32)
    return np.log(np.sum(np.exp(probs), axis=1, keepdims=True) * probs)


def test_seed000_cross_entropy_of_two_predictions() -> None:
    # H(p, q1) = 0.6931, H(p, q2) = 0.2231 in probability space ...
    target = [[1.0, 0.0, 0.0], [1.0, 0.0, 0.0]]
    assert_printed(info.cross_entropy(target, SEED000_PROBS), ["0.6931", "0.2231"])
    # ... and CrossEntropyLoss(reduction='none') on the "reverse softmax" logits, computed
    # as the seed does (full float32 precision) ...
    loss = ce.cross_entropy(_seed000_logits_float32(), np.array([0, 0]), reduction="none")
    assert loss.dtype == np.float32
    assert_printed(loss, ["0.6931", "0.2231"])
    # ... and from the logits as printed (4 digits): rounding them moves the loss by up to
    # Σ_c |p_c - y_c| · 5e-5 <= 1e-4 (0.69315 for the first row), so within one unit
    loss = ce.cross_entropy(np.array(SEED000_LOGITS), np.array([0, 0]), reduction="none")
    assert_printed(loss, ["0.6931", "0.2231"], units=1)


def test_seed000_reverse_softmax() -> None:
    probs = np.array(SEED000_PROBS)
    # the seed's logits are log(Σ_k exp(p_k) · p): the row sums it prints are 4.2200, 4.4359
    logits = ce.softmax_inverse(probs)
    # softmax_inverse returns the centred logits; the seed's differ by a per-row constant
    seed_logits = np.array(SEED000_LOGITS)
    centred_seed = seed_logits - seed_logits.mean(axis=1, keepdims=True)
    # one unit: the seed's logits are rounded to 4 digits before centring
    assert_printed(logits, [[f"{v:.4f}" for v in row] for row in centred_seed], units=1)
    # softmax of the seed's logits gives back the probabilities it prints
    assert_printed(ce.softmax(seed_logits), [["0.5000", "0.2000", "0.3000"],
                                             ["0.8000", "0.1000", "0.1000"]])
    # log Σ exp(seed logits) = logits - log_softmax(logits) = log 4.2200, log 4.4359
    normaliser = np.exp(seed_logits - ce.log_softmax(seed_logits))
    assert_printed(normaliser[:, 0], ["4.2200", "4.4359"], units=1)  # from 4-digit logits


def test_seed000_log_softmax_and_nll() -> None:
    printed = [["-0.6931", "-1.6094", "-1.2040"], ["-0.2231", "-2.3026", "-2.3026"]]
    log_probs = ce.log_softmax(_seed000_logits_float32())
    assert_printed(log_probs, printed)
    assert_printed(np.log(ce.softmax(_seed000_logits_float32())), printed)
    assert_printed(ce.nll_loss(log_probs, np.array([0, 0]), reduction="none"),
                   ["0.6931", "0.2231"])
    # from the 4-digit printed logits: within one unit (see above)
    assert_printed(ce.log_softmax(np.array(SEED000_LOGITS)), printed, units=1)


def test_seed000_nll_loss_only_picks_and_negates() -> None:
    dummy_input = np.arange(0, 9).reshape(3, 3) / 10
    loss = ce.nll_loss(dummy_input, np.array([0, 1, 2]), reduction="none")
    assert_printed(loss, ["-0.0000", "-0.4000", "-0.8000"])


def test_seed000_bce_multi_label() -> None:
    loss = ce.binary_cross_entropy([[0.4, 0.3, 0.2]], [[1.0, 0.0, 1.0]], reduction="none")
    assert_printed(loss, [["0.9163", "0.3567", "1.6094"]])
    # H(p, q1) = 2.8824 is the sum of the three
    assert_printed(ce.binary_cross_entropy([[0.4, 0.3, 0.2]], [[1.0, 0.0, 1.0]],
                                           reduction="sum"), "2.8824")
    # H(p, q2) for q2 = [0.8, 0.1, 0.9]: -(log 0.8 + log 0.9 + log 0.9) = 0.43386...; the seed
    # prints 0.4338, i.e. truncated, not rounded (its formula also writes log(1 - 0.9) for
    # the middle term, a typo: the value it prints is log(1 - 0.1)). Within one unit.
    q2 = ce.binary_cross_entropy([[0.8, 0.1, 0.9]], [[1.0, 0.0, 1.0]], reduction="sum")
    assert_printed(q2, "0.4338", units=1)
    assert float(q2) == pytest.approx(-(math.log(0.8) + 2 * math.log(0.9)), rel=1e-14)


# ==================================================================================
# seed 001: softmax of [1, 2, 3], the worked 3-class network and its loss 0.17
# ==================================================================================


def test_seed001_softmax_of_1_2_3() -> None:
    z = np.array([1.0, 2.0, 3.0])
    probs = ce.softmax(z)
    assert_printed(probs, ["0.09", "0.24", "0.67"])
    # the exponentials and their sum, recovered from softmax's normaliser:
    # z - log_softmax(z) = log Σ exp z (a few ulps from math's sum of exps)
    exp_sum = np.exp(z - ce.log_softmax(z))
    assert exp_sum == pytest.approx(np.full(3, 30.19287485057736), rel=4e-16)
    assert_printed(exp_sum[0], "30.19")
    exps = probs * 30.19287485057736
    assert exps == pytest.approx([2.718281828459045, 7.38905609893065, 20.085536923187668],
                                 rel=4e-16)
    assert_printed(exps, ["2.72", "7.39", "20.09"])


def test_seed001_network_and_loss_0_17() -> None:
    weights = np.array([[0.1, 0.2, 0.3], [0.4, 0.5, 0.6], [0.7, 0.8, 0.9]])
    x = np.array([1.0, 2.0, 3.0])
    a = weights @ x  # the seed's a = W x = [1.4, 3.2, 5.0] (input to crossent, checked here)
    assert a == pytest.approx([1.4, 3.2, 5.0], rel=1e-15)
    p = ce.softmax(a)
    assert_printed(p, ["0.02", "0.14", "0.84"])
    # L = -log 0.84 = 0.17, computed by the seed from the *rounded* p
    assert_printed(info.cross_entropy([0.0, 0.0, 1.0], [0.02, 0.14, 0.84]), "0.17")
    assert_printed(ce.nll_loss(np.log([[0.02, 0.14, 0.84]]), np.array([2])), "0.17")
    # from the exact softmax the loss is 0.17615..., which rounds to 0.18, not 0.17:
    # the seed's 0.17 comes from rounding p first
    exact = ce.cross_entropy(a[None, :], np.array([2]))
    assert_printed(exact, "0.176")
    assert float(exact) == pytest.approx(-math.log(math.exp(5) / (math.exp(1.4) + math.exp(3.2)
                                                                  + math.exp(5))), rel=1e-14)


def test_seed001_back_propagation() -> None:
    # dL/dp_i = -y_i / p_i and dp/da = diag(p) - p p^T give dL/da = p - y (hand derivation)
    a = np.array([[1.4, 3.2, 5.0]])
    p = np.exp(a) / np.exp(a).sum()
    expected = p - np.array([[0.0, 0.0, 1.0]])
    np.testing.assert_allclose(grad.cross_entropy(a, np.array([2])), expected, rtol=1e-13,
                               atol=1e-16)


def test_seed001_kl_is_cross_entropy_minus_entropy() -> None:
    p, q = [0.0, 0.0, 1.0], [0.02, 0.14, 0.84]
    assert float(info.kl_divergence(p, q)) == pytest.approx(
        float(info.cross_entropy(p, q)) - float(info.entropy(p)), rel=1e-15)


# ==================================================================================
# seed 002: maximum likelihood, sigmoid CE with label smoothing, softmax CE (TF)
# ==================================================================================

SEED002_LOGITS = [[0.7, 1.2, 0.3], [0.4, 0.2, 0.9], [0.6, 0.3, 0.4]]
SEED002_LABELS = [1, 2, 0]
SEED002_SMOOTH = [["0.03333334", "0.93333334", "0.03333334"],
                  ["0.03333334", "0.03333334", "0.93333334"],
                  ["0.93333334", "0.03333334", "0.03333334"]]


def test_seed002_coin_maximum_likelihood() -> None:
    # 10 tosses: H H T H H T H T H T, six heads
    tosses = np.array([1, 1, 0, 1, 1, 0, 1, 0, 1, 0], dtype=np.float64)
    # log L(θ) = 6 ln θ + 4 ln(1 - θ) = -BCE summed over the tosses of a constant prediction θ;
    # d log L / dθ = 6/θ - 4/(1-θ) = 0 at θ̂ = 0.6, so the BCE gradient w.r.t. a constant
    # prediction (the sum of the per-toss gradients) vanishes there
    gradient = grad.binary_cross_entropy(np.full(10, 0.6), tosses, reduction="sum")
    assert float(np.sum(gradient)) == pytest.approx(0.0, abs=1e-13)
    for theta in (0.5, 0.59):
        assert np.sum(grad.binary_cross_entropy(np.full(10, theta), tosses)) < 0
    assert np.sum(grad.binary_cross_entropy(np.full(10, 0.61), tosses)) > 0
    grid = np.linspace(0.01, 0.99, 99)
    losses = [float(ce.binary_cross_entropy(np.full(10, theta), tosses)) for theta in grid]
    assert grid[int(np.argmin(losses))] == pytest.approx(0.6)
    # P(6 heads; θ = 0.6) = C(10, 6) 0.6^6 0.4^4 ≈ 0.2508 (the seed writes P(6; 0.5) by mistake)
    likelihood = math.exp(-float(ce.binary_cross_entropy(np.full(10, 0.6), tosses,
                                                         reduction="sum")))
    assert_printed(math.comb(10, 6) * likelihood, "0.2508")


def test_seed002_smoothed_labels() -> None:
    # label_smoothing(one_hot, 0.1) = 0.9 · one_hot + 0.1 / 3. crossent folds the same smoothing
    # into cross_entropy's target mass a; grad = softmax(z) - a (reduction 'none'), so
    # a = softmax(z) - grad. The seed's values are float32 (TF 1.x): compare after float32.
    logits = np.array(SEED002_LOGITS)
    labels = np.array(SEED002_LABELS)
    mass = ce.softmax(logits) - grad.cross_entropy(logits, labels, label_smoothing=0.1,
                                                    reduction="none")
    assert_printed(mass.astype(np.float32), SEED002_SMOOTH)
    # and integer labels with smoothing equal the explicitly smoothed probability targets
    smoothed = 0.9 * np.eye(3)[labels] + 0.1 / 3
    np.testing.assert_allclose(
        ce.cross_entropy(logits, labels, label_smoothing=0.1, reduction="none"),
        ce.cross_entropy(logits, smoothed, reduction="none"), rtol=1e-14)


def test_seed002_sigmoid_cross_entropy_matrix() -> None:
    # tf.nn.sigmoid_cross_entropy_with_logits(labels=smooth_labels, logits=logits), float32
    smoothed = 0.9 * np.eye(3)[SEED002_LABELS] + 0.1 / 3
    printed = [["1.0798527", "0.34328249", "0.84435523"],
               ["0.89968193", "0.7914722", "0.40115389"],
               ["0.47748795", "0.84435523", "0.89968193"]]
    logits64 = np.array(SEED002_LOGITS)
    # TF computed in float32 and printed 8 digits, more than float32 holds (e.g. 0.34328249
    # is 0.76 float32 ulps from the exact 0.343282467): the float64 result is within one
    # float32 ulp of every printed value, crossent's float32 result within two
    assert_float32_printed(
        ce.binary_cross_entropy_with_logits(logits64, smoothed, reduction="none"), printed,
        ulps=1)
    loss32 = ce.binary_cross_entropy_with_logits(logits64.astype(np.float32),
                                                 smoothed.astype(np.float32), reduction="none")
    assert loss32.dtype == np.float32
    assert_float32_printed(loss32, printed, ulps=2)
    # the text's worked element (2-3): x = 0.7 and the label as printed, y = 0.03333334
    # (not 0.1/3: with 0.1/3 the 9th digit differs), gives 1.07985271089 to all 11 digits
    assert_printed(ce.binary_cross_entropy_with_logits([0.7], [0.03333334], reduction="none")[0],
                   "1.07985271089")


def test_seed002_softmax_cross_entropy_vector() -> None:
    # tf.nn.softmax_cross_entropy_with_logits(labels=one_hot, logits=logits) -> printed float32
    printed = ["0.69967604", "0.74342006", "0.93983102"]
    logits = np.array(SEED002_LOGITS)
    # float64 lands within one float32 ulp of TF's float32 results (see the matrix above)
    assert_float32_printed(ce.cross_entropy(logits, np.array(SEED002_LABELS), reduction="none"),
                           printed, ulps=1)
    one_hot = np.eye(3)[SEED002_LABELS]
    # in float32, as TF computed it, crossent gives exactly TF's float32 values
    loss32 = ce.cross_entropy(logits.astype(np.float32), one_hot.astype(np.float32),
                              reduction="none")
    assert np.array_equal(loss32, np.array(printed, dtype=np.float32))


def test_seed002_worked_softmax_row() -> None:
    # (2-5): softmax of the first row is [0.301, 0.497, 0.202] (the text's 0.479 is a typo),
    # and the loss from those rounded values is -log 0.497 = 0.699165252886
    assert_printed(ce.softmax(np.array(SEED002_LOGITS[0])), ["0.301", "0.497", "0.202"])
    assert_printed(info.cross_entropy([0.0, 1.0, 0.0], [0.301, 0.497, 0.202]), "0.699165252886")


# ==================================================================================
# seed 003: NLLLoss, CrossEntropyLoss = log_softmax + nll_loss, BCELoss
# ==================================================================================


def test_seed003_nll_loss() -> None:
    loss = ce.nll_loss(np.array([[0.1, 0.3, 0.5], [0.2, 0.4, 0.6]]), np.array([2, 1]),
                       reduction="none")
    assert_printed(loss, ["-0.5", "-0.4"])


def test_seed003_cross_entropy_and_log_softmax() -> None:
    x = np.array([[0.4, 0.3, 0.7], [1.2, 0.4, 0.6]])
    y = np.array([2, 1])
    assert_printed(ce.cross_entropy(x, y, reduction="none"), ["0.8801", "1.4922"])
    log_softmax_x = ce.log_softmax(x)
    assert_printed(log_softmax_x, [["-1.1801", "-1.2801", "-0.8801"],
                                   ["-0.6922", "-1.4922", "-1.2922"]])
    assert_printed(ce.nll_loss(log_softmax_x, y, reduction="none"), ["0.8801", "1.4922"])
    # PyTorch's layout: dim=1 is the class axis; the same numbers through axis=1
    assert_printed(ce.log_softmax(x.T, axis=0).T, [["-1.1801", "-1.2801", "-0.8801"],
                                                   ["-0.6922", "-1.4922", "-1.2922"]])


def test_seed003_bce() -> None:
    loss = ce.binary_cross_entropy(np.array([[0.3], [0.9]]), np.array([[1.0], [0.0]]),
                                   reduction="none")
    assert_printed(loss, [["1.2040"], ["2.3026"]])


SEED003_X = [[0.9992, -0.0551, -0.7823, 2.4850, -0.5739],
             [-1.1502, -1.8042, -0.6534, 0.5632, -0.9339]]
SEED003_SIGMOID = [["0.7309", "0.4862", "0.3138", "0.9231", "0.3603"],
                   ["0.2404", "0.1413", "0.3422", "0.6372", "0.2821"]]
SEED003_Y = [[0, 1, 1, 0, 0], [1, 1, 0, 0, 1]]
SEED003_BCE = [["1.3127", "0.7211", "1.1589", "2.5650", "0.4468"],
               ["1.4253", "1.9566", "0.4189", "1.0139", "1.2654"]]


def test_seed003_multi_label_sigmoid_and_bce() -> None:
    # the seed draws x = torch.randn(2, 5) and prints it to 4 digits. From those printed
    # logits sigmoid and BCE agree to within one unit of the 4th decimal (the rounding
    # of x moves them by up to 0.25·5e-5 and |σ - y|·5e-5 respectively)
    x = np.array(SEED003_X)
    y = np.array(SEED003_Y, dtype=np.float64)
    probs = ce.sigmoid(x)
    assert_printed(probs, SEED003_SIGMOID, units=1)
    assert_printed(ce.binary_cross_entropy(probs, y, reduction="none"), SEED003_BCE, units=1)
    assert_printed(ce.binary_cross_entropy_with_logits(x, y, reduction="none"), SEED003_BCE,
                   units=1)
    # from the printed 4-digit probabilities, BCE moves by up to 5e-5 / min(p, 1-p)
    from_printed = ce.binary_cross_entropy(np.array(SEED003_SIGMOID, dtype=float), y,
                                           reduction="none")
    p = np.array(SEED003_SIGMOID, dtype=float)
    bound = 5e-5 / np.where(y == 1, p, 1 - p) + 5e-5
    assert np.all(np.abs(from_printed - np.array(SEED003_BCE, dtype=float)) <= bound)


# ==================================================================================
# seed 004: Keras CE vs BCE, NumPy vs TF printed values
# ==================================================================================

SEED004_Y = [[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 0], [0, 1, 0]]
SEED004_LOGITS = [[12, 3, 2], [3, 10, 1], [1, 2, 5], [4, 6.5, 1.2], [3, 6, 1]]
SEED004_BCE1 = [
    ["6.14419348e-06", "3.04858735e+00", "2.12692801e+00"],
    ["3.04858735e+00", "4.53988992e-05", "1.31326169e+00"],
    ["1.31326169e+00", "2.12692801e+00", "6.71534849e-03"],
    ["1.81499279e-02", "1.50231016e-03", "1.46328247e+00"],
    ["3.04858735e+00", "2.47568514e-03", "1.31326169e+00"],
]
SEED004_SIGMOID = [
    ["0.99999386", "0.95257413", "0.88079708"],
    ["0.95257413", "0.9999546", "0.73105858"],
    ["0.73105858", "0.88079708", "0.99330715"],
    ["0.98201379", "0.99849882", "0.76852478"],
    ["0.95257413", "0.99752738", "0.73105858"],
]
SEED004_SOFTMAX = [
    ["9.99831219e-01", "1.23388975e-04", "4.53922671e-05"],
    ["9.10938878e-04", "9.98965779e-01", "1.23282171e-04"],
    ["1.71478255e-02", "4.66126226e-02", "9.36239552e-01"],
    ["7.55098575e-02", "9.19898383e-01", "4.59175917e-03"],
    ["4.71234165e-02", "9.46499123e-01", "6.37746092e-03"],
]
SEED004_CE1 = ["1.68795487e-04", "1.03475622e-03", "6.58839038e-02", "2.66698414e+00",
               "5.49852354e-02"]


def test_seed004_bce_matrix_and_sigmoid() -> None:
    logits = np.array(SEED004_LOGITS)
    y = np.array(SEED004_Y, dtype=np.float64)
    assert_printed(ce.sigmoid(logits), SEED004_SIGMOID)
    assert_printed(ce.binary_cross_entropy_with_logits(logits, y, reduction="none"),
                   SEED004_BCE1)
    assert_printed(ce.binary_cross_entropy(ce.sigmoid(logits), y, reduction="none"),
                   SEED004_BCE1)
    # the integer y of the seed is accepted as a target
    assert_printed(ce.binary_cross_entropy_with_logits(logits, np.array(SEED004_Y),
                                                       reduction="none"), SEED004_BCE1)


def test_seed004_softmax_and_ce_vector() -> None:
    logits = np.array(SEED004_LOGITS)
    # row 4 has two ones (y = [1, 1, 0]): a probability target with mass 2, as in the seed
    y = np.array(SEED004_Y, dtype=np.float64)
    assert_printed(ce.softmax(logits), SEED004_SOFTMAX)
    assert_printed(ce.cross_entropy(logits, y, reduction="none"), SEED004_CE1)


def test_seed004_means() -> None:
    # final_BCE = np.mean(BCE1), final_CE = np.mean(CE1), both float64. The seed uses the
    # naive formula -y log σ - (1-y) log(1-σ); crossent's stable softplus form may differ in
    # the last 1-2 ulps, hence rel=1e-14 rather than equality.
    logits = np.array(SEED004_LOGITS)
    y = np.array(SEED004_Y, dtype=np.float64)
    bce = ce.binary_cross_entropy_with_logits(logits, y)
    assert float(bce) == pytest.approx(1.2554386947664657, rel=1e-14)
    assert float(ce.binary_cross_entropy(ce.sigmoid(logits), y)) == pytest.approx(
        1.2554386947664657, rel=1e-14)
    # probability targets: 'mean' divides by the 5 rows, as np.mean(CE1) does
    assert float(ce.cross_entropy(logits, y)) == pytest.approx(0.5578113653559053, rel=1e-14)


def test_seed004_accuracies_differ_for_bce_and_ce() -> None:
    # seed 004's appendix: Keras shows binary_accuracy next to BCE and categorical_accuracy
    # next to CE. On the seed's arrays (hand count): every sigmoid output is > 0.5, so each
    # of the 15 binary decisions is "1" and is right where y = 1: 6 of 15. The softmax argmax
    # is [0, 1, 2, 1, 1] against y's argmax [0, 1, 2, 0, 1] (ties go to the first): 4 of 5.
    y = np.array(SEED004_Y, dtype=np.float64)
    logits = np.array(SEED004_LOGITS)
    assert float(ce.metrics.binary_accuracy(y, ce.sigmoid(logits))) == pytest.approx(6 / 15)
    assert float(ce.metrics.categorical_accuracy(y, ce.softmax(logits))) == pytest.approx(4 / 5)
    assert to_numpy(ce.metrics.sparse_categorical_accuracy(np.array([0, 1, 2, 0, 1]),
                                                           ce.softmax(logits))) == 0.8
