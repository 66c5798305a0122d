"""Shared machinery of the conformance tests: real frameworks, imported once.

- :func:`require` imports a framework or skips the test; with ``CI=true`` in the
  environment a missing framework is a *failure* (the CI installs them all).
- :func:`keras_worker` returns a long-lived Keras process for one backend
  (``_keras_worker.py``): a process has one Keras backend, so each backend runs
  in its own process, started once per session; the three start together so
  their imports overlap.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import pickle
import struct
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest

KERAS_BACKENDS = ("torch", "jax", "tensorflow")
_WORKER = Path(__file__).with_name("_keras_worker.py")


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def missing(what: str) -> None:
    """Skip because ``what`` is not installed, or fail when running in CI."""
    message = f"{what} is not installed (pip install 'crossent[conformance]')"
    if in_ci():
        pytest.fail(f"{message}; CI=true, so a skipped conformance test is a failure")
    pytest.skip(message)


def require(module: str) -> Any:
    """Import ``module`` (e.g. "torch", "tensorflow", "optax", "sklearn") or skip / fail in CI."""
    try:
        return importlib.import_module(module)
    except ImportError:
        missing(module)


class KerasWorker:
    """A Keras process for one backend; :meth:`call` sends one request and waits."""

    def __init__(self, backend: str) -> None:
        self.backend = backend
        env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="3",
                   CUDA_VISIBLE_DEVICES="", JAX_PLATFORMS="cpu")
        self._log = tempfile.TemporaryFile()
        self.process = subprocess.Popen(
            [sys.executable, str(_WORKER)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=self._log, env=env,
        )
        self._ready: dict[str, Any] | None = None

    def _receive(self) -> dict[str, Any]:
        header = self.process.stdout.read(4)
        if len(header) < 4:
            self._log.seek(0)
            log = self._log.read().decode(errors="replace")[-3000:]
            raise RuntimeError(f"Keras worker ({self.backend}) died:\n{log}")
        (length,) = struct.unpack(">I", header)
        return pickle.loads(self.process.stdout.read(length))

    def ready(self) -> dict[str, Any]:
        if self._ready is None:
            self._ready = self._receive()
        return self._ready

    def call(self, name: str, y_true: Any, y_pred: Any, *, kind: str = "function",
             grad: bool = False, sample_weight: Any = None, **kwargs: Any) -> dict[str, Any]:
        """The Keras value (and gradient w.r.t. y_pred of the summed loss) as NumPy arrays."""
        return self.request({
            "name": name, "y_true": np.asarray(y_true), "y_pred": np.asarray(y_pred),
            "kind": kind, "grad": grad, "kwargs": kwargs,
            "sample_weight": None if sample_weight is None else np.asarray(sample_weight),
        })

    def request(self, message: dict[str, Any]) -> dict[str, Any]:
        """Send one request (see ``_keras_worker.py``) and wait for its reply."""
        self.ready()
        data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
        self.process.stdin.write(struct.pack(">I", len(data)) + data)
        self.process.stdin.flush()
        return self._receive()

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.stdin.close()
            self.process.kill()  # our own child: no need to wait for TF/JAX shutdown hooks
            self.process.wait()
        self._log.close()


_workers: dict[str, KerasWorker] = {}


def keras_worker(backend: str) -> KerasWorker:
    """The session's Keras worker for ``backend`` (all backends start on first use)."""
    if importlib.util.find_spec("keras") is None:
        missing("keras")
    if importlib.util.find_spec(backend) is None:
        missing(f"{backend} (a Keras backend)")
    if not _workers:
        for name in KERAS_BACKENDS:
            _workers[name] = KerasWorker(name)
    return _workers[backend]


@pytest.fixture(scope="session", autouse=True)
def _close_keras_workers():
    yield
    for worker in _workers.values():
        worker.close()
    _workers.clear()
