"""Many writers, one account: threads (SQLite and PostgreSQL) and processes (one SQLite file).

Every writer draws keys from one shared pool, so the same request arrives from several places at once. The
account can afford exactly AFFORDABLE charges; afterwards exactly that many went through, each key charged at
most once, nothing is negative, nothing stays reserved, and the invariants hold. Lock waits are bounded
(SQLite busy timeout, PostgreSQL lock_timeout / statement_timeout, a join deadline), so a deadlock fails the
test instead of hanging it.
"""

from __future__ import annotations

import multiprocessing
import threading
from collections import Counter

import pytest
from sqlalchemy import func, select

from studio_core.models import CreditHold
from studio_core.services.ledger import LedgerService

from .conftest import assert_books_balance, make_user
from .workers import Outcome, hammer, hammer_in_process

THREADS, OPS = 8, 200
COST, PAID = 4, 370  # with the monthly allowance of 30: 400 credits, 100 charges; the 8th charge is split
AFFORDABLE = (30 + PAID) // COST
JOIN_DEADLINE_S = 120


def funded_account(database, ledger: LedgerService) -> int:
    user = make_user(database)
    ledger.ensure_monthly_allowance(user)
    ledger.grant(user, "purchase", PAID, f"purchase:hammer-{user}")
    assert ledger.balance(user).available == 30 + PAID
    return user


def run_threads(count: int, work) -> Outcome:
    results: list[Outcome | None] = [None] * count
    errors: list[BaseException] = []
    barrier = threading.Barrier(count)

    def run(index: int) -> None:
        barrier.wait()
        try:
            results[index] = work(index)
        except BaseException as exc:  # collected and reported: a failing thread must fail the test
            errors.append(exc)

    pool = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(count)]
    for t in pool:
        t.start()
    for t in pool:
        t.join(JOIN_DEADLINE_S)
    assert not [t for t in pool if t.is_alive()], "a hammer thread hung (deadlock or lock wait)"
    assert not errors, f"{len(errors)} thread(s) failed, first: {errors[0]!r}"
    return sum(results, Outcome())  # type: ignore[arg-type]


def assert_exactly_affordable(database, ledger: LedgerService, user: int, keys: list[str]) -> None:
    with database.read() as s:
        statuses = Counter(dict(s.execute(select(CreditHold.status, func.count()).where(CreditHold.user_id == user)
                                          .group_by(CreditHold.status)).all()))
        held_keys = set(s.scalars(select(CreditHold.idempotency_key).where(CreditHold.user_id == user)))
    assert statuses == Counter(posted=AFFORDABLE), statuses
    assert held_keys <= set(keys)
    bal = ledger.balance(user)
    assert (bal.allowance, bal.paid, bal.reserved, bal.available) == (0, (30 + PAID) % COST, 0, 0)
    charges = ledger.history(user, kinds=["generation"], page_size=500).items
    assert -sum(e.amount for e in charges) == AFFORDABLE * COST
    assert len({e.hold_id for e in charges}) == AFFORDABLE
    assert_books_balance(ledger)


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_threads_charge_exactly_what_is_affordable(database, ledger):
    user = funded_account(database, ledger)
    keys = [f"gen:{user}:{i}" for i in range(300)]
    total = run_threads(THREADS, lambda i: hammer(ledger, user, seed=i, ops=OPS, cost=COST, keys=keys))
    assert len(total.posted) == AFFORDABLE and not total.voided
    assert total.counts["insufficient"] > 0 and total.counts["replayed"] > 0  # it did collide on money and keys
    assert_exactly_affordable(database, ledger, user, keys)


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_threads_mixing_posts_and_voids_keep_the_books(database, ledger):
    user = funded_account(database, ledger)
    keys = [f"gen:{user}:{i}" for i in range(400)]
    total = run_threads(THREADS, lambda i: hammer(ledger, user, seed=100 + i, ops=OPS, cost=3, keys=keys,
                                                  void_rate=0.4))
    assert total.posted and total.voided and not total.posted & total.voided
    with database.read() as s:
        statuses = dict(s.execute(select(CreditHold.id, CreditHold.status).where(CreditHold.user_id == user)).all())
    assert {h for h, status in statuses.items() if status == "posted"} == total.posted
    assert {h for h, status in statuses.items() if status == "voided"} == total.voided
    bal = ledger.balance(user)
    assert bal.reserved == 0 and bal.available == 30 + PAID - 3 * len(total.posted) >= 0
    assert_books_balance(ledger)


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_two_processes_on_one_sqlite_file(tmp_path, settings, monkeypatch):
    import sys
    import types

    from studio_core.db import Database

    # A spawned child re-runs the parent's __main__; after an AppTest that is streamlit_app.py, which would
    # start a whole Studio in each child. The workers need nothing from __main__.
    monkeypatch.setitem(sys.modules, "__main__", types.ModuleType("__main__"))
    from studio_core.models import Base

    url = f"sqlite:///{tmp_path / 'shared.db'}"
    db = Database(url)
    Base.metadata.create_all(db.engine)
    ledger = LedgerService(db, settings)
    try:
        user = funded_account(db, ledger)
        keys = [f"gen:{user}:{i}" for i in range(300)]
        ctx = multiprocessing.get_context("spawn")  # a fresh interpreter: no engine or lock copied by fork
        with ctx.Pool(2) as pool:
            pending = pool.starmap_async(hammer_in_process, [
                (url, str(settings.data_dir), user, seed, 300, COST, keys) for seed in (1, 2)])
            results = pending.get(timeout=240)
        total = sum(results, Outcome())
        assert len(total.posted) == AFFORDABLE and total.counts["insufficient"] > 0
        assert_exactly_affordable(db, ledger, user, keys)
    finally:
        db.dispose()
