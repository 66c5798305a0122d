"""The conformance helpers: a missing framework skips locally and fails in CI."""

from __future__ import annotations

import pytest

from . import conftest


def test_missing_framework_skips_outside_ci(monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="not_a_framework is not installed"):
        conftest.require("not_a_framework")


@pytest.mark.parametrize("value", ["true", "1", "TRUE"])
def test_missing_framework_fails_in_ci(monkeypatch, value):
    monkeypatch.setenv("CI", value)
    with pytest.raises(pytest.fail.Exception, match="CI=true, so a skipped conformance test"):
        conftest.require("not_a_framework")


def test_installed_framework_is_returned():
    assert conftest.require("numpy").__name__ == "numpy"
