"""A long-lived Keras process for one backend: the conformance tests' reference.

A process has one Keras backend (chosen by KERAS_BACKEND before import), so
the tests start one worker per backend and send it requests over a pipe:
each request names a ``keras.losses`` function or class and its arguments as
NumPy arrays; the reply holds the value and, if asked, the gradient of the
summed loss with respect to ``y_pred``, both as NumPy arrays. Importing Keras
and its backend costs seconds, so this happens once per test session.

A request ``{"derivatives": {...}}`` differentiates a loss w.r.t. several arguments, to
second order (:func:`keras_derivatives`). A request ``{"fit": {...}}`` trains a small
model with a given loss (:func:`fit`). A request ``{"suite": {...}}`` runs Keras's own test file
(``keras/src/losses/losses_test.py`` of the installed Keras) in this process with
the named ``keras.losses`` classes and functions swapped for
``crossent.compat.keras``'s (see :func:`run_suite`), and replies with each test's
outcome.

Protocol: 4-byte big-endian length + pickle, both ways. Run as
``KERAS_BACKEND=jax python _keras_worker.py``.
"""

from __future__ import annotations

import os
import pickle
import struct
import sys
import traceback

import numpy as np


def _read(stream):
    header = stream.read(4)
    if len(header) < 4:
        return None
    (length,) = struct.unpack(">I", header)
    return pickle.loads(stream.read(length))


def _write(stream, message) -> None:
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(struct.pack(">I", len(data)))
    stream.write(data)
    stream.flush()


class Swapped:
    """``keras.src.losses.losses`` with some names answered by ``crossent.compat.keras``."""

    def __init__(self, original, replacement, names) -> None:
        self._original, self._replacement, self._names = original, replacement, set(names)

    def __getattr__(self, name):
        source = self._replacement if name in self._names else self._original
        return getattr(source, name)


def run_suite(classes, swapped, deselect) -> dict:
    """Keras's ``losses_test.py`` classes ``classes``, run by pytest in this process.

    The installed test module is imported under its own name and its module-level
    ``losses`` replaced, so every ``losses.X`` the tests look up is crossent's for the
    names in ``swapped`` (and Keras's otherwise); the assertions are Keras's own.
    Tests named in ``deselect`` (``Class::test``) are not run. Returns
    ``{"outcomes": {test id: "passed" | "failed" | "skipped"}, "failures": {id: text}}``.
    """
    import importlib
    import tempfile

    import pytest

    import crossent.compat.keras as replacement

    module = importlib.import_module("keras.src.losses.losses_test")
    if not isinstance(module.losses, Swapped):
        module.losses = Swapped(module.losses, replacement, swapped)
    outcomes: dict = {}
    failures: dict = {}

    class Collect:
        def pytest_collection_modifyitems(self, items, config):
            kept, dropped = [], []
            for item in items:
                (dropped if _short_id(item.nodeid) in deselect else kept).append(item)
            items[:] = kept
            config.hook.pytest_deselected(items=dropped)

        def pytest_runtest_logreport(self, report):
            test = _short_id(report.nodeid)
            if report.when == "call" or report.outcome != "passed":
                if outcomes.get(test) in (None, "passed"):
                    outcomes[test] = report.outcome
                if report.outcome == "failed":
                    failures[test] = str(report.longrepr)[-2000:]

    with tempfile.TemporaryDirectory() as directory:
        ini = os.path.join(directory, "pytest.ini")
        with open(ini, "w") as handle:
            handle.write("[pytest]\n")
        targets = [f"{module.__file__}::{name}" for name in classes]
        pytest.main(["-q", "-c", ini, "--rootdir", directory, "-p", "no:cacheprovider",
                     "-p", "no:xdist", "-p", "no:randomly", *targets], plugins=[Collect()])
    return {"outcomes": outcomes, "failures": failures}


def fit(loss, x, y, units, activation=None, epochs=2, batch_size=16, seed=0) -> dict:
    """``model.fit`` of one Dense layer with ``loss``; the per-epoch losses and final weights.

    ``loss`` is ``(source, name, kwargs)``: ``("keras", "CategoricalCrossentropy", {...})``
    for Keras's own loss class, ``("compat", ...)`` for ``crossent.compat.keras``'s class,
    or ``("core", "cross_entropy", {...})`` for ``lambda y_true, y_pred:
    crossent.<name>(y_pred, y_true, **kwargs)``. The weights start from a fixed draw, the
    data are not shuffled and the last batch is partial, so two losses with the same
    numbers and gradients train to the same weights.
    """
    import keras

    import crossent
    import crossent.compat.keras

    source, name, kwargs = loss
    if source == "keras":
        loss_fn = getattr(keras.losses, name)(**kwargs)
    elif source == "compat":
        loss_fn = getattr(crossent.compat.keras, name)(**kwargs)
    else:
        function = getattr(crossent, name)

        def loss_fn(y_true, y_pred, function=function, kwargs=kwargs):
            return function(y_pred, y_true, **kwargs)

    rng = np.random.default_rng(seed)
    model = keras.Sequential([keras.Input((x.shape[1],)),
                              keras.layers.Dense(units, activation=activation)])
    model.set_weights([rng.normal(size=w.shape).astype("float32") * 0.5
                       for w in model.get_weights()])
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.5), loss=loss_fn)
    history = model.fit(x, y, epochs=epochs, batch_size=batch_size, shuffle=False, verbose=0)
    return {"history": np.asarray(history.history["loss"]),
            "weights": [np.asarray(w) for w in model.get_weights()]}


