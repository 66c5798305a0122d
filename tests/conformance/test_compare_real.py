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


def test_readme_compare_lines_run_verbatim_and_tensorflow_stays_quiet():
    """The README's `crossent compare` lines (see test_readme.py), with the real frameworks, in
    one fresh process: each exits 0 with every reproduction matching; a line says what
    loads; none of TensorFlow's C++ log lines (absl's preamble, oneDNN's notice) reaches
    stderr."""
    import subprocess
    import sys

    from crossent.compare import _NATIVE_LOG

    from ..test_readme import COMMANDS

    for module in ("torch", "tensorflow", "keras", "optax", "sklearn"):
        require(module)
    lines = [words for words in COMMANDS if words[0] == "compare"]
    assert lines
    script = ("import json, sys\nfrom crossent.cli import app\n"
              "for words in json.loads(sys.argv[1]):\n"
              "    print('exit', app(words, standalone_mode=False) or 0, flush=True)\n")
    completed = subprocess.run([sys.executable, "-c", script, json.dumps(lines)],
                               capture_output=True, text=True, timeout=900,
                               env={**os.environ, "KERAS_BACKEND": "tensorflow"})
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.count("exit 0") == len(lines), completed.stdout
    assert "MISMATCH" not in completed.stdout and "no known reason" not in completed.stdout
    assert "loading Keras and its backend, TensorFlow" in completed.stderr
    assert [line for line in completed.stderr.splitlines() if _NATIVE_LOG.match(line)] == []
    assert "oneDNN" not in completed.stderr and "absl" not in completed.stderr
