"""`crossent bench`: the registry of benchmark scripts, argument passing, and a smoke run.

No timings are asserted (benchmarks do not assert); these tests check that the
command finds and runs the scripts and says clearly when it cannot.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from crossent import cli

runner = CliRunner()


@pytest.fixture
def fake_benchmarks(tmp_path: Path, monkeypatch) -> Path:
    """A benchmarks/ folder whose scripts print the arguments they were given."""
    for script in cli.BENCHMARKS.values():
        (tmp_path / script).write_text(
            "import json, sys\nprint(json.dumps([__file__.rsplit('/', 1)[-1], sys.argv[1:]]))\n"
        )
    monkeypatch.setattr(cli, "benchmarks_folder", lambda: tmp_path)
    return tmp_path


def _ran(output: str) -> list:
    return json.loads(output.strip().splitlines()[-1])


def test_default_is_cross_entropy_and_writes_no_csv(fake_benchmarks):
    result = runner.invoke(cli.app, ["bench", "--quick"])
    assert result.exit_code == 0, result.output
    assert _ran(result.output) == ["bench_cross_entropy.py",
                                   ["--format", "table", "--quick", "--no-csv"]]


def test_linear_maps_to_its_script_and_passes_options(fake_benchmarks):
    result = runner.invoke(cli.app, ["bench", "linear", "--format", "json", "--repeats", "5"])
    assert result.exit_code == 0, result.output
    assert _ran(result.output) == [
        "bench_linear_cross_entropy.py", ["--format", "json", "--no-csv", "--repeats", "5"]
    ]


def test_csv_only_when_asked(fake_benchmarks):
    result = runner.invoke(cli.app, ["bench", "few-classes", "--csv"])
    assert result.exit_code == 0, result.output
    assert _ran(result.output) == ["bench_few_classes.py", ["--format", "table"]]


def test_script_options_without_what(fake_benchmarks):
    result = runner.invoke(cli.app, ["bench", "--repeats", "3"])
    assert _ran(result.output) == ["bench_cross_entropy.py", ["--format", "table", "--no-csv",
                                                              "--repeats", "3"]]


def test_bad_format_is_rejected_by_the_parser(fake_benchmarks):
    result = runner.invoke(cli.app, ["bench", "--format", "csv"])
    assert result.exit_code == 2
    assert result.output.startswith("error: Invalid value for '--format'")
    assert "'csv' is not one of 'table', 'json'" in result.output


def test_unknown_benchmark():
    result = runner.invoke(cli.app, ["bench", "softmax"])
    assert result.exit_code == 2
    assert result.output == ("error: unknown benchmark 'softmax'; choose one of cross-entropy, "
                             "few-classes, linear\n")


def test_missing_benchmarks_folder(monkeypatch):
    monkeypatch.setattr(cli, "benchmarks_folder", lambda: None)
    result = runner.invoke(cli.app, ["bench"])
    assert result.exit_code == 2
    assert "runs the scripts in the repository's benchmarks/ folder" in result.output
    assert "run it from a checkout of crossent" in result.output


def test_quick_smoke_run():
    """The real script, smallest useful run: crossent, NumPy and the copy, one repetition."""
    if not (Path(cli.__file__).resolve().parents[2] / "benchmarks").is_dir():
        pytest.skip("not a checkout")
    result = runner.invoke(cli.app, ["bench", "--quick", "--no-csv", "--format", "json",
                                     "--contenders", "crossent,numpy,copy", "--repeats", "1",
                                     "--no-startup"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    rows = {(r["contender"], r["mode"], r["V"]): r for r in report["rows"]}
    assert len(rows) == 3 * 2 * 2
    assert all(r["median_s"] > 0 for r in rows.values())
    assert rows["numpy", "forward+backward", 100]["vs_crossent"] > 0


def test_few_classes_smoke_run():
    """The kernel crossover script, through `crossent bench few-classes --quick`."""
    if not (Path(cli.__file__).resolve().parents[2] / "benchmarks").is_dir():
        pytest.skip("not a checkout")
    pytest.importorskip("numba")
    result = runner.invoke(cli.app, ["bench", "few-classes", "--quick", "--format", "json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert [(r["dtype"], r["classes"]) for r in rows] == [
        (dtype, c) for dtype in ("float32", "float64") for c in (2, 10, 32)]
    assert all(r[key] > 0 for r in rows for key in ("forward_rows_ms", "fwd_bwd_block_ms"))
    assert [r["block_kernel_used"] for r in rows] == [True, True, False] * 2


def _linear_bench_module():
    """benchmarks/bench_linear_cross_entropy.py, imported (it needs no torch to import)."""
    import importlib.util

    path = Path(cli.__file__).resolve().parents[2] / "benchmarks" / "bench_linear_cross_entropy.py"
    if not path.is_file():
        pytest.skip("not a checkout")
    spec = importlib.util.spec_from_file_location("_bench_linear_cross_entropy", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_linear_smoke_run():
    """The real script through `crossent bench linear`, tiny sizes: memory (first pass and
    steady, in subprocesses) and interleaved time, with half the tokens ignored."""
    _linear_bench_module()  # skips outside a checkout
    pytest.importorskip("torch")
    result = runner.invoke(cli.app, [
        "bench", "linear", "--format", "json", "--sizes", "64x16x200", "--ignored-fraction", "0.5",
        "--dtypes", "float32", "--contenders", "crossent,plain", "--timeout", "120",
    ])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert [(r["contender"], r["tokens"], r["hidden_size"], r["vocab"], r["ignored_fraction"],
             r["dtype"]) for r in rows] == [
        (name, 64, 16, 200, 0.5, "float32") for name in ("crossent", "plain")]
    for row in rows:
        assert "error" not in row and "time_error" not in row, row
        assert len(row["times_s"]) == 3 and row["median_s"] > 0
        assert row["grads_mb"] == (64 + 200) * 16 * 4 / 2**20
        for key in ("peak_above_inputs_mb", "steady_above_inputs_mb", "memory_vs_grads",
                    "steady_vs_grads", "time_vs_plain"):
            assert key in row, (key, row)
    assert rows[1]["time_vs_plain"] == 1.0
    assert "time_vs_cce" not in rows[0]  # cce did not run


def test_linear_missing_contender_is_skipped_with_a_note(monkeypatch, capsys):
    bench = _linear_bench_module()
    monkeypatch.setitem(bench.REQUIREMENTS, "cce", (("no_such_module_for_crossent",),
                                                    "pip install it"))
    assert bench.missing("crossent") is None
    rows = bench.run(contenders=("cce",), cases=((8, 4, 10, 0.0),), dtypes=("float32",))
    assert rows == []
    assert capsys.readouterr().err == (
        "note: skipping cce: no_such_module_for_crossent not installed; pip install it\n")


def test_linear_ignored_fraction_needs_sizes():
    bench = _linear_bench_module()
    with pytest.raises(SystemExit) as raised:
        bench.main(["--ignored-fraction", "0.5"])
    assert raised.value.code == 2
    with pytest.raises(SystemExit):
        bench.main(["--sizes", "8x4x10", "--ignored-fraction", "1.5"])