def keras_derivatives(backend, name, arrays, wrt, kwargs=None, kind="function", seed=0) -> dict:
    """``_derivatives.derivatives`` of ``keras.losses.<name>`` on this process's backend.

    ``arrays`` holds ``y_true``, ``y_pred`` and, for a class, ``sample_weight``; ``wrt``
    names the ones to differentiate (the first gets the second derivatives).
    """
    import keras
    from _derivatives import derivatives  # this script's folder (sys.path[0])

    kwargs = kwargs or {}
    if kind == "class":
        loss = getattr(keras.losses, name)(**kwargs)

        def function(y_true, y_pred, sample_weight=None):
            return loss(y_true, y_pred, sample_weight=sample_weight)
    else:
        def function(y_true, y_pred):
            return getattr(keras.losses, name)(y_true, y_pred, **kwargs)

    return derivatives(backend, function, arrays, tuple(wrt), seed)


def _torch_tensor(array):
    """``torch.tensor(array)``, also for ml_dtypes' bfloat16 (which torch cannot read)."""
    import torch

    if array.dtype.name == "bfloat16":
        return torch.tensor(array.astype(np.float32)).to(torch.bfloat16)
    return torch.tensor(array)


def _numpy(value):
    """A backend's tensor as NumPy; torch's bfloat16 becomes ml_dtypes' bfloat16."""
    if hasattr(value, "detach"):
        import torch

        value = value.detach()
        if value.dtype == torch.bfloat16:
            import ml_dtypes

            return value.float().numpy().astype(ml_dtypes.bfloat16)
        return value.numpy()
    return np.asarray(value)


def _short_id(nodeid: str) -> str:
    """``Class::test`` of a pytest node id (the file path dropped)."""
    return "::".join(nodeid.split("::")[1:])


def main() -> None:
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    sys.stdout = sys.stderr  # keep the pipe clean of library chatter
    import keras  # noqa: E402  (backend fixed by KERAS_BACKEND)

    backend = keras.backend.backend()

    if backend == "torch":
        import torch

        def value_and_grad(fn, y_true, y_pred, want_grad):
            pred = _torch_tensor(y_pred).requires_grad_(bool(want_grad))
            true = _torch_tensor(y_true)
            value = fn(true, pred)
            grad = None
            if want_grad:
                (grad,) = torch.autograd.grad(value.sum(), pred, allow_unused=True)
                grad = None if grad is None else _numpy(grad)
            return _numpy(value), grad

    elif backend == "jax":
        import jax
        import jax.numpy as jnp

        jax.config.update("jax_enable_x64", True)

        def value_and_grad(fn, y_true, y_pred, want_grad):
            true = jnp.asarray(y_true)
            value = fn(true, jnp.asarray(y_pred))
            grad = None
            if want_grad:
                grad = np.asarray(jax.grad(lambda p: fn(true, p).sum())(jnp.asarray(y_pred)))
            return np.asarray(value), grad

    elif backend == "tensorflow":
        import tensorflow as tf

        def value_and_grad(fn, y_true, y_pred, want_grad):
            pred = tf.constant(y_pred)
            true = tf.constant(y_true)
            with tf.GradientTape() as tape:
                tape.watch(pred)
                value = fn(true, pred)
                total = tf.reduce_sum(value)
            grad = tape.gradient(total, pred) if want_grad else None
            # (.numpy(): np.asarray of a bfloat16 scalar tensor fails)
            return value.numpy(), None if grad is None else grad.numpy()

    else:
        raise SystemExit(f"unsupported backend {backend}")

    _write(stdout, {"ready": backend, "version": keras.__version__})
    while True:
        request = _read(stdin)
        if request is None:
            return
        if "suite" in request or "fit" in request or "derivatives" in request:
            try:
                if "suite" in request:
                    _write(stdout, run_suite(**request["suite"]))
                elif "fit" in request:
                    _write(stdout, fit(**request["fit"]))
                else:
                    _write(stdout, keras_derivatives(backend, **request["derivatives"]))
            except Exception as error:
                _write(stdout, {"error": f"{type(error).__name__}: {error}",
                                "traceback": traceback.format_exc()})
            continue
        try:
            name, y_true, y_pred = request["name"], request["y_true"], request["y_pred"]
            kwargs = request.get("kwargs", {})
            if request.get("kind") == "class":
                loss = getattr(keras.losses, name)(**kwargs)
                weight = request.get("sample_weight")

                def fn(t, p, loss=loss, weight=weight):
                    return loss(t, p, sample_weight=weight)

            else:
                function = getattr(keras.losses, name)

                def fn(t, p, function=function, kwargs=kwargs):
                    return function(t, p, **kwargs)

            value, grad = value_and_grad(fn, y_true, y_pred, request.get("grad", False))
            _write(stdout, {"value": value, "grad": grad})
        except Exception as error:  # report to the test, keep serving
            _write(stdout, {"error": f"{type(error).__name__}: {error}",
                            "traceback": traceback.format_exc()})


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    main()
