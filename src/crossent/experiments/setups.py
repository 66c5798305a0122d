"""Models and the losses under test: each a crossent function on PyTorch tensors.

A :class:`Setup` is one line of seed 004's experiments: an output activation
(sigmoid or softmax over the model's logits) and a loss, both computed by
crossent — natively (``crossent.binary_cross_entropy_with_logits``,
``crossent.cross_entropy``, ``crossent.nll_loss``) or with a framework's convention
(``crossent.compat.keras``: Keras's losses on probabilities, with its epsilon clip
and its renormalisation). crossent's functions take PyTorch tensors and are built
from differentiable PyTorch operations, so ``loss.backward()`` trains the model.

The setups of each scenario (keys are what results.json records):

binary (one output unit, seed 004 §2.1):
  - ``bce``: sigmoid + binary cross-entropy — the usual choice.
  - ``keras_ce``: sigmoid + Keras ``categorical_crossentropy`` on the probability,
    exactly what seed 004 ran on IMDB. Keras divides the output by its sum over the
    class axis (``p / p = 1``), clips to [ε, 1 − ε] and takes ``-y log``: the loss is
    ``-y log(1 − ε) ≈ 1e-7 y`` for every input, and the clip passes no gradient, so
    the weights never move (keras/src/backend/torch/nn.py, ``categorical_crossentropy``).
  - ``seed_ce``: sigmoid + ``-y log p`` (``crossent.nll_loss`` of ``log_sigmoid`` with the
    label as a probability target): the CE the seed *derives* for one output, without
    Keras's renormalisation. Only positive samples have a gradient.
  - ``softmax_ce``: softmax over one output + ``crossent.cross_entropy`` (what PyTorch's
    ``F.cross_entropy`` does with one class): softmax of one number is 1, loss 0.

multiclass (10 outputs, seed 004 §2.2):
  - ``ce``: softmax + cross-entropy.
  - ``bce``: sigmoid + binary cross-entropy on the one-hot target.
  - ``keras_bce``: softmax + Keras ``binary_crossentropy`` on the softmax output: seed 004's
    MNIST run (Keras's mnist example has a softmax output; the seed changed the loss).

multilabel (10 outputs, 2-3 labels per sample, seed 004 §2.3):
  - ``bce``: sigmoid + binary cross-entropy.
  - ``seed_ce``: sigmoid + ``-Σ_c y_c log p_c`` (the seed's CE on independent outputs).
  - ``keras_ce``: sigmoid + Keras ``categorical_crossentropy`` (renormalised outputs).
  - ``softmax_ce``: softmax + cross-entropy with the multi-hot target.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import crossent as ce

__all__ = ["Setup", "SETUPS", "make_model", "MODELS"]

Tensor = Any  # torch.Tensor; torch is imported lazily (the `experiments` extra)


@dataclass(frozen=True)
class Setup:
    """One output activation and one loss, both from crossent.

    ``loss(logits, target)`` takes the model's raw outputs ``[N, C]`` and the float
    target ``[N, C]`` (0/1, one-hot or multi-hot) and returns a scalar tensor;
    ``probs(logits)`` gives the probabilities the metrics threshold or argmax.
    """

    key: str
    label: str
    output: Literal["sigmoid", "softmax"]
    loss_code: str  # the crossent call, as shown in the report
    loss: Callable[[Tensor, Tensor], Tensor]
    role: str  # what this line of the experiment stands for

    def probs(self, logits: Tensor) -> Tensor:
        """The model's output probabilities: sigmoid or softmax of the logits."""
        return ce.sigmoid(logits) if self.output == "sigmoid" else ce.softmax(logits)


def _keras() -> Any:
    try:
        from crossent.compat import keras
    except ImportError as error:  # pragma: no cover - compat ships with crossent
        raise ImportError(
            "the keras_* setups need crossent.compat.keras (Keras's loss conventions)"
        ) from error
    return keras


def _bce(logits: Tensor, target: Tensor) -> Tensor:
    return ce.binary_cross_entropy_with_logits(logits, target)


