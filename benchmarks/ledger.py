"""Ledger throughput: reserve+post cycles per second against bare single-row UPDATE transactions.

Both are measured in the same run, through the same engine, with the same number of threads and the same
number of operations, and printed as a ratio (target: >= 0.3). A cycle is two ledger transactions
(reserve, then post); the baseline is one ``UPDATE ... SET n = n + 1 WHERE id = ?`` transaction on a bare
Connection, begun the way the ledger's writes begin (``BEGIN IMMEDIATE`` on SQLite). For context the same
UPDATE is also timed through ``Database.write()`` (the Session every write of the app goes through). Ledger
and baselines alternate for --rounds rounds and each keeps its best round, so a busy machine skews neither
side. After the run the ledger's invariants are checked.

    python benchmarks/ledger.py                      # SQLite; PostgreSQL too when STUDIO_TEST_DATABASE_URL is set
    python benchmarks/ledger.py --pg postgresql://postgres@127.0.0.1:5432/test --cycles 500
    python benchmarks/ledger.py --shared-account     # all threads on one account (worst-case contention)

On PostgreSQL the benchmark works in its own schema (``studio_bench``), created and dropped by the run.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import text

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # runnable from a checkout

from benchmarks._schema import drop_schema, schema_database  # noqa: E402
from benchmarks._threads import run_threads  # noqa: E402
from studio_core.config import Settings, load_settings
from studio_core.db import _WRITE_OPTION, Database
from studio_core.models import Base, CreditAccount, User
from studio_core.services.ledger import LedgerService

PG_SCHEMA = "studio_bench"


@dataclass
class Result:
    backend: str
    operations: int  # per round, for each of the three
    ledger_s: float
    baseline_s: float
    session_baseline_s: float
    invariants_ok: bool
    invariant_detail: str

    def per_s(self, seconds: float) -> float:
        return self.operations / seconds

    @property
    def ratio(self) -> float:
        return self.baseline_s / self.ledger_s


def _make_accounts(db: Database, count: int, credits: int) -> list[int]:
    ids = []
    with db.write() as s:
        for i in range(count):
            user = User(email=f"bench{i}@example.com", display_name=f"bench {i}", password_hash="x",
                        referral_code=f"BENCH{i:04d}")
            s.add(user)
            s.flush()
            s.add(CreditAccount(user_id=user.id))
            ids.append(user.id)
    return ids


def bench(db: Database, settings: Settings, *, threads: int, cycles: int, shared: bool, backend: str,
          rounds: int) -> Result:
    Base.metadata.create_all(db.engine)
    ledger = LedgerService(db, settings)
    accounts = _make_accounts(db, 1 if shared else threads, 0)
    for user_id in accounts:
        ledger.grant(user_id, "purchase", 1_000_000, f"bench-funds:{user_id}")
        ledger.ensure_monthly_allowance(user_id)

    round_no = 0

    def ledger_work(index: int) -> None:
        user_id = accounts[0 if shared else index]
        for n in range(cycles):
            hold = ledger.reserve(user_id, 1, f"bench:{round_no}:{index}:{n}", reference="bench")
            ledger.post(hold.id)

    with db.engine.begin() as conn:
        conn.execute(text("CREATE TABLE IF NOT EXISTS bench_counter (id INTEGER PRIMARY KEY, n INTEGER NOT NULL)"))
        conn.execute(text("DELETE FROM bench_counter"))
        conn.execute(text("INSERT INTO bench_counter (id, n) VALUES (:id, 0)"),
                     [{"id": i} for i in range(threads)])
    # The same engine and the same way of beginning a write transaction as Database.write() uses.
    writer = db.engine.execution_options(**{_WRITE_OPTION: True})
    bump = text("UPDATE bench_counter SET n = n + 1 WHERE id = :id")

    def baseline_work(index: int) -> None:
        row = 0 if shared else index
        for _ in range(cycles):
            with writer.begin() as conn:
                conn.execute(bump, {"id": row})

    def session_baseline_work(index: int) -> None:
        row = 0 if shared else index
        for _ in range(cycles):
            with db.write() as s:
                s.execute(bump, {"id": row})

    best = {ledger_work: float("inf"), baseline_work: float("inf"), session_baseline_work: float("inf")}
    for round_no in range(-1, rounds):  # round -1 warms pools and statement caches; it is not counted
        for work in best:
            elapsed = run_threads(threads, work)
            if round_no >= 0:
                best[work] = min(best[work], elapsed)
    results = ledger.check_invariants()
    bad = [f"{name}: {detail}" for name, ok, detail in results if not ok]
    return Result(backend=backend, operations=threads * cycles, ledger_s=best[ledger_work],
                  baseline_s=best[baseline_work], session_baseline_s=best[session_baseline_work],
                  invariants_ok=not bad, invariant_detail="; ".join(bad) or f"{len(results)} invariants hold")


def _print(result: Result, threads: int, shared: bool, rounds: int) -> None:
    where = "one shared account" if shared else f"{threads} accounts"
    print(f"{result.backend}: {threads} threads, {result.operations} operations per round, {where}, "
          f"best of {rounds} rounds")
    print(f"  ledger reserve+post cycles      : {result.per_s(result.ledger_s):9.1f} /s")
    print(f"  bare single-row UPDATE txs      : {result.per_s(result.baseline_s):9.1f} /s")
    print(f"  ratio                           : {result.ratio:9.2f}  (target >= 0.30)")
    print(f"  (same UPDATE via Database.write : {result.per_s(result.session_baseline_s):9.1f} /s, "
          f"ratio {result.session_baseline_s / result.ledger_s:.2f})")
    print(f"  invariants                 : {'OK' if result.invariants_ok else 'VIOLATED'} "
          f"({result.invariant_detail})")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--cycles", type=int, default=250, help="reserve+post cycles per thread and round")
    parser.add_argument("--rounds", type=int, default=5, help="timed rounds; each side keeps its best")
    parser.add_argument("--pg", default=os.environ.get("STUDIO_TEST_DATABASE_URL"),
                        help="PostgreSQL URL (default: $STUDIO_TEST_DATABASE_URL; omitted: SQLite only)")
    parser.add_argument("--shared-account", action="store_true",
                        help="all threads charge one account (and the baseline updates one row)")
    args = parser.parse_args(argv)
    settings = load_settings(_env_file=None, data_dir=Path(tempfile.gettempdir()) / "studio-bench")
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        db = Database(f"sqlite:///{Path(tmp) / 'bench.db'}")
        try:
            results.append(bench(db, settings, threads=args.threads, cycles=args.cycles,
                                 shared=args.shared_account, backend="sqlite", rounds=args.rounds))
        finally:
            db.dispose()
    if args.pg:
        db = schema_database(args.pg, PG_SCHEMA, fresh=True)
        try:
            results.append(bench(db, settings, threads=args.threads, cycles=args.cycles,
                                 shared=args.shared_account, backend="postgresql", rounds=args.rounds))
        finally:
            db.dispose()
            drop_schema(args.pg, PG_SCHEMA)
    for result in results:
        _print(result, args.threads, args.shared_account, args.rounds)
    return 0 if all(r.invariants_ok for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
