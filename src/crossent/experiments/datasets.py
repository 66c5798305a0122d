"""Data sets of the CE-vs-BCE experiments: bundled real data, and loaders for the seed's own.

Bundled (scikit-learn ships them; nothing is downloaded):

- :func:`breast_cancer` — binary: 569 tumours, 30 measured features, malignant (0)
  or benign (1); 37 % / 63 %. Stands in for seed 004's IMDB binary task.
- :func:`digits` — 10-class single-label: 1,797 real handwritten 8×8 digits
  (the UCI "optdigits" test set). Stands in for seed 004's MNIST.
- :func:`digit_strips` — multi-label, built from real digits: each image is a strip
  of three 8×8 slots holding two or three *different* real digit images side by
  side (one slot blank when there are two), at random positions; its labels are
  the set of digits present (a 10-way multi-hot vector with 2 or 3 ones). Strips
  for the test set are cut only from test-split digit images, so no source image
  is shared between train and test.

The seed's own data, when the user has the files (``--data PATH``):

- :func:`load_mnist` — the four MNIST IDX files (``train-images-idx3-ubyte``,
  ``train-labels-idx1-ubyte``, ``t10k-images-idx3-ubyte``, ``t10k-labels-idx1-ubyte``;
  gzipped or not; also Fashion-MNIST, which uses the same names).
- :func:`load_imdb` — the IMDB reviews as the ``aclImdb/`` folder (Stanford's
  ``aclImdb_v1.tar.gz`` unpacked) or Keras's ``imdb.npz``; reviews become
  bag-of-words features (1 where one of the ``num_words`` most frequent words occurs),
  as in Keras's ``imdb`` MLP examples.

Every loader returns a :class:`Dataset` (float32 features, standardised or scaled
to [0, 1]; the transformation is fitted on the training split only). A missing or
malformed path raises :class:`DataError`, which names the path, what was expected
and how to fix it.
"""

from __future__ import annotations

import gzip
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

__all__ = [
    "DataError",
    "Dataset",
    "breast_cancer",
    "digits",
    "digit_strips",
    "read_idx",
    "load_mnist",
    "load_imdb",
    "find_data",
]

Task = Literal["binary", "multiclass", "multilabel"]


class DataError(ValueError):
    """A data path is missing or its files are not in the expected format."""


@dataclass
class Dataset:
    """Features and targets of one experiment, already split into train and test.

    Targets: ``binary`` — float32 ``[N]`` of 0/1; ``multiclass`` — int64 class
    indices ``[N]``; ``multilabel`` — float32 multi-hot ``[N, num_classes]``.
    """

    name: str
    task: Task
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    num_classes: int
    description: str
    split: dict[str, Any] = field(default_factory=dict)

    @property
    def num_outputs(self) -> int:
        """Output units of a model for this task: 1 for binary, ``num_classes`` otherwise."""
        return 1 if self.task == "binary" else self.num_classes

    def targets(self, which: Literal["train", "test"]) -> np.ndarray:
        """Targets as a float32 array of the model's output shape ``[N, num_outputs]``."""
        y = self.y_train if which == "train" else self.y_test
        if self.task == "binary":
            return y.astype(np.float32)[:, None]
        if self.task == "multiclass":
            return np.eye(self.num_classes, dtype=np.float32)[y]
        return y.astype(np.float32)

    def majority_rate(self, which: Literal["train", "test"] = "test") -> float:
        """Accuracy of always predicting the most common class (binary/multiclass)
        or the most common label set (multilabel, exact match)."""
        y = self.y_train if which == "train" else self.y_test
        if self.task == "multilabel":
            _, counts = np.unique(y, axis=0, return_counts=True)
        else:
            _, counts = np.unique(y, return_counts=True)
        return float(counts.max() / len(y))

    def info(self) -> dict[str, Any]:
        """A JSON-ready description: name, task, sizes, majority rate, split."""
        extra = {}
        if self.task == "binary":
            extra["train_positive_rate"] = float(np.mean(self.y_train))
        return extra | {
            "name": self.name,
            "task": self.task,
            "description": self.description,
            "num_train": int(len(self.x_train)),
            "num_test": int(len(self.x_test)),
            "num_features": int(self.x_train.shape[1]),
            "num_classes": int(self.num_classes),
            "test_majority_rate": self.majority_rate("test"),
            "split": dict(self.split),
        }


