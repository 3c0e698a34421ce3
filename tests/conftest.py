"""Hypothesis profiles. `make test` (and CI) explore the same examples on every run, so a submission
passes or fails on its code, not on the draw; `make fuzz` draws new examples each run, many more."""

import os

from hypothesis import settings

settings.register_profile("repeatable", derandomize=True, print_blob=True)
settings.register_profile("fuzz", derandomize=False, print_blob=True)
settings.load_profile(os.environ.get("VAGAL_HYPOTHESIS_PROFILE", "repeatable"))

import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def _library_in_tmp(tmp_path_factory, monkeypatch):
    """Every test's `vagal stream`/`demo` imports go to a temporary session library, never the user's."""
    monkeypatch.setenv("VAGAL_LIBRARY", str(tmp_path_factory.mktemp("library") / "library.sqlite"))
