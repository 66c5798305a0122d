"""The `crossent` command as a whole: one error style, checked choices, --out paths,
--version, -h, `python -m crossent`, importable functions that raise ValueError."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from crossent import __version__, cli
from crossent.cli import app

runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(app, list(args))


def test_version_help_and_python_m() -> None:
    assert invoke("--version").output == f"crossent {__version__}\n"
    for args in ((), ("-h",), ("--help",)):
        result = invoke(*args)
        assert result.exit_code == 0 and "explain" in result.output and "compare" in result.output
    for command in ("explain", "compare", "plot", "experiment", "report", "bench"):
        result = invoke(command, "-h")
        assert result.exit_code == 0 and "Usage: crossent " + command in result.output
    completed = subprocess.run([sys.executable, "-m", "crossent", "--version"],
                               capture_output=True, text=True, timeout=120, check=True)
    assert completed.stdout == f"crossent {__version__}\n"


LOGITS = ("--logits", "[[1.0, 2.0]]", "--target", "[0]")

# (arguments, the one line printed); every one exits with status 2
ERRORS = [
    (("nosuch",), "error: No such command 'nosuch'."),
    (("explain", "--nosuch"), "error: No such option: --nosuch"),
    (("explain", "ce", *LOGITS, "--format", "xml"),
     "error: Invalid value for '--format' / '-f': 'xml' is not one of 'text', 'json', "
     "'markdown', 'html'."),
    (("explain", "ce", *LOGITS, "--reduction", "avg"),
     "error: Invalid value for '--reduction' / '-r': 'avg' is not one of 'none', 'mean', 'sum'."),
    (("explain", "hinge", *LOGITS),
     "error: unknown computation 'hinge'; expected one of cross_entropy, nll_loss, "),
    (("explain", "ce", "--logits", "[[1.0, 2.0]]"), "error: cross_entropy needs target (--target)"),
    (("explain", "ce", "--logits", "[[1.0,", "--target", "[0]"),
     "error: --logits must be a JSON array such as '[[0.4, 0.3, 0.7]]'"),
    (("plot", "cross-entropy", "--format", "yaml"),
     "error: Invalid value for '--format' / '-f': 'yaml' is not one of 'text', 'json'."),
    (("plot", "cross-entropy"), "error: give a plot name and --out FILE.png|svg"),
    (("compare", "ce", *LOGITS, "--format", "csv"),
     "error: Invalid value for '--format' / '-f': 'csv' is not one of 'text', 'json'."),
    (("compare", "ce", *LOGITS, "--label-smoothing", "2", "--no-real"),
     "error: label_smoothing must be in [0, 1], got 2.0"),
    (("compare", "ce", "--logits", "[[1.0, 2.0]]", "--target", "[1.5]", "--no-real"),
     "error: target of shape (1,) holds class indices and must have an integer dtype, got "
     "float64; convert it (e.g. target.astype(int64)) or pass probabilities of shape (1, 2)"),
    (("compare", "ce", "--logits", "[[1.0, 2.0]]", "--target", "[5]", "--no-real"),
     "error: target contains class index 5, but logits have 2 classes along axis 1; expected "
     "indices in [0, 1] or ignore_index=-100"),
    (("compare", "hinge", *LOGITS, "--no-real"),
     "error: unknown loss 'hinge'; expected one of cross_entropy, binary_cross_entropy"),
    (("compare", "bce", "--probs", "[[1.5]]", "--target", "[[1.0]]", "--no-real"),
     "error: probs must contain probabilities in [0, 1], found 1.5"),
    (("experiment", "regression"),
     "error: Invalid value for 'scenario': 'regression' is not one of 'binary', 'multiclass', "
     "'multilabel', 'all'."),
    (("report", "--format", "xml"),
     "error: Invalid value for '--format' / '-f': 'xml' is not one of 'text', 'json'."),
    (("bench", "--format", "csv"),
     "error: Invalid value for '--format' / '-f': 'csv' is not one of 'table', 'json'."),
]


@pytest.mark.parametrize(("args", "line"), ERRORS, ids=[" ".join(a[:3]) for a, _ in ERRORS])
def test_every_error_is_one_line_with_status_2(args: tuple[str, ...], line: str) -> None:
    result = invoke(*args)
    assert result.exit_code == 2, result.output
    assert result.output.startswith(line), result.output
    assert len(result.output.splitlines()) == 1, result.output
    assert "Traceback" not in result.output and "╭" not in result.output


def _unwritable(tmp_path: Path) -> dict[str, Path]:
    """Paths no one can write (the tests may run as root): under a file, and a folder."""
    (tmp_path / "file").write_text("")
    return {"under a file": tmp_path / "file" / "out.png", "a folder": tmp_path}


@pytest.mark.parametrize("which", ["under a file", "a folder"])
@pytest.mark.parametrize("command", [
    ("explain", "ce", *LOGITS, "--out"),
    ("explain", "--list-examples", "--out"),
    ("plot", "cross-entropy", "--out"),
])
def test_an_out_file_that_cannot_be_written(command, which, tmp_path) -> None:
    path = _unwritable(tmp_path)[which]
    result = invoke(*command, str(path))
    assert result.exit_code == 2 and len(result.output.splitlines()) == 1, result.output
    expected = (f"error: --out {str(path)!r} cannot be written: {str(tmp_path / 'file')!r} is a "
                "file" if which == "under a file" else
                f"error: --out {str(path)!r} is a folder; give a file name")
    assert result.output.strip() == expected


@pytest.mark.parametrize("command", ["experiment", "report"])
def test_an_out_folder_that_cannot_be_written(command, tmp_path) -> None:
    (tmp_path / "file").write_text("")
    for path, reason in ((tmp_path / "file", "is a file; give a folder"),
                         (tmp_path / "file" / "sub", f"cannot be written: "
                                                     f"{str(tmp_path / 'file')!r} is a file")):
        result = invoke(command, "--out", str(path), "--epochs", "1", "--seeds", "1")
        assert result.exit_code == 2, result.output
        assert result.output == f"error: --out {str(path)!r} {reason}\n"


def test_a_writable_out_path_is_created(tmp_path) -> None:
    out = tmp_path / "new" / "folder" / "ce.json"
    result = invoke("explain", "ce", *LOGITS, "--format", "json", "--out", str(out))
    assert result.exit_code == 0 and result.output == f"wrote {out}\n"
    assert json.loads(out.read_text())["function"] == "crossent.cross_entropy"
    assert sorted(p.name for p in out.parent.iterdir()) == ["ce.json"]  # no scratch file left


def test_importable_functions_raise_value_errors_not_typer_errors(tmp_path) -> None:
    (tmp_path / "file").write_text("")
    with pytest.raises(ValueError, match="scenario must be one of"):
        cli.experiment("regression", out=tmp_path / "x", show_progress=False)
    with pytest.raises(ValueError, match=r"^out '.*file' is a file; give a folder$"):
        cli.experiment("binary", out=tmp_path / "file", show_progress=False)
    with pytest.raises(ValueError, match=r"^out '.*file' is a file; give a folder$"):
        cli.report(tmp_path / "file", results_path=tmp_path / "results.json")
    with pytest.raises(FileNotFoundError, match="results file .* does not exist"):
        cli.report(tmp_path / "report", results_path=tmp_path / "results.json")
    with pytest.raises(ValueError, match="unknown benchmark 'nope'"):
        cli.bench("nope")


def test_explain_line_and_inputs_show_every_option_that_changes_the_numbers() -> None:
    result = invoke("explain", "bce-with-logits", "--logits", "[[0.7, 1.2]]", "--target",
                    "[[0.0, 1.0]]", "--pos-weight", "[1, 3]", "--weight", "[2, 1]", "--no-color")
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert ("crossent.binary_cross_entropy_with_logits(logits, target, weight=weight, "
            "pos_weight=pos_weight, label_smoothing=0.0, reduction='mean')") in text
    assert "weight [2., 1.]" in text and "pos_weight [1., 3.]" in text
    markdown = invoke("explain", "ce", "--logits", "[[0.4, 0.3, 0.7]]", "--target", "[2]",
                      "--weight", "[1, 2, 3]", "-f", "markdown").output
    assert "`crossent.cross_entropy(logits, target, axis=-1, weight=weight," in markdown
    assert "weight = [1., 2., 3.]" in markdown


def test_explain_text_fits_80_columns() -> None:
    for args in (("ce", "--logits", "[[0.4, 0.3, 0.7], [1.2, 0.4, 0.6]]", "--target", "[2, 1]",
                  "--weight", "[1, 2, 3]", "--label-smoothing", "0.1"),
                 ("--example", "seed004-ce-numpy"), ("--example", "seed002-sigmoid-ce")):
        result = invoke("explain", *args, "--no-color")
        assert result.exit_code == 0, result.output
        assert max(len(line) for line in result.output.splitlines()) <= 80


def test_a_missing_optional_dependency_is_one_line(monkeypatch, tmp_path) -> None:
    import builtins

    monkeypatch.chdir(tmp_path)  # the default --out folder is created here
    real_import = builtins.__import__

    def no_torch(name, *args, **kwargs):
        if name == "torch" or name.startswith("torch."):
            raise ModuleNotFoundError("No module named 'torch'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_torch)
    monkeypatch.setattr(cli, "experiment", lambda *args, **kwargs: __import__("torch"))
    result = invoke("experiment", "binary", "--epochs", "1")
    assert result.exit_code == 2
    assert result.output == ("error: No module named 'torch'; the command needs it "
                             "(pip install 'crossent[all]')\n")


def test_bad_array_files_are_one_line_with_status_2(tmp_path) -> None:
    header = tmp_path / "logits.csv"
    header.write_text("a,b\n1.0,2.0\n")
    objects = tmp_path / "logits.npy"
    np.save(objects, np.array([[1.0, "a"]], dtype=object))
    cases = [
        (str(header), "error: --logits: the CSV '" + str(header) + "' must hold numbers only, "
                      "one row per line; its first line is 'a,b': remove a header row"),
        (str(objects), "error: --logits: '" + str(objects) + "' holds Python objects"),
        ("[[1.0, 2.0], [1.0]]", "error: --logits is ragged: its rows have different lengths "
                                "(2, 1)"),
    ]
    for logits, line in cases:
        result = invoke("explain", "ce", "--logits", logits, "--target", "[1]")
        assert result.exit_code == 2, result.output
        assert result.output.startswith(line), result.output
        assert len(result.output.splitlines()) == 1, result.output
