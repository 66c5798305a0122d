"""crossent.compare with the real frameworks: every reproduced value matches the real one."""

from __future__ import annotations

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
    """The README's `crossent compare` lines (see test_readme.py), with the real frameworks."""
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
        assert "(matches)" in result.output or '"real_status": "matches"' in result.output
        assert "MISMATCH" not in result.output and "no known reason" not in result.output


def test_tensorflow_loads_quietly_and_says_so():
    """In a fresh process (TensorFlow alone, as compare loads it): a line says it loads, and
    none of its C++ log lines (absl's preamble, oneDNN's notice) reaches stderr."""
    import subprocess
    import sys

    from crossent.compare import _NATIVE_LOG

    require("tensorflow")
    script = ("from crossent.compare import _import, _progress\n"
              "_progress.set(print)\n"
              "print(_import('tensorflow').constant([1.0]).numpy())\n")
    completed = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                               timeout=600, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": ""})
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.splitlines() == ["loading TensorFlow", "[1.]"]
    assert [line for line in completed.stderr.splitlines() if _NATIVE_LOG.match(line)] == []
    assert "oneDNN" not in completed.stderr and "absl" not in completed.stderr
