"""crossent.experiments: loaders on tiny generated files, short real training runs, results.json.

Expected values come from the files the tests write (hand-chosen pixels and words),
from hand derivation (Keras's CE on one output is -y·log(1 - ε) with ε = 1e-7 in
float32, with a zero gradient; -y·log σ(z) has no gradient where y = 0), and from
the qualitative behaviour real training gives reliably, with margins measured over
seeds 0-2 (BCE on breast cancer: 0.95-0.99 test accuracy; asserted > 0.9).
"""

from __future__ import annotations

import gzip
import json
import os
import struct
from pathlib import Path

import numpy as np
import pytest

if os.environ.get("CI", "").lower() == "true":
    import sklearn  # noqa: F401  (CI=true: a missing dependency fails, it does not skip)
    import torch
else:
    torch = pytest.importorskip("torch")
    pytest.importorskip("sklearn")

from typer.testing import CliRunner

import crossent as ce
from crossent.cli import app
from crossent.experiments import datasets as ds
from crossent.experiments.results import SCHEMA_VERSION, ExperimentResults, Stat, SummaryRow
from crossent.experiments.runner import run_experiments, train_run
from crossent.experiments.setups import SETUPS, make_model
from crossent.experiments.verdicts import compare, judge, learning
from crossent.explain import examples

