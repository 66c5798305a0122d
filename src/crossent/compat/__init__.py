"""Each framework's own numbers, computed by crossent's core.

``from crossent.compat import torch as T, keras as K, tf as TF, optax as O, sklearn as S``:
the same names, argument order and defaults as the framework, the same numbers
(shape, reduction, dtype), on NumPy, PyTorch (with autograd) and JAX arrays.
None of these modules imports its framework; :func:`crossent.compare` and the
conformance tests (tests/conformance/) do, to check them. docs/conventions.md
lists every difference between the frameworks, with its source.
"""

from . import keras, optax, sklearn, tf, torch

__all__ = ["keras", "optax", "sklearn", "tf", "torch"]
