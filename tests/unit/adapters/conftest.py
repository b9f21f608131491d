"""Fixtures for the adapter tests: stand-in servers, adapters pointed at them, and the local adapters.

Timeouts are short (``TIMEOUT_S``) so that every failure mode is proven to end within its timeout quickly.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fakes.base import FakeFiles

TIMEOUT_S = 0.5
# Time a failing call may take beyond its timeout (thread scheduling, one best-effort cleanup call).
SLACK_S = 1.0
MAX_DOWNLOAD = 200_000
MAX_PIXELS = 4096 * 4096


@pytest.fixture
def file_server() -> Iterator[FakeFiles]:
    with FakeFiles() as server:
        yield server
