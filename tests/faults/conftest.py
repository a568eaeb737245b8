"""Shared fixtures of the attribution fault tests: one small catalogue built once, a fresh copy per test."""

from __future__ import annotations

import shutil

import pytest
from tests.attribution.catalogue import build, write_catalogue, write_config


@pytest.fixture(scope="session")
def built(tmp_path_factory):
    """A catalogue, its config (``cfg.yaml``) and a finished run (``run/``), built once per session."""
    base = tmp_path_factory.mktemp("catalogue_run")
    write_catalogue(base)
    result = build(write_config(base), base / "run")
    assert result.exit_code == 0, result.output
    return base


@pytest.fixture
def work(built, tmp_path):
    """A private copy of :func:`built` that a test may damage."""
    shutil.copytree(built, tmp_path / "w")
    return tmp_path / "w"
