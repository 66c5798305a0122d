"""crossent.compare with the real frameworks: every reproduced value matches the real one."""

from __future__ import annotations

import json
import os

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


def test_readme_compare_lines_run_verbatim():
    """The README's `crossent compare` lines, with the real frameworks (see test_readme.py)."""
    from typer.testing import CliRunner

    from crossent.cli import app

    from ..test_readme import COMMANDS

    for module in ("torch", "tensorflow", "keras", "optax", "sklearn"):
        require(module)
    lines = [words for words in COMMANDS if words[0] == "compare"]
    assert lines
    for words in lines:
        result = CliRunner().invoke(app, words)
        assert result.exit_code == 0, result.output
        assert "MISMATCH" not in result.output and "no known reason" not in result.output


def test_the_command_says_what_loads_and_tensorflow_stays_quiet():
    """In a fresh process: a line per framework while it loads, and none of TensorFlow's
    C++ log lines (absl's preamble, oneDNN's notice) on stderr."""
    import subprocess
    import sys

    from crossent.compare import _NATIVE_LOG

    for module in ("torch", "tensorflow", "keras", "optax"):
        require(module)
    completed = subprocess.run(
        [sys.executable, "-m", "crossent", "compare", "ce", "--logits", "[[0.4, 0.3, 0.7]]",
         "--target", "[2]", "--format", "json"],
        capture_output=True, text=True, timeout=600, env={**os.environ, "KERAS_BACKEND": "tensorflow"},
    )
    assert completed.returncode == 0, completed.stderr
    assert "loading Keras and its backend, TensorFlow" in completed.stderr
    assert [line for line in completed.stderr.splitlines() if _NATIVE_LOG.match(line)] == []
    assert "oneDNN" not in completed.stderr and "absl" not in completed.stderr
    assert json.loads(completed.stdout)["rows"][0]["convention"] == "crossent (native)"
