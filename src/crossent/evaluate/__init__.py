"""Log loss at any scale: a mergeable state, streamed files, Dask (work in progress)."""

from ._state import LogLoss, Result

__all__ = ["LogLoss", "Result"]