# ==================================================================================
# Bundled data (scikit-learn)
# ==================================================================================


def _split(
    x: np.ndarray, y: np.ndarray, seed: int, test_fraction: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    from sklearn.model_selection import train_test_split

    parts = train_test_split(
        x, y, test_size=test_fraction, random_state=seed, stratify=y, shuffle=True
    )
    return parts[0], parts[2], parts[1], parts[3]


def _standardise(x_train: np.ndarray, x_test: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Zero mean, unit variance per feature, with the training split's statistics."""
    mean = x_train.mean(axis=0)
    scale = x_train.std(axis=0)
    scale[scale == 0] = 1.0  # constant features stay 0 instead of dividing by zero
    return (
        ((x_train - mean) / scale).astype(np.float32),
        ((x_test - mean) / scale).astype(np.float32),
    )


def breast_cancer(seed: int = 0, *, test_fraction: float = 0.2) -> Dataset:
    """Wisconsin breast cancer (scikit-learn's ``load_breast_cancer``): binary, 30 features.

    A stratified split (``test_fraction`` of the 569 samples, shuffled with ``seed``);
    features standardised with the training split's mean and standard deviation.

    >>> data = breast_cancer(seed=0)
    >>> data.task, data.x_train.shape, data.x_test.shape, round(data.majority_rate(), 3)
    ('binary', (455, 30), (114, 30), 0.632)
    """
    from sklearn.datasets import load_breast_cancer

    bunch = load_breast_cancer()
    x_train, y_train, x_test, y_test = _split(bunch.data, bunch.target, seed, test_fraction)
    x_train, x_test = _standardise(x_train, x_test)
    return Dataset(
        name="breast_cancer",
        task="binary",
        x_train=x_train,
        y_train=y_train.astype(np.float32),
        x_test=x_test,
        y_test=y_test.astype(np.float32),
        num_classes=2,
        description=(
            "scikit-learn load_breast_cancer: 569 tumours, 30 features, "
            "malignant (0) / benign (1); standardised"
        ),
        split={"kind": "stratified random", "test_fraction": test_fraction, "seed": seed},
    )


def digits(seed: int = 0, *, test_fraction: float = 0.2) -> Dataset:
    """Handwritten digits (scikit-learn's ``load_digits``): 10 classes, 8×8 pixels in 0..16.

    A stratified split shuffled with ``seed``; pixels scaled to [0, 1].

    >>> data = digits(seed=0)
    >>> data.task, data.x_train.shape, data.num_classes
    ('multiclass', (1437, 64), 10)
    """
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x_train, y_train, x_test, y_test = _split(bunch.data, bunch.target, seed, test_fraction)
    return Dataset(
        name="digits",
        task="multiclass",
        x_train=(x_train / 16.0).astype(np.float32),
        y_train=y_train.astype(np.int64),
        x_test=(x_test / 16.0).astype(np.float32),
        y_test=y_test.astype(np.int64),
        num_classes=10,
        description="scikit-learn load_digits: 1,797 handwritten 8x8 digits, 10 classes",
        split={"kind": "stratified random", "test_fraction": test_fraction, "seed": seed},
    )


def _strips(
    images: np.ndarray, labels: np.ndarray, count: int, rng: np.random.Generator,
    num_classes: int,
) -> tuple[np.ndarray, np.ndarray]:
    """``count`` strips of 3 slots holding 2 or 3 distinct digits; multi-hot labels."""
    height, width = images.shape[1:]
    by_class = [np.flatnonzero(labels == c) for c in range(num_classes)]
    present = [c for c in range(num_classes) if len(by_class[c])]
    strips = np.zeros((count, height, 3 * width), dtype=np.float32)
    targets = np.zeros((count, num_classes), dtype=np.float32)
    for i in range(count):
        k = int(rng.integers(2, 4))  # 2 or 3 digits
        classes = rng.choice(present, size=k, replace=False)
        slots = rng.permutation(3)[:k]
        for c, slot in zip(classes, slots, strict=True):
            image = images[rng.choice(by_class[c])]
            strips[i, :, slot * width:(slot + 1) * width] = image
            targets[i, c] = 1.0
    return strips.reshape(count, -1), targets


def digit_strips(
    seed: int = 0,
    *,
    source: Dataset | None = None,
    num_train: int | None = None,
    num_test: int | None = None,
) -> Dataset:
    """Multi-label strips of two or three different real digits; labels = digits present.

    Each sample is three digit-sized slots side by side; 2 or 3 of them (equally
    likely) hold images of *different* digits drawn from ``source`` (the bundled
    :func:`digits`, or MNIST from :func:`load_mnist`), the rest stay blank. The
    target is the multi-hot set of digits present. Train strips use only the source's
    training images, test strips only its test images.

    Args:
      seed: seeds the source split (bundled digits) and the strip generator.
      source: a ``multiclass`` :class:`Dataset` of images; default ``digits(seed)``.
      num_train, num_test: number of strips; default twice the source's sizes (at
        most 20,000 and 4,000).

    >>> data = digit_strips(seed=0)
    >>> data.x_train.shape, data.y_train.shape, sorted(set(data.y_train.sum(axis=1).tolist()))
    ((2874, 192), (2874, 10), [2.0, 3.0])
    """
    if source is None:
        source = digits(seed)
    if source.task != "multiclass":
        raise DataError(f"source must be a multiclass digit data set, got task {source.task!r}")
    side = int(round(np.sqrt(source.x_train.shape[1])))
    if side * side != source.x_train.shape[1]:
        raise DataError(
            f"source images must be square, got {source.x_train.shape[1]} features per image"
        )
    num_train = num_train or min(2 * len(source.x_train), 20_000)
    num_test = num_test or min(2 * len(source.x_test), 4_000)
    rng = np.random.default_rng(seed)
    shape = (-1, side, side)
    x_train, y_train = _strips(
        source.x_train.reshape(shape), source.y_train, num_train, rng, source.num_classes
    )
    x_test, y_test = _strips(
        source.x_test.reshape(shape), source.y_test, num_test, rng, source.num_classes
    )
    return Dataset(
        name=f"{source.name}_strips",
        task="multilabel",
        x_train=x_train,
        y_train=y_train,
        x_test=x_test,
        y_test=y_test,
        num_classes=source.num_classes,
        description=(
            f"strips of 2 or 3 different real digits from {source.name} side by side "
            f"({side}x{3 * side} pixels); labels = the set of digits present"
        ),
        split={
            "kind": f"strips from the {source.name} split (train strips from train images only)",
            "source_split": dict(source.split),
            "seed": seed,
        },
    )


# ==================================================================================
# MNIST: IDX files
# ==================================================================================

# IDX type byte -> big-endian NumPy dtype (http://yann.lecun.com/exdb/mnist/)
_IDX_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def _read_bytes(path: Path) -> bytes:
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":  # gzip magic
        try:
            return gzip.decompress(raw)
        except (OSError, EOFError) as error:
            raise DataError(f"{path} looks gzipped but cannot be decompressed: {error}") from None
    return raw


def read_idx(path: str | Path) -> np.ndarray:
    """Read one IDX file (MNIST's format), gzipped or not, as a NumPy array.

    Format: two zero bytes, a type byte (0x08 = uint8, ...), the number of
    dimensions, each dimension as a big-endian uint32, then the data.

    Raises:
      DataError: the file is missing, has a bad magic number, an unknown type, or a
        size that does not match its header.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"IDX file {path} does not exist; pass the folder with the MNIST files")
    raw = _read_bytes(path)
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_TYPES:
        raise DataError(
            f"{path} is not an IDX file: it should start with 0x00 0x00, a type byte in "
            f"{sorted(hex(t) for t in _IDX_TYPES)} and the number of dimensions; "
            f"found {raw[:4].hex(' ')}"
        )
    dtype = np.dtype(_IDX_TYPES[raw[2]])
    ndim = raw[3]
    header = 4 + 4 * ndim
    if ndim == 0 or len(raw) < header:
        raise DataError(f"{path}: truncated IDX header ({len(raw)} bytes, {ndim} dimensions)")
    shape = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    expected = int(np.prod(shape)) * dtype.itemsize
    if len(raw) - header != expected:
        raise DataError(
            f"{path}: header says shape {shape} ({expected} bytes of data), "
            f"but the file has {len(raw) - header}; the file is truncated or corrupt"
        )
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape)


_MNIST_FILES = {
    "train_images": ("train-images", 3),
    "train_labels": ("train-labels", 1),
    "test_images": ("t10k-images", 3),
    "test_labels": ("t10k-labels", 1),
}


def _find_mnist_files(folder: Path) -> dict[str, Path]:
    found: dict[str, Path] = {}
    for role, (stem, dims) in _MNIST_FILES.items():
        candidates = sorted(
            p for p in folder.iterdir()
            if p.is_file() and re.fullmatch(rf"{stem}[-.]idx{dims}-ubyte(\.gz)?", p.name)
        )
        if candidates:
            found[role] = candidates[0]
    return found


def load_mnist(path: str | Path, *, limit: int | None = None) -> Dataset:
    """MNIST (or Fashion-MNIST) from its four IDX files in the folder ``path``.

    Pixels are scaled to [0, 1]; the given train/test split (60,000 / 10,000) is kept.

    Args:
      path: folder holding ``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
        ``t10k-images-idx3-ubyte`` and ``t10k-labels-idx1-ubyte`` (``.gz`` allowed; the
        ``train-images.idx3-ubyte`` spelling too).
      limit: keep only the first ``limit`` training and ``limit // 6`` test images.

    Raises:
      DataError: missing folder or files, malformed files, counts that disagree.
    """
    folder = Path(path)
    if not folder.is_dir():
        raise DataError(
            f"MNIST folder {folder} does not exist; pass the folder holding "
            "train-images-idx3-ubyte[.gz] and the other three IDX files"
        )
    found = _find_mnist_files(folder)
    missing = [f"{stem}-idx{dims}-ubyte" for role, (stem, dims) in _MNIST_FILES.items()
               if role not in found]
    if missing:
        raise DataError(
            f"MNIST folder {folder} lacks {', '.join(missing)} (gzipped or not); "
            "download the four IDX files of MNIST into it"
        )
    arrays = {role: read_idx(p) for role, p in found.items()}
    for split in ("train", "test"):
        images, labels = arrays[f"{split}_images"], arrays[f"{split}_labels"]
        if images.ndim != 3 or labels.ndim != 1:
            raise DataError(
                f"{found[f'{split}_images']}: expected images [N, H, W] and labels [N], "
                f"got {images.shape} and {labels.shape}"
            )
        if len(images) != len(labels):
            raise DataError(
                f"{folder}: {len(images)} {split} images but {len(labels)} {split} labels"
            )
        if labels.size and (labels.min() < 0 or labels.max() > 9):
            raise DataError(
                f"{found[f'{split}_labels']}: labels must be digits 0..9, "
                f"found {int(labels.min())}..{int(labels.max())}"
            )
    n_train = len(arrays["train_images"]) if limit is None else limit
    n_test = len(arrays["test_images"]) if limit is None else max(1, limit // 6)

    def flat(images: np.ndarray) -> np.ndarray:
        return (images.reshape(len(images), -1).astype(np.float32) / 255.0)

    return Dataset(
        name="mnist",
        task="multiclass",
        x_train=flat(arrays["train_images"][:n_train]),
        y_train=arrays["train_labels"][:n_train].astype(np.int64),
        x_test=flat(arrays["test_images"][:n_test]),
        y_test=arrays["test_labels"][:n_test].astype(np.int64),
        num_classes=10,
        description=f"MNIST IDX files from {folder}; pixels scaled to [0, 1]",
        split={"kind": "given (train / t10k files)", "limit": limit},
    )


# ==================================================================================
# IMDB: aclImdb folder or Keras's imdb.npz, as bag-of-words
# ==================================================================================

_WORD = re.compile(r"[a-z0-9']+")


def _tokens(text: str) -> list[str]:
    return _WORD.findall(text.lower().replace("<br />", " "))


def _bag_of_words(documents: list[list[int]], num_words: int) -> np.ndarray:
    """1 where word index ``w`` (0 <= w < num_words) occurs in the document."""
    features = np.zeros((len(documents), num_words), dtype=np.float32)
    for i, words in enumerate(documents):
        kept = [w for w in words if 0 <= w < num_words]
        features[i, kept] = 1.0
    return features


def _read_acl_split(root: Path, split: str, limit: int | None) -> tuple[list[str], np.ndarray]:
    texts: list[str] = []
    labels: list[float] = []
    for label, name in ((1.0, "pos"), (0.0, "neg")):
        folder = root / split / name
        if not folder.is_dir():
            raise DataError(
                f"IMDB folder {root} lacks {split}/{name}/; expected the unpacked aclImdb "
                "folder with train/pos, train/neg, test/pos and test/neg"
            )
        files = sorted(folder.glob("*.txt"))
        if not files:
            raise DataError(f"IMDB folder {folder} holds no .txt reviews")
        if limit is not None:
            files = files[: limit // 2]
        for file in files:
            texts.append(file.read_text(encoding="utf-8", errors="replace"))
            labels.append(label)
    return texts, np.asarray(labels, dtype=np.float32)


def _load_acl_imdb(root: Path, num_words: int, limit: int | None) -> Dataset:
    train_texts, y_train = _read_acl_split(root, "train", limit)
    test_texts, y_test = _read_acl_split(root, "test", limit)
    train_tokens = [_tokens(t) for t in train_texts]
    counts = Counter(word for tokens in train_tokens for word in tokens)
    # most frequent first, ties alphabetical (deterministic)
    vocabulary = sorted(counts, key=lambda w: (-counts[w], w))[:num_words]
    index = {word: i for i, word in enumerate(vocabulary)}

    def encode(tokens: list[str]) -> list[int]:
        return [index[w] for w in tokens if w in index]

    return Dataset(
        name="imdb",
        task="binary",
        x_train=_bag_of_words([encode(t) for t in train_tokens], num_words),
        y_train=y_train,
        x_test=_bag_of_words([encode(_tokens(t)) for t in test_texts], num_words),
        y_test=y_test,
        num_classes=2,
        description=(
            f"IMDB reviews from the aclImdb folder {root}: presence of the {num_words} most "
            "frequent training words; negative (0) / positive (1)"
        ),
        split={"kind": "given (train / test folders)", "limit": limit},
    )


def _load_imdb_npz(path: Path, num_words: int, limit: int | None) -> Dataset:
    try:
        # Keras's imdb.npz stores ragged lists of word ranks as object arrays
        archive = np.load(path, allow_pickle=True)
    except Exception as error:  # zipfile.BadZipFile, ValueError, OSError, pickle errors
        raise DataError(f"{path} is not a readable .npz archive: {error}") from None
    with archive:
        missing = [k for k in ("x_train", "y_train", "x_test", "y_test") if k not in archive]
        if missing:
            raise DataError(
                f"{path} lacks {', '.join(missing)}; expected Keras's imdb.npz with "
                "x_train, y_train, x_test, y_test"
            )
        parts = {k: archive[k] for k in ("x_train", "y_train", "x_test", "y_test")}
    features: dict[str, np.ndarray] = {}
    labels: dict[str, np.ndarray] = {}
    for split in ("train", "test"):
        sequences, y = parts[f"x_{split}"], parts[f"y_{split}"]
        if len(sequences) != len(y):
            raise DataError(
                f"{path}: x_{split} has {len(sequences)} reviews but y_{split} has {len(y)} labels"
            )
        y = np.asarray(y)
        if y.size and not np.isin(y, (0, 1)).all():
            raise DataError(f"{path}: y_{split} must hold 0/1 labels, found {np.unique(y)[:5]}")
        documents: list[list[int]] = []
        for i, sequence in enumerate(sequences[:limit]):
            try:
                documents.append([int(w) for w in sequence])
            except (TypeError, ValueError):
                raise DataError(
                    f"{path}: x_{split}[{i}] must be a sequence of word indices, "
                    f"got {type(sequence).__name__}"
                ) from None
        # Keras's raw file holds word ranks (1 = most frequent); keep ranks < num_words
        features[split] = _bag_of_words(documents, num_words)
        labels[split] = y[:limit].astype(np.float32)
    return Dataset(
        name="imdb",
        task="binary",
        x_train=features["train"],
        y_train=labels["train"],
        x_test=features["test"],
        y_test=labels["test"],
        num_classes=2,
        description=(
            f"IMDB reviews from Keras's {path.name}: presence of word ranks below {num_words}; "
            "negative (0) / positive (1)"
        ),
        split={"kind": "given (x_train / x_test)", "limit": limit},
    )


def load_imdb(path: str | Path, *, num_words: int = 1000, limit: int | None = None) -> Dataset:
    """IMDB movie reviews as bag-of-words features, from ``aclImdb/`` or Keras's ``imdb.npz``.

    Args:
      path: the unpacked ``aclImdb`` folder (with ``train/pos``, ``train/neg``,
        ``test/pos``, ``test/neg`` of ``.txt`` reviews), a folder containing it, or
        Keras's ``imdb.npz`` (word-rank sequences; note that loading it unpickles
        object arrays, so only load files you trust).
      num_words: vocabulary size; a feature is 1 when the review contains that word.
      limit: keep at most ``limit`` reviews per split (half positive for aclImdb).

    Raises:
      DataError: missing path, missing sub-folders or keys, malformed contents.
    """
    path = Path(path)
    if num_words < 1:
        raise DataError(f"num_words must be at least 1, got {num_words}")
    if path.is_file():
        if path.suffix != ".npz":
            raise DataError(
                f"{path} is neither Keras's imdb.npz nor an aclImdb folder; pass one of those"
            )
        return _load_imdb_npz(path, num_words, limit)
    if path.is_dir():
        root = path / "aclImdb" if (path / "aclImdb").is_dir() else path
        return _load_acl_imdb(root, num_words, limit)
    raise DataError(
        f"IMDB path {path} does not exist; pass the aclImdb folder or Keras's imdb.npz"
    )


# ==================================================================================
# --data PATH: which of the seed's data sets a path holds
# ==================================================================================


def find_data(path: str | Path) -> dict[str, Path]:
    """What ``--data PATH`` offers: ``{"imdb": path, "mnist": folder}`` (one or both).

    ``path`` may be Keras's ``imdb.npz``, an ``aclImdb`` folder, a folder of MNIST
    IDX files, or a folder holding any of these (``imdb.npz``, ``aclImdb/``,
    ``mnist/`` or the IDX files themselves).

    Raises:
      DataError: the path does not exist or holds none of them.
    """
    path = Path(path)
    if not path.exists():
        raise DataError(
            f"--data path {path} does not exist; pass a folder with the MNIST IDX files, "
            "the aclImdb folder or Keras's imdb.npz"
        )
    found: dict[str, Path] = {}
    if path.is_file():
        if path.suffix == ".npz":
            found["imdb"] = path
    else:
        if (path / "train").is_dir() and (path / "test").is_dir() and (
            (path / "train" / "pos").is_dir()
        ):
            found["imdb"] = path
        elif (path / "aclImdb").is_dir():
            found["imdb"] = path / "aclImdb"
        elif (path / "imdb.npz").is_file():
            found["imdb"] = path / "imdb.npz"
        for folder in (path, path / "mnist", path / "MNIST" / "raw"):
            if folder.is_dir() and _find_mnist_files(folder):
                found["mnist"] = folder
                break
    if not found:
        raise DataError(
            f"--data path {path} holds none of the seed's data sets: expected MNIST IDX files "
            "(train-images-idx3-ubyte ...), an aclImdb folder or imdb.npz"
        )
    return found
