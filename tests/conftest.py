"""Shared test set-up: the hypothesis profile and the report header.

The shared helpers (optional frameworks, printed-digit comparisons, finite
differences) live in ``crossent_testing.py`` beside this file.

Expected values in these tests come from the seeds, hand derivation, float64 or
mpmath references, central finite differences, or the real frameworks (PyTorch
2.13, JAX), never from crossent's own output.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

from crossent_testing import jax, torch

# Modest example counts keep the whole core suite within a couple of minutes on two
# shared cores; derandomized so CI runs are reproducible. HYPOTHESIS_PROFILE=thorough
# draws more (and fresh) examples locally.
settings.register_profile(
    "crossent",
    max_examples=30,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile(
    "thorough",
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "crossent"))


def pytest_report_header(config) -> str:
    """The reference frameworks' versions (the differential tests target PyTorch 2.13)."""
    versions = [f"numpy {np.__version__}"]
    if torch is not None:
        versions.append(f"torch {torch.__version__}")
    if jax is not None:
        versions.append(f"jax {jax.__version__}")
    return "crossent references: " + ", ".join(versions)


@pytest.fixture
def x64():
    """JAX in float64 for one test (``jax_enable_x64``), restored afterwards."""
    config = pytest.importorskip("jax").config
    previous = config.jax_enable_x64
    config.update("jax_enable_x64", True)
    yield
    config.update("jax_enable_x64", previous)
