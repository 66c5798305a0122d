"""crossent.advise: each rule fires on an input that has the mistake and not on one without."""

from __future__ import annotations

import numpy as np
import pytest

import crossent as ce
from crossent.advise import IMBALANCE_RATIO, Advice

LOGITS = [[2.0, -1.0, 0.3], [0.1, 1.5, -0.4], [-0.7, 0.2, 2.2]]  # logits: not rows of probabilities
BALANCED = [0, 1, 2]

# rule code -> (mistake: args, kwargs), (correct: args, kwargs)
RULES = {
    "probabilities-as-logits": (
        (([[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.2, 0.2, 0.6]], BALANCED), {}),
        ((LOGITS, BALANCED), {}),
    ),
    "logits-as-probabilities": (
        (([2.3, -0.9, 0.4], [1.0, 0.0, 1.0]), {"loss": "binary_cross_entropy"}),
        (([0.9, 0.1, 0.6], [1.0, 0.0, 1.0]), {"loss": "binary_cross_entropy"}),
    ),
    "single-output-categorical": (
        (([[2.0], [-1.0], [0.5]], [0, 0, 0]), {}),
        (([[2.0, 0.0], [-1.0, 0.0], [0.5, 0.0]], [0, 1, 0]), {}),
    ),
    "multi-hot-targets": (
        ((LOGITS, [[1.0, 1.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]), {}),
        ((LOGITS, [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]), {}),
    ),
    "binary-target-range": (
        (([0.3, -1.2, 2.0], [1.0, 0.0, 2.0]), {"loss": "binary_cross_entropy_with_logits"}),
        (([0.3, -1.2, 2.0], [1.0, 0.0, 0.9]), {"loss": "binary_cross_entropy_with_logits"}),
    ),
    "soft-targets-not-normalised": (
        ((LOGITS, [[0.5, 0.6, 0.0], [0.2, 0.3, 0.5], [0.1, 0.1, 0.8]]), {}),
        ((LOGITS, [[0.4, 0.6, 0.0], [0.2, 0.3, 0.5], [0.1, 0.1, 0.8]]), {}),
    ),
    "class-imbalance": (
        (([[1.0, -1.0]] * 22, [0] * 20 + [1] * 2), {}),
        (([[1.0, -1.0]] * 22, [0] * 20 + [1] * 2), {"weight": [1.0, 10.0]}),
    ),
}


@pytest.mark.parametrize("code", RULES)
def test_rule_fires_on_the_mistake(code: str) -> None:
    (args, kwargs), _ = RULES[code]
    found = ce.advise(*args, **kwargs)
    assert code in [a.code for a in found]
    advice = next(a for a in found if a.code == code)
    assert isinstance(advice, Advice)
    assert advice.message and advice.reason and advice.fix
    assert code in str(advice) and "Fix:" in str(advice)


@pytest.mark.parametrize("code", RULES)
def test_rule_quiet_without_the_mistake(code: str) -> None:
    _, (args, kwargs) = RULES[code]
    assert code not in [a.code for a in ce.advise(*args, **kwargs)]


def test_clean_input_gives_no_advice() -> None:
    assert ce.advise(LOGITS, BALANCED) == []
    assert ce.advise([0.3, -1.2, 2.0], [1.0, 0.0, 1.0], loss="bce-with-logits") == []


def test_binary_variants() -> None:
    # sigmoid applied twice: probabilities to the logits loss
    codes = [a.code for a in ce.advise([0.2, 0.9, 0.6], [0.0, 1.0, 1.0],
                                       loss="binary_cross_entropy_with_logits")]
    assert codes == ["probabilities-as-logits"]
    # nll_loss given probabilities instead of log-probabilities
    codes = [a.code for a in ce.advise([[0.7, 0.2, 0.1]], [0], loss="nll_loss")]
    assert codes == ["logits-as-probabilities"]
    assert ce.advise(ce.log_softmax(np.array(LOGITS)), BALANCED, loss="nll_loss") == []
    # integer targets above 1 for BCE read as class indices
    advice = ce.advise([0.3, -1.2, 2.0], [0.0, 2.0, 1.0], loss="bce_with_logits")
    assert "class indices" in advice[0].reason
    # binary imbalance, and pos_weight silences it
    args = ([2.0] * 22, [1.0] * 2 + [0.0] * 20)
    assert [a.code for a in ce.advise(*args, loss="bce_with_logits")] == ["class-imbalance"]
    assert ce.advise(*args, loss="bce_with_logits", pos_weight=[10.0]) == []


def test_imbalance_threshold() -> None:
    below = [0] * int(IMBALANCE_RATIO - 1) + [1]
    assert ce.advise([[1.0, -1.0]] * len(below), below) == []


def test_class_axis_and_torch_input() -> None:
    torch = pytest.importorskip("torch")
    probs = torch.tensor([[0.7, 0.1], [0.2, 0.8], [0.1, 0.1]])  # classes along axis 0 here
    found = ce.advise(probs, torch.tensor([0, 1]), axis=0)
    assert [a.code for a in found] == ["probabilities-as-logits"]


def test_unknown_loss() -> None:
    with pytest.raises(ValueError, match="unknown loss .hinge.; expected one of cross_entropy"):
        ce.advise(LOGITS, BALANCED, loss="hinge")
