"""Database.run_raw(), the ledger's hot write path, on SQLite and PostgreSQL: each call all or nothing, calls
batched by SQLite's group commit still isolated from one another, a dead PostgreSQL connection retried on a
fresh one, and the misuses that would hang refused at once."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import Integer, String, bindparam, func, insert, select, text
from sqlalchemy.exc import IntegrityError

from studio_core.db import Database
from studio_core.models import AnalyticsDailyEvents, Base
from tests.conftest import _fresh_pg

_events = AnalyticsDailyEvents.__table__
_ADD = insert(_events).values(day=func.current_date(), name=bindparam("p_name", type_=String()),
                              n=bindparam("p_n", type_=Integer()))
_COUNT = select(func.count()).select_from(_events)


def _names(database) -> list[str]:
    with database.read() as s:
        return sorted(s.scalars(select(_events.c.name)))


def test_a_call_that_fails_leaves_nothing_behind(database):
    def half_then_fail(tx):
        tx.execute(_ADD, {"p_name": "first", "p_n": 1})
        raise ValueError("changed my mind")

    with pytest.raises(ValueError, match="changed my mind"):
        database.run_raw(half_then_fail)
    assert _names(database) == []
    assert database.run_raw(lambda tx: tx.execute(_ADD, {"p_name": "kept", "p_n": 1}).rowcount) == 1
    assert _names(database) == ["kept"]


def test_concurrent_calls_each_get_their_own_result_and_failures_stay_their_own(database):
    """Many threads at once (SQLite batches them into shared transactions): every call that should commit
    does, every failing call -- a Python error or a constraint violation -- undoes only itself."""
    threads, per_thread = 8, 25
    results: dict[tuple[int, int], object] = {}
    barrier = threading.Barrier(threads)

    def caller(t: int) -> None:
        barrier.wait()
        for i in range(per_thread):
            name = f"t{t}-{i}"
            try:
                if i % 5 == 3:  # a duplicate primary key (day, name): the database refuses it
                    results[t, i] = database.run_raw(lambda tx, name=name: [
                        tx.execute(_ADD, {"p_name": name, "p_n": 1}),
                        tx.execute(_ADD, {"p_name": name, "p_n": 2})])
                elif i % 5 == 4:
                    results[t, i] = database.run_raw(lambda tx, name=name: [
                        tx.execute(_ADD, {"p_name": name, "p_n": 1}), 1 / 0])
                else:
                    results[t, i] = database.run_raw(
                        lambda tx, name=name: tx.execute(_ADD, {"p_name": name, "p_n": 1}).rowcount)
            except (IntegrityError, ZeroDivisionError) as exc:
                results[t, i] = type(exc)

    pool = [threading.Thread(target=caller, args=(t,)) for t in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join(60)
        assert not thread.is_alive()
    expected = {(t, i): {3: IntegrityError, 4: ZeroDivisionError}.get(i % 5, 1)
                for t in range(threads) for i in range(per_thread)}
    assert results == expected
    assert _names(database) == sorted(f"t{t}-{i}" for t in range(threads) for i in range(per_thread)
                                      if i % 5 < 3)


def test_one_statement_means_one(database):
    def two(tx):
        tx.execute(_ADD, {"p_name": "a", "p_n": 1})
        tx.execute(_ADD, {"p_name": "b", "p_n": 1})

    with pytest.raises(RuntimeError, match="one statement"):
        database.run_raw(two, one_statement=True)
    # the second never ran (on PostgreSQL the first was already its own committed transaction)
    assert "b" not in _names(database)


def test_run_raw_inside_a_write_transaction_is_refused_instead_of_hanging(tmp_path):
    """SQLite: the thread already holds the process's write lock, which the raw write would wait for forever."""
    database = Database(f"sqlite:///{tmp_path / 'lock.db'}")
    Base.metadata.create_all(database.engine)
    try:
        with database.write() as s:
            s.execute(text("SELECT 1"))
            with pytest.raises(RuntimeError, match="inside a write"):
                database.run_raw(lambda tx: tx.execute(_COUNT).scalar())
        assert database.run_raw(lambda tx: tx.execute(_COUNT).scalar()) == 0  # and the path still works
    finally:
        database.dispose()


@pytest.mark.postgres
def test_a_dead_postgresql_connection_is_replaced_and_the_call_retried():
    database = _fresh_pg()
    try:
        # leaves one pooled raw connection behind, and tells which server process serves it
        pid = database.run_raw(lambda tx: tx.execute(select(func.pg_backend_pid())).scalar(), one_statement=True)
        with database.engine.begin() as conn:  # the server drops it, as on a restart
            conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        assert database.run_raw(lambda tx: tx.execute(_ADD, {"p_name": "after", "p_n": 1}).rowcount) == 1
        assert _names(database) == ["after"]
        assert database.run_raw(lambda tx: tx.execute(select(func.pg_backend_pid())).scalar()) != pid
    finally:
        database.dispose()