def _softmax_ce(logits: Tensor, target: Tensor) -> Tensor:
    return ce.cross_entropy(logits, target)


def _seed_ce(logits: Tensor, target: Tensor) -> Tensor:
    # -Σ_c y_c log σ(z_c): cross-entropy on independent sigmoid outputs, no renormalisation
    return ce.nll_loss(ce.log_sigmoid(logits), target)


def _keras_ce_on_sigmoid(logits: Tensor, target: Tensor) -> Tensor:
    # Keras: categorical_crossentropy(y_true, y_pred) per sample, then the batch mean
    return _keras().categorical_crossentropy(target, ce.sigmoid(logits)).mean()


def _keras_bce_on_softmax(logits: Tensor, target: Tensor) -> Tensor:
    # Keras: binary_crossentropy averages over the last axis per sample, then the batch mean
    return _keras().binary_crossentropy(target, ce.softmax(logits)).mean()


_BCE = "crossent.binary_cross_entropy_with_logits(z, y)"
_CE = "crossent.cross_entropy(z, y)"
_SEED_CE = "crossent.nll_loss(crossent.log_sigmoid(z), y)"
_KERAS_CE = "crossent.compat.keras.categorical_crossentropy(y, crossent.sigmoid(z))"
_KERAS_BCE = "crossent.compat.keras.binary_crossentropy(y, crossent.softmax(z))"

SETUPS: dict[str, list[Setup]] = {
    "binary": [
        Setup("bce", "sigmoid + BCE", "sigmoid", _BCE, _bce, "the usual choice"),
        Setup("keras_ce", "sigmoid + Keras categorical CE", "sigmoid", _KERAS_CE,
              _keras_ce_on_sigmoid, "seed 004's IMDB run"),
        Setup("seed_ce", "sigmoid + CE (-y log p)", "sigmoid", _SEED_CE, _seed_ce,
              "the CE seed 004 derives for one output"),
        Setup("softmax_ce", "softmax + CE (one output)", "softmax", _CE, _softmax_ce,
              "PyTorch-style CE over one logit"),
    ],
    "multiclass": [
        Setup("ce", "softmax + CE", "softmax", _CE, _softmax_ce, "the usual choice"),
        Setup("bce", "sigmoid + BCE", "sigmoid", _BCE, _bce, "BCE per class, one-hot target"),
        Setup("keras_bce", "softmax + Keras BCE", "softmax", _KERAS_BCE, _keras_bce_on_softmax,
              "seed 004's MNIST run"),
    ],
    "multilabel": [
        Setup("bce", "sigmoid + BCE", "sigmoid", _BCE, _bce, "the usual choice"),
        Setup("seed_ce", "sigmoid + CE (-sum y log p)", "sigmoid", _SEED_CE, _seed_ce,
              "the CE seed 004 argues about"),
        Setup("keras_ce", "sigmoid + Keras categorical CE", "sigmoid", _KERAS_CE,
              _keras_ce_on_sigmoid, "Keras's CE on sigmoid outputs"),
        Setup("softmax_ce", "softmax + CE (multi-hot target)", "softmax", _CE, _softmax_ce,
              "softmax CE with several labels"),
    ],
}

MODELS = ("linear", "mlp")
"""``linear``: one ``nn.Linear``; ``mlp``: Linear → ReLU → Linear with 64 hidden units."""


def make_model(kind: str, num_features: int, num_outputs: int, *, hidden: int = 64) -> Any:
    """A PyTorch model (default initialisation; seed ``torch.manual_seed`` first).

    >>> make_model("mlp", 30, 1)
    Sequential(
      (0): Linear(in_features=30, out_features=64, bias=True)
      (1): ReLU()
      (2): Linear(in_features=64, out_features=1, bias=True)
    )
    """
    from torch import nn

    if kind == "linear":
        return nn.Linear(num_features, num_outputs)
    if kind == "mlp":
        return nn.Sequential(
            nn.Linear(num_features, hidden), nn.ReLU(), nn.Linear(hidden, num_outputs)
        )
    raise ValueError(f"model must be one of {', '.join(MODELS)}, got {kind!r}")
