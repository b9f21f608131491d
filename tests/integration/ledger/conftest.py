"""Fixtures for the ledger, wallet and referral tests.

``ledger`` is a LedgerService on the ``database`` fixture (SQLite, then PostgreSQL) with a clock the test
moves by hand. Every test that uses it ends with the full invariant check: a test that moves money and leaves
the books unbalanced fails even if its own assertions passed.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest

from studio_core.config import Settings
from studio_core.db import Database
from studio_core.models import CreditAccount, User
from studio_core.services.ledger import LedgerService

START = datetime(2025, 3, 14, 12, 0, tzinfo=UTC)
_emails = itertools.count(1)


@dataclass
class Clock:
    now: datetime = field(default=START)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


def make_user(db: Database, *, role: str = "creator", referred_by: int | None = None) -> int:
    """A user and an empty credit account, inserted directly (no argon2 hashing: these tests are about money)."""
    n = next(_emails)
    with db.write() as s:
        user = User(email=f"user{n}@example.com", display_name=f"User {n}", password_hash="not-a-hash",
                    role=role, referral_code=f"T{n:07d}", referred_by_id=referred_by)
        s.add(user)
        s.flush()
        s.add(CreditAccount(user_id=user.id))
        return user.id


def assert_books_balance(ledger: LedgerService, user_id: int | None = None) -> None:
    bad = [f"{name}: {detail}" for name, ok, detail in ledger.check_invariants(user_id) if not ok]
    assert not bad, "ledger invariants violated:\n" + "\n".join(bad)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def ledger_settings(settings: Settings) -> Settings:
    return settings


@pytest.fixture
def ledger(database: Database, ledger_settings: Settings, clock: Clock, request) -> Iterator[LedgerService]:
    service = LedgerService(database, ledger_settings, clock=clock)
    yield service
    if "corrupts_ledger" not in request.keywords:
        assert_books_balance(service)


def pytest_configure(config):
    config.addinivalue_line("markers", "corrupts_ledger: the test breaks the books on purpose; skip the "
                                       "closing invariant check")
