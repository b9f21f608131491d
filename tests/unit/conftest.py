"""Unit tests read settings from nothing but what the test sets."""

from __future__ import annotations

import os

import pytest


@pytest.fixture
def clean_env(monkeypatch, tmp_path):
    """No STUDIO_* variables from the developer's shell, and no .env: the working directory is empty."""
    for name in list(os.environ):
        if name.startswith("STUDIO_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