EPSILON32 = np.float32(1e-7)


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """One PyTorch thread, as run_experiments uses: far faster for these small models
    on a shared machine (idle OpenMP threads spin)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def setup(scenario: str, key: str):
    return next(s for s in SETUPS[scenario] if s.key == key)


# ==================================================================================
# Tiny files in the seeds' formats
# ==================================================================================


def write_idx(path: Path, array: np.ndarray, *, compress: bool = False) -> Path:
    """IDX as specified on yann.lecun.com: 0, 0, type 0x08 (uint8), ndim, big-endian dims."""
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(struct.pack(">I", d) for d in array.shape)
    raw = header + array.astype(np.uint8).tobytes()
    path.write_bytes(gzip.compress(raw) if compress else raw)
    return path


@pytest.fixture
def mnist_folder(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    folder = tmp_path / "mnist"
    folder.mkdir()
    write_idx(folder / "train-images-idx3-ubyte", rng.integers(0, 256, (12, 4, 4)))
    write_idx(folder / "train-labels-idx1-ubyte", np.arange(12) % 10)
    write_idx(folder / "t10k-images-idx3-ubyte.gz", rng.integers(0, 256, (5, 4, 4)), compress=True)
    write_idx(folder / "t10k-labels-idx1-ubyte.gz", np.array([3, 1, 4, 1, 5]), compress=True)
    return folder


def test_read_idx_reads_header_and_big_endian_data(tmp_path: Path) -> None:
    pixels = np.array([[[0, 255], [7, 128]]], dtype=np.uint8)
    path = write_idx(tmp_path / "x-idx3-ubyte", pixels)
    assert path.read_bytes()[:8] == bytes([0, 0, 8, 3, 0, 0, 0, 1])
    np.testing.assert_array_equal(ds.read_idx(path), pixels)
    gz = write_idx(tmp_path / "x-idx3-ubyte.gz", pixels, compress=True)
    np.testing.assert_array_equal(ds.read_idx(gz), pixels)


def test_load_mnist_keeps_the_given_split_and_scales_pixels(mnist_folder: Path) -> None:
    data = ds.load_mnist(mnist_folder)
    assert data.task == "multiclass" and data.num_classes == 10
    assert data.x_train.shape == (12, 16) and data.x_test.shape == (5, 16)
    raw = ds.read_idx(mnist_folder / "train-images-idx3-ubyte")
    np.testing.assert_allclose(data.x_train[3], raw[3].reshape(-1) / 255.0, rtol=1e-6)
    np.testing.assert_array_equal(data.y_test, [3, 1, 4, 1, 5])
    assert data.x_train.dtype == np.float32 and data.y_train.dtype == np.int64


@pytest.mark.parametrize("content, message", [
    (b"\x00\x00\x08", "is not an IDX file"),
    (b"\x12\x34\x08\x01\x00\x00\x00\x02\x01\x02", "is not an IDX file"),
    (b"\x00\x00\x07\x01\x00\x00\x00\x02\x01\x02", "is not an IDX file"),
    (b"\x00\x00\x08\x01\x00\x00\x00\x05\x01\x02", r"header says shape \(5,\).*truncated"),
    (b"\x00\x00\x08\x02\x00\x00", "truncated IDX header"),
    (b"\x1f\x8bnot really gzip", "looks gzipped but cannot be decompressed"),
])
def test_read_idx_rejects_malformed_files(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "bad-idx1-ubyte"
    path.write_bytes(content)
    with pytest.raises(ds.DataError, match=message):
        ds.read_idx(path)


def test_load_mnist_errors_name_the_problem(tmp_path: Path, mnist_folder: Path) -> None:
    with pytest.raises(ds.DataError, match="MNIST folder .*nowhere does not exist"):
        ds.load_mnist(tmp_path / "nowhere")
    (mnist_folder / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(ds.DataError, match="lacks t10k-labels-idx1-ubyte"):
        ds.load_mnist(mnist_folder)
    write_idx(mnist_folder / "t10k-labels-idx1-ubyte", np.array([1, 2]))
    with pytest.raises(ds.DataError, match="5 test images but 2 test labels"):
        ds.load_mnist(mnist_folder)
    write_idx(mnist_folder / "t10k-labels-idx1-ubyte", np.array([1, 2, 3, 4, 12]))
    with pytest.raises(ds.DataError, match=r"labels must be digits 0..9, found 1..12"):
        ds.load_mnist(mnist_folder)


def write_acl_imdb(root: Path) -> Path:
    reviews = {
        ("train", "pos"): ["A great great film.<br />Great!", "great fun"],
        ("train", "neg"): ["a bad film", "bad, bad acting"],
        ("test", "pos"): ["great"],
        ("test", "neg"): ["so bad it is great"],
    }
    for (split, label), texts in reviews.items():
        folder = root / "aclImdb" / split / label
        folder.mkdir(parents=True)
        for i, text in enumerate(texts):
            (folder / f"{i}_7.txt").write_text(text)
    return root / "aclImdb"


def test_load_imdb_from_acl_folder_as_bag_of_words(tmp_path: Path) -> None:
    root = write_acl_imdb(tmp_path)
    data = ds.load_imdb(root, num_words=3)
    # training word counts: great 5, bad 3, a 2, film 2, ... -> vocabulary great, bad, a
    np.testing.assert_array_equal(data.x_train, [[1, 0, 1], [1, 0, 0], [0, 1, 1], [0, 1, 0]])
    np.testing.assert_array_equal(data.y_train, [1, 1, 0, 0])
    np.testing.assert_array_equal(data.x_test, [[1, 0, 0], [1, 1, 0]])
    np.testing.assert_array_equal(data.y_test, [1, 0])
    # the folder holding aclImdb/ works too
    np.testing.assert_array_equal(ds.load_imdb(tmp_path, num_words=3).x_train, data.x_train)


def test_load_imdb_acl_errors(tmp_path: Path) -> None:
    root = write_acl_imdb(tmp_path)
    for file in (root / "test" / "neg").iterdir():
        file.unlink()
    with pytest.raises(ds.DataError, match=r"test/neg holds no \.txt reviews"):
        ds.load_imdb(root)
    (root / "test" / "neg").rmdir()
    with pytest.raises(ds.DataError, match="lacks test/neg/"):
        ds.load_imdb(root)
    with pytest.raises(ds.DataError, match="IMDB path .*missing does not exist"):
        ds.load_imdb(tmp_path / "missing")
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(ds.DataError, match="neither Keras's imdb.npz nor an aclImdb folder"):
        ds.load_imdb(tmp_path / "notes.txt")


def ragged(sequences: list[list[int]]) -> np.ndarray:
    array = np.empty(len(sequences), dtype=object)
    array[:] = sequences
    return array


def test_load_imdb_npz_uses_word_ranks_below_num_words(tmp_path: Path) -> None:
    path = tmp_path / "imdb.npz"
    np.savez(path, x_train=ragged([[1, 2, 2, 9], [3]]), y_train=np.array([1, 0]),
             x_test=ragged([[4, 0]]), y_test=np.array([1]))
    data = ds.load_imdb(path, num_words=5)
    np.testing.assert_array_equal(data.x_train, [[0, 1, 1, 0, 0], [0, 0, 0, 1, 0]])
    np.testing.assert_array_equal(data.x_test, [[1, 0, 0, 0, 1]])
    np.testing.assert_array_equal(data.y_train, [1, 0])


def test_load_imdb_npz_errors(tmp_path: Path) -> None:
    path = tmp_path / "imdb.npz"
    np.savez(path, x_train=ragged([[1], [2]]), y_train=np.array([1, 0]))
    with pytest.raises(ds.DataError, match="lacks x_test, y_test"):
        ds.load_imdb(path)
    np.savez(path, x_train=ragged([[1], [2]]), y_train=np.array([1, 0, 1]),
             x_test=ragged([[1]]), y_test=np.array([1]))
    with pytest.raises(ds.DataError, match="x_train has 2 reviews but y_train has 3 labels"):
        ds.load_imdb(path)
    np.savez(path, x_train=ragged([[1], [2]]), y_train=np.array([1, 2]),
             x_test=ragged([[1]]), y_test=np.array([1]))
    with pytest.raises(ds.DataError, match="y_train must hold 0/1 labels"):
        ds.load_imdb(path)
    np.savez(path, x_train=ragged([[1], None]), y_train=np.array([1, 0]),
             x_test=ragged([[1]]), y_test=np.array([1]))
    with pytest.raises(ds.DataError, match=r"x_train\[1\] must be a sequence of word indices"):
        ds.load_imdb(path)
    broken = tmp_path / "broken.npz"
    broken.write_bytes(b"PK not a zip")
    with pytest.raises(ds.DataError, match="not a readable .npz archive"):
        ds.load_imdb(broken)


def test_find_data(tmp_path: Path, mnist_folder: Path) -> None:
    write_acl_imdb(tmp_path)
    found = ds.find_data(tmp_path)
    assert found == {"imdb": tmp_path / "aclImdb", "mnist": mnist_folder}
    assert ds.find_data(mnist_folder) == {"mnist": mnist_folder}
    with pytest.raises(ds.DataError, match="--data path .*nothing does not exist"):
        ds.find_data(tmp_path / "nothing")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ds.DataError, match="holds none of the seed's data sets"):
        ds.find_data(empty)


# ==================================================================================
# Bundled data
# ==================================================================================


def test_breast_cancer_split_is_stratified_and_standardised() -> None:
    data = ds.breast_cancer(seed=1)
    assert data.x_train.shape == (455, 30) and data.x_test.shape == (114, 30)
    # 357 benign of 569: the stratified test split keeps the ratio
    assert abs(data.y_test.mean() - 357 / 569) < 0.01
    np.testing.assert_allclose(data.x_train.mean(axis=0), 0, atol=1e-5)
    np.testing.assert_allclose(data.x_train.std(axis=0), 1, atol=1e-4)


def test_digit_strips_hold_two_or_three_distinct_real_digits() -> None:
    source = ds.digits(seed=0)
    data = ds.digit_strips(seed=0, source=source, num_train=200, num_test=50)
    assert data.task == "multilabel" and data.x_train.shape == (200, 8 * 24)
    train_images = {row.tobytes() for row in source.x_train}
    test_images = {row.tobytes() for row in source.x_test}
    for strips, labels, pool in ((data.x_train, data.y_train, train_images),
                                 (data.x_test, data.y_test, test_images)):
        for strip, label in zip(strips, labels, strict=True):
            slots = [strip.reshape(8, 24)[:, 8 * k:8 * (k + 1)] for k in range(3)]
            filled = [s for s in slots if s.any()]
            assert len(filled) == label.sum() in (2, 3)
            for image in filled:  # every digit is a real image of its own split
                assert np.ascontiguousarray(image).reshape(-1).tobytes() in pool


# ==================================================================================
# The losses under test, by hand
# ==================================================================================


def test_keras_ce_on_one_sigmoid_output_is_constant_with_zero_gradient() -> None:
    torch.manual_seed(0)
    logits = torch.randn(6, 1, requires_grad=True)
    target = torch.tensor([[1.0], [0.0], [1.0], [1.0], [0.0], [0.0]])
    loss = setup("binary", "keras_ce").loss(logits, target)
    loss.backward()
    # p / p = 1, clipped to 1 - ε (float32): the loss is -y log(1 - ε) for any logits
    per_positive = -np.log(np.float32(1) - EPSILON32)
    assert float(loss.detach()) == pytest.approx(0.5 * per_positive, rel=1e-5)
    assert torch.equal(logits.grad, torch.zeros_like(logits))


def test_seed_ce_has_no_gradient_on_negative_samples() -> None:
    logits = torch.tensor([[0.3], [-1.2], [2.0]], requires_grad=True)
    target = torch.tensor([[1.0], [0.0], [0.0]])
    setup("binary", "seed_ce").loss(logits, target).backward()
    # d/dz [-y log σ(z)] / N = -y (1 - σ(z)) / N
    expected = -(1 - torch.sigmoid(logits.detach())) * target / 3
    torch.testing.assert_close(logits.grad, expected)
    assert logits.grad[1:].eq(0).all()


# ==================================================================================
# Short real training runs: the qualitative result of each scenario
# ==================================================================================


@pytest.fixture(scope="module")
def cancer() -> ds.Dataset:
    return ds.breast_cancer(seed=0)


def test_binary_bce_learns_breast_cancer(cancer: ds.Dataset) -> None:
    run = train_run(cancer, setup("binary", "bce"), "linear", seed=0, epochs=15,
                    batch_size=32, lr=1e-3)
    assert run.final()["binary_accuracy"] > 0.9
    assert run.history[-1].train["loss"] < run.history[0].train["loss"]
    assert [e.epoch for e in run.history] == list(range(16))


@pytest.mark.parametrize("model", ["linear", "mlp"])
def test_binary_keras_ce_never_moves_the_weights(cancer: ds.Dataset, model: str) -> None:
    run = train_run(cancer, setup("binary", "keras_ce"), model, seed=1, epochs=5,
                    batch_size=32, lr=1e-3)
    assert all(e.grad_norm == 0.0 and e.param_change == 0.0 for e in run.history)
    accuracies = {e.test["binary_accuracy"] for e in run.history}
    assert len(accuracies) == 1  # stays at the random initial model's accuracy
    positive_rate = float(cancer.y_train.mean())
    assert run.final("train")["loss"] == pytest.approx(
        positive_rate * -np.log(np.float32(1) - EPSILON32), rel=1e-4)


def test_binary_softmax_ce_predicts_the_majority_class(cancer: ds.Dataset) -> None:
    run = train_run(cancer, setup("binary", "softmax_ce"), "linear", seed=0, epochs=3,
                    batch_size=64, lr=1e-3)
    assert run.final()["loss"] == 0.0
    assert all(e.grad_norm == 0.0 for e in run.history)
    # softmax of one logit is 1: every sample predicted positive (benign, the majority)
    assert run.final()["binary_accuracy"] == pytest.approx(float(cancer.y_test.mean()))


def test_multiclass_bce_about_as_well_as_ce() -> None:
    data = ds.digits(seed=0)
    finals = {
        key: train_run(data, setup("multiclass", key), "linear", seed=0, epochs=5,
                       batch_size=64, lr=3e-3).final()
        for key in ("ce", "keras_bce")
    }
    for final in finals.values():
        assert final["categorical_accuracy"] > 0.8
        # binary accuracy counts 10 yes/no decisions per sample: higher than categorical
        assert final["binary_accuracy"] > final["categorical_accuracy"]
    assert abs(finals["ce"]["categorical_accuracy"]
               - finals["keras_bce"]["categorical_accuracy"]) < 0.05


def test_multilabel_ce_cannot_learn_what_bce_learns() -> None:
    data = ds.digit_strips(seed=0, num_train=1500, num_test=400)
    finals = {
        key: train_run(data, setup("multilabel", key), "mlp", seed=0, epochs=10,
                       batch_size=128, lr=3e-3).final()
        for key in ("bce", "seed_ce", "softmax_ce")
    }
    assert finals["bce"]["exact_match"] > 0.15
    assert finals["seed_ce"]["exact_match"] < 0.02 and finals["softmax_ce"]["exact_match"] < 0.02
    # -Σ y log σ(z) pushes every output to 1: binary accuracy falls to the label rate (~0.25)
    assert finals["seed_ce"]["binary_accuracy"] < 0.3


def test_make_model_rejects_unknown_kind() -> None:
    with pytest.raises(ValueError, match="model must be one of linear, mlp, got 'cnn'"):
        make_model("cnn", 4, 1)


# ==================================================================================
# Verdict rules
# ==================================================================================


def test_compare_follows_the_documented_rules() -> None:
    # the rules' example: BCE ahead by 0.3 points with std 0.5 is "about as well"
    assert compare(Stat(0.903, 0.005, 3), Stat(0.900, 0.0, 3))[0] == "about as well as"
    assert compare(Stat(0.92, 0.005, 3), Stat(0.90, 0.0, 3))[0] == "better than"
    assert compare(Stat(0.89, 0.005, 3), Stat(0.90, 0.0, 3))[0] == "slightly worse than"
    # the half-point floor: identical seeds do not make 0.4 points a difference
    assert compare(Stat(0.904, 0.0, 3), Stat(0.900, 0.0, 3))[0] == "about as well as"


def test_learning_rules() -> None:
    def row(mean: float, grad: float) -> SummaryRow:
        return SummaryRow("binary", "d", "linear", "x", "x", {"acc": Stat(mean, 0.01, 3)},
                          Stat(0.1, 0.0, 3), grad, 0.0)

    assert learning(row(0.99, 0.0), "acc", 0.6) == "receives no gradient"
    assert learning(row(0.75, 1.0), "acc", 0.6) == "learns"
    assert learning(row(0.62, 1.0), "acc", 0.6) == "does not learn"
    assert learning(row(0.67, 1.0), "acc", 0.6) == "learns a little"


# ==================================================================================
# The driver, results.json and the CLI
# ==================================================================================


@pytest.fixture(scope="module")
def small_results() -> ExperimentResults:
    return run_experiments(epochs=2, seeds=2, models=("linear",))


def test_results_json_schema(small_results: ExperimentResults, tmp_path: Path) -> None:
    path = small_results.save(tmp_path / "results.json")
    data = json.loads(path.read_text())
    assert data["schema_version"] == SCHEMA_VERSION
    assert set(data) == {"schema_version", "config", "environment", "datasets", "runs",
                         "summary", "verdicts", "wall_s"}
    assert data["config"]["seeds"] == [0, 1]
    assert set(data["datasets"]) == {"binary", "multiclass", "multilabel"}
    expected_runs = 2 * sum(len(SETUPS[s]) for s in SETUPS)
    assert len(data["runs"]) == expected_runs
    for run in data["runs"]:
        for key in ("seed", "split", "epochs", "batch_size", "optimizer", "lr", "loss_code"):
            assert key in run
        assert run["epochs"] == 2 and len(run["history"]) == 3
        epoch = run["history"][-1]
        assert {"loss", "binary_accuracy"} <= set(epoch["train"]) == set(epoch["test"])
        if run["scenario"] == "multiclass":
            assert "categorical_accuracy" in epoch["test"]
        if run["scenario"] == "multilabel":
            assert {"exact_match", "top_k_match"} <= set(epoch["test"])
    for row in data["summary"]:
        for stat in row["test"].values():
            assert set(stat) == {"mean", "std", "n"} and stat["n"] == 2
    assert [v["claim"] for v in data["verdicts"]] == ["a", "b", "c"]
    for verdict in data["verdicts"]:
        assert verdict["status"] in {"holds", "partly holds", "does not hold"}
        assert verdict["seed_claim"] and verdict["headline"]
    loaded = ExperimentResults.load(path)
    assert loaded.to_dict() == small_results.to_dict()


def test_results_load_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="run `crossent experiment --out DIR` first"):
        ExperimentResults.load(tmp_path / "none.json")
    (tmp_path / "old.json").write_text('{"schema_version": 0}')
    with pytest.raises(ValueError, match="schema_version 0 is not supported"):
        ExperimentResults.load(tmp_path / "old.json")


def test_verdict_a_from_a_short_run(small_results: ExperimentResults) -> None:
    verdict_a = judge(small_results)[0]
    # two epochs already show it: Keras CE receives no gradient at all
    assert "Keras CE" in verdict_a.headline and "receives no gradient" in verdict_a.headline
    assert verdict_a.figures["linear"]["keras_ce_max_grad_norm"] == 0.0


def test_run_experiments_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="scenario must be one of .* got 'regression'"):
        run_experiments(["regression"])
    with pytest.raises(ValueError, match="seeds must be a positive integer, got 0"):
        run_experiments(seeds=0)


def test_cli_experiment_json(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, [
        "experiment", "binary", "--epochs", "2", "--seeds", "1", "--out", str(tmp_path),
        "--format", "json", "--workers", "1",
    ])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["config"]["scenarios"] == ["binary"]
    assert [v["status"] for v in data["verdicts"]][1:] == ["not run", "not run"]
    assert (tmp_path / "results.json").is_file()
    assert (tmp_path / "learning_curves_binary.png").read_bytes()[:4] == b"\x89PNG"


def test_cli_experiment_text_table(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, [
        "experiment", "multiclass", "--epochs", "1", "--seeds", "1", "--out", str(tmp_path),
        "--workers", "1",
    ])
    assert result.exit_code == 0, result.output
    assert "softmax +" in result.stdout and "(b)" in result.stdout
    assert max(len(line) for line in result.stdout.splitlines()) <= 80  # a terminal's width
    assert "…" not in result.stdout  # and nothing cut off to fit


def test_cli_experiment_errors(tmp_path: Path) -> None:
    """One line each, exit status 2, before any training."""
    runner = CliRunner()
    result = runner.invoke(app, ["experiment", "regression"])
    assert result.exit_code == 2
    assert result.output == ("error: Invalid value for 'scenario': 'regression' is not one of "
                             "'binary', 'multiclass', 'multilabel', 'all'.\n")
    result = runner.invoke(app, ["experiment", "binary", "--data", str(tmp_path / "x")])
    assert result.exit_code == 2 and result.output.startswith("error: ")
    assert "does not exist" in result.output and len(result.output.splitlines()) == 1
    result = runner.invoke(app, ["experiment", "--seeds", "0"])
    assert result.exit_code == 2 and result.output.startswith("error: Invalid value for '--seeds'")
    (tmp_path / "file").write_text("")
    result = runner.invoke(app, ["experiment", "binary", "--out", str(tmp_path / "file")])
    assert result.exit_code == 2
    assert result.output == f"error: --out {str(tmp_path / 'file')!r} is a file; give a folder\n"
    result = runner.invoke(app, ["experiment", "binary", "--format", "yaml"])
    assert result.exit_code == 2 and "'yaml' is not one of 'text', 'json'" in result.output


def test_cli_experiment_uses_the_users_mnist(tmp_path: Path, mnist_folder: Path) -> None:
    result = CliRunner().invoke(app, [
        "experiment", "multiclass", "--epochs", "1", "--seeds", "1", "--data", str(mnist_folder),
        "--out", str(tmp_path / "out"), "--format", "json", "--workers", "1",
    ])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["datasets"]["multiclass"]["name"] == "mnist"
    assert data["datasets"]["multiclass"]["num_train"] == 12


def test_metrics_match_crossent_metrics_on_the_final_model(cancer: ds.Dataset) -> None:
    # the runner's recorded accuracy is crossent.metrics.binary_accuracy of the model's output
    run = train_run(cancer, setup("binary", "bce"), "linear", seed=3, epochs=1,
                    batch_size=455, lr=1e-3)
    torch.manual_seed(3)
    model = make_model("linear", 30, 1)
    probs = torch.sigmoid(model(torch.from_numpy(cancer.x_test))).detach().numpy()
    expected = float(np.mean((probs[:, 0] > 0.5) == (cancer.y_test > 0.5)))
    assert run.history[0].test["binary_accuracy"] == pytest.approx(expected)
    assert float(ce.metrics.binary_accuracy(cancer.y_test[:, None], probs)) == pytest.approx(
        expected)


def test_cli_experiment_uses_the_users_imdb_npz(tmp_path: Path) -> None:
    path = tmp_path / "imdb.npz"
    rng = np.random.default_rng(0)
    reviews = [list(rng.integers(1, 50, 20)) for _ in range(24)]
    np.savez(path, x_train=ragged(reviews[:16]), y_train=np.arange(16) % 2,
             x_test=ragged(reviews[16:]), y_test=np.arange(8) % 2)
    result = CliRunner().invoke(app, [
        "experiment", "binary", "--epochs", "1", "--seeds", "1", "--data", str(path),
        "--out", str(tmp_path / "out"), "--format", "json", "--workers", "1",
    ])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["datasets"]["binary"]["name"] == "imdb"
    assert data["datasets"]["binary"]["num_features"] == 1000
    assert data["config"]["settings"]["binary"]["epochs"] == 1


KERAS_ONE_OUTPUT = """
import json, os, sys, warnings
os.environ["KERAS_BACKEND"] = "torch"
import keras, torch
logits = torch.tensor(json.loads(sys.argv[1]), requires_grad=True)
target = torch.tensor(json.loads(sys.argv[2]))
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    loss = keras.losses.categorical_crossentropy(target, torch.sigmoid(logits)).mean()
loss.backward()
print(json.dumps({"loss": float(loss), "grad": logits.grad.tolist(),
                  "warnings": [[w.category.__name__, str(w.message)] for w in caught]}))
