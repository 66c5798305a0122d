"""Log loss at any scale: a mergeable state, files streamed in bounded memory, Dask.

::

    from crossent import evaluate as ev
    ev.LogLoss(labels=None, from_logits=False)   # .update(y_true, y_pred, sample_weight=, by=)
                                                 # .merge(other) -> LogLoss, .result() -> Result
    ev.evaluate_files(paths, label=, prob= | logit= | prob_cols=, weight=, by=, labels=,
                      scheduler=None | "local:N" | address | Client) -> Result
    ev.read_files(...) -> LogLoss                # the same, the state itself
    ev.from_dask_dataframe(frame, label=, prob=, ...) -> Delayed LogLoss
    ev.from_dask_arrays(y_true, y_pred, sample_weight=, by=, ...) -> Delayed LogLoss
    ev.format_result(result, "text" | "json")

Log loss (scikit-learn's conventions, through :mod:`crossent.compat.sklearn`), normalised
entropy, the mean entropy of the predictions, accuracy and the base rate, overall and per
group, from probabilities or logits, with sample weights. The sums are compensated: the
result is the same to float64 rounding however the rows are split, shuffled or merged
(the bound is in :mod:`crossent.evaluate._sums`). pyarrow (Parquet, CSV) and dask are
imported only when used: ``pip install "crossent[evaluate]"``. See docs/evaluate.md.
"""

from ._api import CLI_OPTIONS, evaluate_files, format_result, read_files
from ._dask import from_dask_arrays, from_dask_dataframe
from ._state import LogLoss, Result

__all__ = ["LogLoss", "Result", "CLI_OPTIONS", "evaluate_files", "read_files", "format_result",
           "from_dask_arrays", "from_dask_dataframe"]
