"""A long-lived Keras process for one backend: the conformance tests' reference.

A process has one Keras backend (chosen by KERAS_BACKEND before import), so
the tests start one worker per backend and send it requests over a pipe:
each request names a ``keras.losses`` function or class and its arguments as
NumPy arrays; the reply holds the value and, if asked, the gradient of the
summed loss with respect to ``y_pred``, both as NumPy arrays. Importing Keras
and its backend costs seconds, so this happens once per test session.

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


def main() -> None:
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    sys.stdout = sys.stderr  # keep the pipe clean of library chatter
    import keras  # noqa: E402  (backend fixed by KERAS_BACKEND)

    backend = keras.backend.backend()

    if backend == "torch":
        import torch

        def value_and_grad(fn, y_true, y_pred, want_grad):
            pred = torch.tensor(y_pred, requires_grad=bool(want_grad))
            true = torch.tensor(y_true)
            value = fn(true, pred)
            grad = None
            if want_grad:
                (grad,) = torch.autograd.grad(value.sum(), pred, allow_unused=True)
                grad = None if grad is None else grad.detach().numpy()
            return value.detach().numpy(), grad

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
            return np.asarray(value), None if grad is None else np.asarray(grad)

    else:
        raise SystemExit(f"unsupported backend {backend}")

    _write(stdout, {"ready": backend, "version": keras.__version__})
    while True:
        request = _read(stdin)
        if request is None:
            return
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
