"""What the linear cross-entropy engines share besides arrays: options, checks, messages.

``crossent.torch.linear_cross_entropy`` and ``crossent.jax.linear_cross_entropy`` take the
same arguments with the same meaning; this module checks them once, on plain Python values
and on the arrays' shapes and dtype names, so both engines refuse bad input with the same
message. Only the spelling of a fix differs between the two libraries (:class:`Spelling`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

from . import _validate as v

FLOAT_DTYPES = ("float32", "bfloat16", "float16", "float64")


class LinearCrossEntropyOutput(NamedTuple):
    r"""What ``linear_cross_entropy`` returns with ``return_lse`` or ``return_stats``.

    The same for ``crossent.torch`` and ``crossent.jax``: its fields are arrays of the
    caller's library (``torch.Tensor`` or ``jax.Array``), and as a ``NamedTuple`` it is a JAX
    pytree (it can leave ``jax.jit``). With the logits :math:`z_i = \operatorname{cap}(W h_i
    + b) / T` of token :math:`i` and :math:`p_i = \operatorname{softmax}(z_i)`:

    .. math::
        \mathrm{lse}_i = \log \sum_c e^{z_{ic}}, \quad
        \text{target\_logprob}_i = z_{i y_i} - \mathrm{lse}_i, \quad
        \text{entropy}_i = -\sum_c p_{ic} \log p_{ic}, \quad
        \text{predicted}_i = \operatorname{argmax}_c z_{ic}.

    Per-token fields have ``hidden.shape[:-1]``, are computed for every token (ignored ones
    too; no token is dropped in such a call), carry no gradient, and are ``None`` when not
    asked for (``return_lse`` gives ``lse`` only). For a differentiable per-token
    log-likelihood use ``-loss`` of ``reduction='none'``.

    Attributes:
      loss: the loss (scalar, or per token for ``reduction='none'``), differentiable.
      lse: log-sum-exp of each token's logits, in the computation dtype (float32 for 16-bit
        inputs).
      target_logprob: ``log softmax(z)_y``; NaN for an ignored token.
      entropy: ``-Σ_c p_c log p_c`` of ``p = softmax(z)``.
      predicted: the argmax class, the lowest index among ties (torch: int64; JAX: its
        default integer, int64 with ``jax_enable_x64``, else int32).
      correct: ``predicted == target`` (bool; False for an ignored token).

    Four equal logits (all zero): lse = entropy = log 4 and log p_y = -log 4 for every token.

    >>> import torch
    >>> from crossent.torch import linear_cross_entropy
    >>> out = linear_cross_entropy(torch.zeros(2, 3), torch.zeros(4, 3), torch.tensor([0, -100]),
    ...                            return_stats=True)
    >>> out.lse, out.entropy
    (tensor([1.3863, 1.3863]), tensor([1.3863, 1.3863]))
    >>> out.target_logprob, out.predicted, out.correct
    (tensor([-1.3863,     nan]), tensor([0, 0]), tensor([ True, False]))

    NOTE: PyTorch's ``F.cross_entropy`` and ``F.linear_cross_entropy`` return the loss only;
    these statistics would need the ``N × V`` logits there.
    """

    loss: Any
    lse: Any = None
    target_logprob: Any = None
    entropy: Any = None
    predicted: Any = None
    correct: Any = None


@dataclass(frozen=True)
class LinearOptions:
    """Checked, hashable settings of one call (the arrays are checked by :func:`check_inputs`)."""

    ignore_index: int
    label_smoothing: float
    z_loss: float
    softcap: float | None
    reduction: v.Reduction
    chunk_size: int | None  # None = 'auto'
    temperature: float = 1.0
    stats: bool = False  # per-token statistics (return_stats): every token is computed


def check_options(
    *,
    ignore_index: object,
    label_smoothing: object,
    z_loss: object,
    softcap: object,
    reduction: object,
    chunk_size: object,
    temperature: object = 1.0,
    normalizer: object = None,
    return_stats: object = False,
) -> LinearOptions:
    """The options of ``linear_cross_entropy`` (``normalizer`` is checked, not kept: it may be
    an array)."""
    checked_reduction = v.check_reduction(reduction)
    v.check_normalizer(normalizer, checked_reduction)
    return LinearOptions(
        v.check_ignore_index(ignore_index),
        float(v.check_unit_interval("label_smoothing", label_smoothing, differentiable=False)),
        float(v.check_non_negative("z_loss", z_loss, differentiable=False)),
        v.check_softcap(softcap),
        checked_reduction,
        v.check_chunk_size(chunk_size),
        v.check_temperature(temperature),
        bool(return_stats),
    )


@dataclass(frozen=True)
class Spelling:
    """How an array library spells the conversions that a message proposes as the fix."""

    to_float: str  # e.g. "{name}.float()"
    to_integer: str
    to_dtype_of: str  # "{name}" to the dtype of "{other}"


TORCH = Spelling("{name}.float()", "{name}.long()", "{name}.to({other}.dtype)")
JAX = Spelling("{name}.astype(jnp.float32)", "{name}.astype(jnp.int32)", "{name}.astype({other}.dtype)")


def _name(dtype: Any) -> str:
    return str(dtype).removeprefix("torch.")


def _shape(array: Any) -> tuple[int, ...]:
    return tuple(int(d) for d in array.shape)


def check_inputs(
    hidden: Any,
    weight: Any,
    target: Any,
    bias: Any,
    class_weight: Any,
    token_weight: Any,
    spelling: Spelling,
    *,
    sharded: bool = False,
    bias_like_hidden: bool = True,
) -> None:
    """Shapes and dtypes of the arrays of ``linear_cross_entropy`` (not the target values).

    ``sharded``: ``weight`` holds one rank's rows of the vocabulary (it may be empty).
    ``bias_like_hidden``: the bias must have hidden's dtype (torch adds it to the product in
    place; JAX converts it to the computation dtype).
    """
    if _name(hidden.dtype) not in FLOAT_DTYPES:
        raise TypeError(
            f"hidden must have dtype float32, bfloat16, float16 or float64, got {hidden.dtype}; "
            f"convert it first (e.g. {spelling.to_float.format(name='hidden')})"
        )
    if weight.dtype != hidden.dtype:
        raise TypeError(
            f"weight has dtype {weight.dtype}, but hidden has dtype {hidden.dtype}; expected the "
            f"same dtype (convert one of them, e.g. "
            f"{spelling.to_dtype_of.format(name='weight', other='hidden')})"
        )
    if hidden.ndim < 1:
        raise ValueError("hidden must have at least one dimension (the hidden size D), got a scalar")
    if weight.ndim != 2:
        raise ValueError(f"weight must have shape (num_classes, hidden_size), got shape {_shape(weight)}")
    num_classes, hidden_size = _shape(weight)
    width = int(hidden.shape[-1])
    if width != hidden_size:
        raise ValueError(
            f"hidden has hidden size {width} (its last dimension), but weight has shape "
            f"{_shape(weight)}, i.e. hidden size {hidden_size}; expected hidden of shape "
            f"(..., {hidden_size}) and weight of shape (num_classes, {width})"
            + (f"; on a group, each rank's weight_shard must have shape (shard_size, {width})"
               if sharded else "")
        )
    if num_classes == 0 and not sharded:
        raise ValueError("weight has 0 rows; expected at least one class")
    if not _name(target.dtype).startswith(("int", "uint")):
        raise TypeError(
            f"target must hold integer class indices, got dtype {target.dtype}; convert it "
            f"(e.g. {spelling.to_integer.format(name='target')})"
        )
    positions = _shape(hidden)[:-1]
    if _shape(target) != positions:
        raise ValueError(
            f"target has shape {_shape(target)}, but hidden has shape {_shape(hidden)}; "
            f"expected one class index per token, shape {positions}"
        )
    for name, array in (("bias", bias), ("class_weight", class_weight)):
        if array is not None and _shape(array) != (num_classes,):
            raise ValueError(
                f"{name} must have shape ({num_classes},), one entry per row of weight, "
                f"got shape {_shape(array)}"
            )
    if bias_like_hidden and bias is not None and bias.dtype != hidden.dtype:
        raise TypeError(
            f"bias has dtype {bias.dtype}, but hidden has dtype {hidden.dtype}; expected the same dtype"
        )
    if token_weight is not None and _shape(token_weight) != positions:
        raise ValueError(
            f"token_weight has shape {_shape(token_weight)}, expected hidden.shape[:-1] = "
            f"{positions} (one weight per token)"
        )
    for name, array in (("class_weight", class_weight), ("token_weight", token_weight)):
        if array is not None and _name(array.dtype) not in FLOAT_DTYPES:
            raise TypeError(f"{name} must have a floating dtype, got {array.dtype}")


def class_index_error(found: int, num_classes: int, ignore_index: int) -> ValueError:
    """A target outside ``[0, num_classes)`` that is not ``ignore_index``."""
    return v.class_index_error(found, num_classes, f"weight has {num_classes} rows (classes)", ignore_index)