"""


def test_keras_ce_one_output_matches_real_keras() -> None:
    """Seed 004's experiment with Keras itself (torch backend, in a subprocess): the same
    loss as the ``keras_ce`` setup and an exactly zero gradient."""
    import subprocess
    import sys

    if os.environ.get("CI", "").lower() != "true":
        pytest.importorskip("keras")
    logits = [[-2.0], [0.3], [1.5], [4.0]]
    target = [[1.0], [0.0], [1.0], [1.0]]
    completed = subprocess.run(
        [sys.executable, "-c", KERAS_ONE_OUTPUT, json.dumps(logits), json.dumps(target)],
        capture_output=True, text=True, timeout=300, check=True,
    )
    keras_result = json.loads(completed.stdout.strip().splitlines()[-1])
    z = torch.tensor(logits, requires_grad=True)
    loss = setup("binary", "keras_ce").loss(z, torch.tensor(target))
    loss.backward()
    assert float(loss.detach()) == pytest.approx(keras_result["loss"], rel=1e-6)
    assert keras_result["grad"] == [[0.0]] * 4
    assert z.grad.eq(0).all()
    # Keras 3 warns (and computes) rather than refusing one output column, as crossent says
    assert [category for category, message in keras_result["warnings"]
            if "num_classes > 1" in message] == ["SyntaxWarning"]
    note = " ".join(examples.get("seed004-single-output").notes)
    assert "Keras 3 does not refuse" in note and "it warns" in note
    [advice] = ce.advise([[2.0], [-1.0]], [[1.0], [0.0]])
    assert advice.code == "single-output-categorical" and "Keras 3 only warns" in advice.reason
