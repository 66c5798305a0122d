"""crossent.compare with the real frameworks: every reproduced value matches the real one."""

from __future__ import annotations

import pytest

import crossent as ce

from ..test_compare import CASES
from .conftest import require


@pytest.mark.parametrize(("loss", "x", "target", "inputs", "smoothing"), CASES)
def test_real_frameworks_match_their_reproduction(loss, x, target, inputs, smoothing):
    for module in ("torch", "tensorflow", "keras", "optax", "sklearn"):
        require(module)
    result = ce.compare(loss, x, target, inputs=inputs, label_smoothing=smoothing, real=True)
    checked = 0
    for row in result.rows[1:]:
        if row.real is not None or row.real_status.startswith("raises"):
            if row.error is not None:  # both refuse the input
                assert row.real_status.startswith("raises"), row
            else:
                assert row.real_status == "matches", row
            checked += 1
        else:
            assert row.real_status.startswith("Keras runs on"), row
    assert checked >= 2
