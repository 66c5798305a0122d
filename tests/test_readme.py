"""The README runs as written, and the docs speak for the repository alone.

- Every ```python block of README.md runs verbatim, each in a fresh namespace (a reader
  copies one block at a time); a line ``expression  # 1.1862`` or ``# [0.8801, 1.4922]``
  or ``# nan`` states its value, which must be the expression's, to the digits written.
- Every ``crossent`` line of its ```bash blocks runs through the command (``compare``,
  which loads the real frameworks, runs in tests/conformance/test_compare_real.py).
- README, docs and comments name no file outside the repository and no issue number.
- docs/seeds.md names tests, examples and plots that exist.
"""

from __future__ import annotations

import ast
import glob
import math
import re
import shlex
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from crossent.cli import app
from crossent_testing import assert_printed, to_numpy

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def code_blocks(text: str, language: str) -> list[str]:
    """The fenced blocks of ``language`` in a Markdown text, in order."""
    return re.findall(rf"^```{language}\n(.*?)^```", text, flags=re.S | re.M)


PYTHON_BLOCKS = code_blocks(README, "python")
_STATED = re.compile(r"^(?P<code>.*?\S)\s+#\s*(?P<value>array\(.*?\)|\[[-\d., e]+\]|-?\d[\d.e-]*|nan)"
                     r"(?=[:,\s]|$)")


def _statements(block: str) -> list[tuple[str, str | None]]:
    """(source, the value its comment states or None) for each top-level statement."""
    tree = ast.parse(block)
    lines = block.splitlines()
    result = []
    for node in tree.body:
        source = "\n".join(lines[node.lineno - 1: node.end_lineno])
        last = lines[node.end_lineno - 1]
        stated = _STATED.match(last) if isinstance(node, ast.Expr) else None
        result.append((source, None if stated is None else stated.group("value")))
    return result


def _check_stated(value: object, stated: str) -> None:
    if stated == "nan":
        assert math.isnan(float(to_numpy(value))), value
        return
    numbers = re.findall(r"-?\d+\.?\d*(?:e-?\d+)?", stated)
    actual = to_numpy(value).reshape(-1)
    assert actual.size == len(numbers), (value, stated)
    assert_printed(actual, numbers)


def test_the_readme_has_code() -> None:
    assert len(PYTHON_BLOCKS) >= 3 and code_blocks(README, "bash")


def _run_block(block: str, label: str) -> tuple[int, int]:
    """Run a block statement by statement in a fresh namespace, checking the stated values;
    returns (values stated, statements that assert something)."""
    if "torch" in block:
        pytest.importorskip("torch")
    namespace: dict = {}
    stated_values = asserting = 0
    for source, stated in _statements(block):
        if stated is None:
            exec(compile(source, label, "exec"), namespace)
            asserting += "assert" in source  # assert, torch.testing.assert_close, ...
            continue
        value = eval(compile(source, label, "eval"), namespace)
        _check_stated(value, stated)
        stated_values += 1
    return stated_values, asserting


