"""crossent.evaluate over files (Parquet, CSV, .npy) and `crossent evaluate`, via CliRunner.

Expected values: scikit-learn's ``log_loss`` on the same rows held in memory.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from crossent import evaluate as ev
from crossent.cli import app
from crossent.evaluate import _files

sklearn_metrics = pytest.importorskip("sklearn.metrics")
pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")
pd = pytest.importorskip("pandas")

ROWS = 3000
runner = CliRunner()


@pytest.fixture(scope="module")
def table() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    prob = rng.random(ROWS)
    classes = rng.dirichlet(np.ones(3), ROWS)
    return pd.DataFrame({
        "click": (rng.random(ROWS) < prob).astype(np.int64), "p": prob,
        "logit": np.log(prob) - np.log1p(-prob),
        "kind": rng.integers(0, 3, ROWS), "a": classes[:, 0], "b": classes[:, 1],
        "c": classes[:, 2], "w": rng.random(ROWS) * 2,
        "country": rng.choice(np.array(["de", "fr", "us"]), ROWS),
    })


@pytest.fixture(scope="module")
def files(table: pd.DataFrame, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("evaluate")
    paths = {kind: folder / f"scores.{kind}" for kind in ("parquet", "csv", "npy")}
    pq.write_table(pa.Table.from_pandas(table, preserve_index=False), paths["parquet"],
                   row_group_size=700)
    table.to_csv(paths["csv"], index=False)
    np.save(paths["npy"], table.drop(columns="country").to_records(index=False))
    return paths


@pytest.fixture(autouse=True)
def small_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    # many batches per file (and CSV blocks), as a big file would have
    monkeypatch.setattr(_files, "BATCH_VALUES", 1000)
    monkeypatch.setattr(_files, "CSV_BLOCK_BYTES", 1 << 14)


@pytest.mark.parametrize("kind", ["parquet", "csv", "npy"])
def test_each_format_equals_sklearn(kind: str, files: dict[str, Path], table: pd.DataFrame) -> None:
    result = ev.evaluate_files(files[kind], label="click", prob="p", weight="w")
    expected = sklearn_metrics.log_loss(table.click, table.p, sample_weight=table.w)
    assert result.log_loss == pytest.approx(expected, rel=1e-13)
    assert result.rows == ROWS
    logits = ev.evaluate_files(files[kind], label="click", logit="logit")
    assert logits.log_loss == pytest.approx(sklearn_metrics.log_loss(table.click, table.p), rel=1e-9)


def test_prob_cols_by_and_several_files(files: dict[str, Path], table: pd.DataFrame) -> None:
    result = ev.evaluate_files([files["parquet"], files["csv"]], label="kind",
                               prob_cols="a,b,c", by="country")
    doubled = pd.concat([table, table])
    assert result.rows == 2 * ROWS
    assert result.log_loss == pytest.approx(
        sklearn_metrics.log_loss(doubled.kind, doubled[["a", "b", "c"]]), rel=1e-13)
    for country, part in result.groups.items():
        rows = table[table.country == country]
        assert part.log_loss == pytest.approx(sklearn_metrics.log_loss(
            rows.kind, rows[["a", "b", "c"]], labels=[0, 1, 2]), rel=1e-13)


def test_a_folder_is_its_files(files: dict[str, Path], table: pd.DataFrame) -> None:
    result = ev.evaluate_files(files["npy"].parent, label="click", prob="p")
    assert result.rows == 3 * ROWS  # scores.csv, scores.npy, scores.parquet
    assert result.log_loss == pytest.approx(sklearn_metrics.log_loss(table.click, table.p),
                                            rel=1e-13)


def test_two_dimensional_npy_columns_are_numbered(tmp_path: Path) -> None:
    data = np.array([[1, 0.9], [0, 0.2], [1, 0.6], [0, 0.4]])
    np.save(tmp_path / "plain.npy", data)
    result = ev.evaluate_files(tmp_path / "plain.npy", label="0", prob="1")
    assert result.log_loss == pytest.approx(sklearn_metrics.log_loss(data[:, 0], data[:, 1]))


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


@pytest.mark.parametrize(("make", "options", "message"), [
    (lambda d: d / "none.parquet", {}, r"^PATH '.*none.parquet' does not exist; give a Parquet, "
     r"CSV or .npy file$"),
    (lambda d: _write(d / "x.txt", "y,p\n"), {}, r"^PATH '.*x.txt' has the suffix '.txt'; give a "
     r".parquet, .csv or .npy file$"),
    (lambda d: _write(d / "e.csv", ""), {}, r"^.*e.csv is empty \(0 bytes\); a CSV file needs a "
     r"header line naming the columns, then rows$"),
    (lambda d: _write(d / "h.csv", "1,0.5\n0,0.2\n"), {}, r"^label column 'click' is not in "
     r".*h.csv; its columns are '1', '0.5' \(the first line '1,0.5' looks like data: the file "
     r"needs a header line naming the columns\)$"),
    (lambda d: _write(d / "d.csv", "click,p,p\n1,0.5,0.5\n"), {}, r"^.*d.csv: the header names "
     r"the column 'p' twice; give each column its own name$"),
    (lambda d: _write(d / "v.csv", "click,p\n1,0.5\n0,high\n"), {}, r"^.*v.csv: In CSV column #1:"
     r" CSV conversion error to double: invalid value 'high' \(the prob column 'p'\); it must "
     r"hold one type of value in every row: numbers for predictions and weights, no blanks$"),
    (lambda d: _write(d / "r.csv", "click,p\n1,0.5\n0,0.2,7\n"), {}, r"^.*r.csv: CSV parse error: "
     r"Expected 2 columns, got 3: 0,0.2,7; every row must have the header's columns$"),
    (lambda d: _write(d / "n.csv", "click,p\n1,0.5\n0,\n"), {}, r"^prob column 'p' of .*n.csv is "
     r"missing \(null\) at row 1; drop or fill those rows$"),
    (lambda d: _write(d / "o.csv", "click,p\n1,0.5\n0,1.25\n"), {}, r"^.*o.csv: prob 'p' must hold "
     r"probabilities in \[0, 1\], found 1.25 at row 1; if these are logits, pass them as logits"),
    (lambda d: _write(d / "l.csv", "click,p\n1,0.5\n2,0.5\n"), {"labels": "0,1"}, r"^.*l.csv: "
     r"label column 'click' contains 2, which is not among labels=\[0, 1\]; add it to labels "
     r"or drop those rows$"),
    (lambda d: _write(d / "one.csv", "click,p\n1,0.5\n1,0.2\n"), {}, r"^label column 'click' "
     r"contains only one label \(1\); pass every class the predictions stand for through labels"),
    (lambda d: _write(d / "hdr.csv", "click,p\n"), {}, r"^no rows were added"),
    (lambda d: d / "empty.npy" if (d / "empty.npy").write_bytes(b"") == 0 else None, {},
     r"^.*empty.npy is not a readable .npy file \(the file is empty\)"),
    (lambda d: d / "z.parquet" if (d / "z.parquet").write_bytes(b"") == 0 else None, {},
     r"^.*z.parquet is not a readable Parquet file \(the file is empty\)"),
])
def test_bad_files_name_the_option_the_value_and_the_fix(
    tmp_path: Path, make, options: dict, message: str
) -> None:
    path = make(tmp_path)
    with pytest.raises(ValueError, match=message):
        ev.evaluate_files(path, label="click", prob="p", **options)


def test_parquet_types_are_checked_before_reading(tmp_path: Path) -> None:
    pq.write_table(pa.table({"click": [0, 1], "p": ["low", "high"]}), tmp_path / "s.parquet")
    with pytest.raises(ValueError, match=r"^prob column 'p' of .*s.parquet has type string, not "
                                         r"numbers; give a numeric column$"):
        ev.evaluate_files(tmp_path / "s.parquet", label="click", prob="p")
    pq.write_table(pa.table({"click": [0, 1], "p": [0.1, 0.2]}).slice(0, 0), tmp_path / "0.parquet")
    with pytest.raises(ValueError, match=r"^no rows were added"):
        ev.evaluate_files(tmp_path / "0.parquet", label="click", prob="p")


def test_exactly_one_prediction_option(files: dict[str, Path]) -> None:
    with pytest.raises(ValueError, match=r"^give exactly one of prob, logit, prob_cols \(the "
                                         r"predictions\), got prob, logit$"):
        ev.evaluate_files(files["csv"], label="click", prob="p", logit="logit")


# --- the command -------------------------------------------------------------------------


def test_cli_json_equals_the_function(files: dict[str, Path], table: pd.DataFrame) -> None:
    result = runner.invoke(app, ["evaluate", str(files["parquet"]), "--label", "click",
                                 "--prob", "p", "--weight", "w", "--by", "country",
                                 "--format", "json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["log_loss"] == pytest.approx(
        sklearn_metrics.log_loss(table.click, table.p, sample_weight=table.w), rel=1e-13)
    assert [group["group"] for group in data["groups"]] == ["de", "fr", "us"]
    assert set(data) >= {"normalized_entropy", "prediction_entropy", "accuracy", "base_rate"}


def test_cli_text_is_a_table(files: dict[str, Path]) -> None:
    result = runner.invoke(app, ["evaluate", str(files["csv"]), "--label", "kind",
                                 "--prob-cols", "a,b,c", "--labels", "0,1,2"])
    assert result.exit_code == 0, result.output
    assert "log loss" in result.stdout and "classes [0, 1, 2]" in result.stdout


def test_cli_errors_are_one_line_naming_the_flag(files: dict[str, Path]) -> None:
    result = runner.invoke(app, ["evaluate", str(files["csv"]), "--label", "click",
                                 "--prob", "probability"])
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines() == [
        f"error: --prob column 'probability' is not in {files['csv']}; its columns are 'click', "
        "'p', 'logit', 'kind', 'a', 'b', 'c', 'w', 'country'"]
    result = runner.invoke(app, ["evaluate", str(files["csv"]), "--label", "click",
                                 "--prob-cols", "a"])
    assert result.stderr.strip() == ("error: --prob-cols needs one column per class, at least two "
                                     "(A,B,...), got ['a']; for one probability column use --prob")
    result = runner.invoke(app, ["evaluate", str(files["csv"]), "--label", "click", "--prob", "p",
                                 "--scheduler", "local:two"])
    assert result.stderr.strip() == ("error: --scheduler 'local:two' needs a number of workers, "
                                     "e.g. local:2")


@pytest.mark.parametrize("read_ahead", [0, 4])
@pytest.mark.parametrize("prediction", [{"prob": "p"}, {"prob_cols": ("a", "b", "c")}])
def test_reused_scratch_arrays_change_no_bit(files: dict[str, Path], read_ahead: int,
                                             prediction: dict[str, Any]) -> None:
    # update_from_pieces reuses the batches' temporaries (stacked columns, clipped columns,
    # logs) once each batch is added: the state is bitwise that of fresh arrays per batch
    label = "kind" if "prob_cols" in prediction else "click"
    columns = _files.Columns(label=label, weight="w", by="country", **prediction)
    pieces = [piece for source in _files.open_sources([files["parquet"]], columns)
              for piece in source.pieces()]
    fresh = ev.LogLoss()
    for piece in pieces:
        for batch, _ in _files.read_piece(piece, columns):
            columns.update(fresh, batch)  # no scratch: new arrays for every batch
    reused = _files.update_from_pieces(ev.LogLoss(), pieces, columns, read_ahead=read_ahead)
    assert fresh._totals.hi.tobytes() == reused._totals.hi.tobytes()
    assert fresh._totals.lo.tobytes() == reused._totals.lo.tobytes()
    assert fresh._hits.hi.tobytes() == reused._hits.hi.tobytes()
    assert fresh.result() == reused.result()


@pytest.mark.parametrize("prediction", [{"prob": "p"}, {"prob_cols": "a,b,c"}, {"logit": "logit"}])
def test_preparing_in_the_reading_thread_changes_no_bit(files: dict[str, Path],
                                                        prediction: dict[str, str]) -> None:
    # the streaming path prepares batches in a second thread; they are added in file order,
    # so the state is bitwise the one of a single thread
    label = "kind" if "prob_cols" in prediction else "click"  # three classes for a, b, c
    columns = _files.Columns(label=label, by="country", weight="w", **{
        name: tuple(value.split(",")) if name == "prob_cols" else value
        for name, value in prediction.items()})
    pieces = [piece for source in _files.open_sources([files["parquet"]], columns)
              for piece in source.pieces()]
    states = [_files.update_from_pieces(ev.LogLoss(from_logits="logit" in prediction), pieces,
                                        columns, read_ahead=depth) for depth in (0, 4)]
    assert states[0]._totals.hi.tobytes() == states[1]._totals.hi.tobytes()
    assert states[0]._totals.lo.tobytes() == states[1]._totals.lo.tobytes()
    assert states[0].result() == states[1].result()
