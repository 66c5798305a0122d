"""Log loss at any scale: a mergeable state, streamed files, Dask (work in progress)."""

from ._api import CLI_OPTIONS, evaluate_files, format_result, read_files
from ._dask import from_dask_arrays, from_dask_dataframe
from ._state import LogLoss, Result

__all__ = ["LogLoss", "Result", "CLI_OPTIONS", "evaluate_files", "read_files", "format_result",
           "from_dask_arrays", "from_dask_dataframe"]