@pytest.mark.parametrize("number", range(len(PYTHON_BLOCKS)))
def test_python_block_runs_verbatim(number: int, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    checked, _ = _run_block(PYTHON_BLOCKS[number], f"README block {number}")
    assert checked or number == len(PYTHON_BLOCKS) - 1, "a block states no value"


# docs pages whose ```python blocks run verbatim too; each block states a value or asserts
RUN_DOCS = ["docs/linear_cross_entropy.md"]
DOC_BLOCKS = [
    (doc, number, block)
    for doc in RUN_DOCS
    for number, block in enumerate(code_blocks((ROOT / doc).read_text(encoding="utf-8"), "python"))
]


@pytest.mark.parametrize(("doc", "number", "block"), DOC_BLOCKS,
                         ids=[f"{doc}-{number}" for doc, number, _ in DOC_BLOCKS])
def test_docs_python_block_runs_verbatim(doc: str, number: int, block: str, tmp_path: Path,
                                         monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert sum(_run_block(block, f"{doc} block {number}")), f"{doc} block {number} checks nothing"


def test_the_stated_values_are_read() -> None:
    """The comment parser itself: values are recognised, prose is not."""
    def stated(block: str) -> list[str | None]:
        return [value for _, value in _statements(block)]

    assert stated("f(x)  # array([0.8801, 1.4922])") == ["array([0.8801, 1.4922])"]
    assert stated("g(x)  # 0.6931: in nats\nh(x)  # the same\ny = 2  # 2") == ["0.6931", None,
                                                                               None]
    assert stated("k(x)  # nan: all ignored\nm(x)  # [0.8, 1.5]") == ["nan", "[0.8, 1.5]"]
    with pytest.raises(AssertionError):
        _check_stated(np.array([0.88, 1.49]), "[0.8801, 1.4922]")


def _crossent_lines() -> list[list[str]]:
    lines = []
    for block in code_blocks(README, "bash"):
        for line in block.splitlines():
            words = shlex.split(line, comments=True)
            if words[:1] == ["crossent"]:
                lines.append(words[1:])
    return lines


COMMANDS = _crossent_lines()


@pytest.mark.parametrize("words", [w for w in COMMANDS if w[0] != "compare"],
                         ids=lambda words: " ".join(words[:3]))
def test_crossent_line_runs(words: list[str], tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    if words[0] == "evaluate":  # the files the README's evaluate lines name
        _write_scores(tmp_path)
        # the shell expands the README's globs before crossent sees them
        words = [match for word in words for match in (sorted(glob.glob(word)) or [word])]
    result = CliRunner().invoke(app, words)
    assert result.exit_code == 0, result.output
    assert result.output.strip()


def _write_scores(folder: Path) -> None:
    """Small Parquet files with the README's column names (clicks, their scores, countries)."""
    pd = pytest.importorskip("pandas")
    rng = np.random.default_rng(0)
    (folder / "scores").mkdir()
    for part in range(2):
        score = rng.normal(size=50)
        frame = pd.DataFrame({"click": (rng.random(50) < 1 / (1 + np.exp(-score))).astype(int),
                              "score": score, "p_click": 1 / (1 + np.exp(-score)),
                              "country": rng.choice(["fr", "cn"], 50)})
        frame.to_parquet(folder / "scores" / f"part-{part}.parquet")
        if part == 0:
            frame.to_parquet(folder / "big.parquet")


def test_every_command_line_is_tested() -> None:
    assert {words[0] for words in COMMANDS} >= {"explain", "plot", "compare"}


# --- the repository speaks for itself ----------------------------------------------------

_TEXT_FILES = [
    path for pattern in ("*.md", "docs/*.md", "src/**/*.py", "tests/**/*.py", "benchmarks/*.py",
                         "examples/*.py", ".ci/*", "Makefile", "pyproject.toml")
    for path in ROOT.glob(pattern) if path.is_file() and ".venv" not in path.parts
]
_OUTSIDE = re.compile(r"\.\./shared|/work/|shared/seeds|\bDESIGN\b")
_ISSUE = re.compile(r"\bissues? ?#?\d+|\bthe issue'?s?\b", re.I)


def test_no_reference_outside_the_repository() -> None:
    this = Path(__file__).resolve()
    found = [f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
             for path in _TEXT_FILES if path.resolve() != this
             for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
             if _OUTSIDE.search(line) or _ISSUE.search(line)]
    assert found == []


def test_docs_seeds_names_what_exists() -> None:
    from crossent import plots
    from crossent.explain import examples

    text = (ROOT / "docs" / "seeds.md").read_text(encoding="utf-8")
    tests = "\n".join(path.read_text(encoding="utf-8") for path in ROOT.glob("tests/test_*.py"))
    named_tests = set(re.findall(r"`(test_\w+)`", text))
    assert len(named_tests) >= 20
    assert {name for name in named_tests if f"def {name}(" not in tests} == set()
    named_examples = set(re.findall(r"`(seed00\d-[\w-]+)`", text))
    assert named_examples <= set(examples.names())
    assert len(named_examples) >= 15
    named_plots = set(re.findall(r"`crossent plot\s+([\w-]+)`", text.replace("\n", " ")))
    assert named_plots and named_plots <= set(plots.PLOTS)
    for seed in range(5):
        assert f"## Seed {seed:03d}" in text
