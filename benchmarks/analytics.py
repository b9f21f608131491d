"""The analytics dashboard's queries against one full scan of the events table, measured in the same run.

With ``--scale 100`` (1,000,000 events, ~100,000 generations, a year of history from ``seed-demo``), every
statement the dashboard runs for a ``--days``-day range is timed cold -- a new engine and connection for each
statement, so nothing is cached between measured runs but the operating system's and the database server's
page caches -- beside ``SELECT COUNT(*), SUM(LENGTH(name)) FROM analytics_events`` (one full scan). Each
figure is the median of ``--runs`` runs. The target (issue #7): all dashboard queries together <= 3x one scan.

    python benchmarks/analytics.py                                    # SQLite (+ PostgreSQL if STUDIO_TEST_DATABASE_URL)
    python benchmarks/analytics.py --sqlite /tmp/analytics.db         # keep the seeded file; later runs reuse it
    python benchmarks/analytics.py --pg postgresql://postgres@127.0.0.1:5432/studio_h4 --no-sqlite
    python benchmarks/analytics.py --granularity week --days 365

On PostgreSQL the data lives in its own schema (``analytics_bench``), created on first use and kept for later
runs (``--drop`` removes it afterwards). Kept data is brought to the current schema by the migrations (which
backfill the dashboard's rollups); ``--fresh`` seeds it again from scratch instead.

The dashboard's rollups (see services/analytics.py) are filled by the seeder exactly as the app keeps them
as jobs end and events arrive, so they are part of the data, not of the measured work.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import text

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # runnable from a checkout

from benchmarks._schema import drop_schema, schema_database  # noqa: E402
from studio_core.bootstrap import Studio  # noqa: E402
from studio_core.config import load_settings, resolve_providers
from studio_core.db import Database
from studio_core.migrate import upgrade_to_head
from studio_core.services.accounts import UserView
from studio_core.services.analytics import DASHBOARD_QUERIES, AnalyticsService, Period
from studio_core.services.demo import seed_demo

PG_SCHEMA = "analytics_bench"
FULL_SCAN = "SELECT COUNT(*), SUM(LENGTH(name)) FROM analytics_events"
TARGET = 3.0
ADMIN = UserView(id=0, email="bench@example.com", display_name="Bench", role="admin", referral_code="-",
                 created_at=datetime.now(UTC))


def _database(url: str) -> Database:
    if url.startswith("sqlite"):
        return Database(url)
    return schema_database(url, PG_SCHEMA, fresh=False)


def _settings(url: str, data_dir: Path):
    return load_settings(_env_file=None, data_dir=data_dir, database_url=url, environment="development",
                         enhancer="local", generator="local", storage="local", payments="sandbox")


def prepare(url: str, data_dir: Path, scale: int) -> None:
    """Schema at head, catalog, demo accounts and (once) the history."""
    settings = _settings(url, data_dir)
    db = _database(url)
    try:
        upgrade_to_head(db)
        studio = Studio(settings=settings, db=db, providers=resolve_providers(settings))
        started = time.perf_counter()
        for line in seed_demo(studio, scale=scale, rng_seed=7):
            if line.startswith(("History", "Ledger")):
                print("   ", line)
        print(f"    ready in {time.perf_counter() - started:.1f}s")
    finally:
        db.dispose()


def _timed(url: str, work: Callable[[Database], object]) -> float:
    db = _database(url)  # a new engine per measurement: no connection, statement or page cache carried over
    try:
        with db.engine.connect() as conn:  # connect (and set the schema) outside the timed part
            conn.execute(text("SELECT 1"))
        started = time.perf_counter()
        work(db)
        return time.perf_counter() - started
    finally:
        db.dispose()


def measure(url: str, days: int, granularity: str, runs: int, data_dir: Path
            ) -> tuple[float, dict[str, float], Period, dict]:
    db = _database(url)
    with db.engine.connect() as conn:
        last = conn.execute(text("SELECT MAX(created_at) FROM analytics_events")).scalar_one()
        counts = {t: conn.execute(text(f"SELECT COUNT(*) FROM {t}")).scalar_one()
                  for t in ("analytics_events", "generated_images", "credit_ledger", "users")}
    db.dispose()
    last_day = (last if isinstance(last, datetime) else datetime.fromisoformat(str(last))).date()
    period = Period.last(days, last_day, granularity)  # type: ignore[arg-type]
    with db.engine.connect() as conn:  # how much of the data the range (and the previous one) covers
        for table in ("analytics_events", "generated_images"):
            for key, start in (("in range", period.start_at), ("with previous", period.previous.start_at)):
                counts[f"{table} {key}"] = conn.execute(
                    text(f"SELECT COUNT(*) FROM {table} WHERE created_at >= :s AND created_at < :e"),
                    {"s": start.replace(tzinfo=None), "e": period.end_at.replace(tzinfo=None)}).scalar_one()
    db.dispose()
    scans: list[float] = []
    per_query: dict[str, list[float]] = {name: [] for name in DASHBOARD_QUERIES}
    whole: list[float] = []
    settings = _settings(url, data_dir)
    for _ in range(runs):
        scans.append(_timed(url, lambda db: db.engine.connect().execute(text(FULL_SCAN)).all()))
        for name in DASHBOARD_QUERIES:
            per_query[name].append(_timed(
                url, lambda db, name=name: AnalyticsService(db, None).run_query(ADMIN, name, period)))  # type: ignore[arg-type]
        whole.append(_timed(url, lambda db: AnalyticsService(db, settings).dashboard(ADMIN, period)))
    counts["whole dashboard"] = statistics.median(whole)
    return statistics.median(scans), {n: statistics.median(v) for n, v in per_query.items()}, period, counts


def report(backend: str, scan: float, queries: dict[str, float], period: Period, counts: dict) -> bool:
    total = sum(queries.values())
    print(f"\n{backend}: {counts['analytics_events']:,} events, {counts['generated_images']:,} generations, "
          f"{counts['credit_ledger']:,} ledger entries, {counts['users']:,} users; dashboard range "
          f"{period.start} .. {period.end} ({period.days} days, by {period.granularity})")
    for table in ("analytics_events", "generated_images"):
        share = counts[f"{table} in range"] / max(counts[table], 1)
        both = counts[f"{table} with previous"] / max(counts[table], 1)
        print(f"  {table}: {share:.0%} of the rows fall in the range, {both:.0%} with the previous period")
    print(f"  {'full scan of analytics_events':32s} {scan * 1000:8.1f} ms   1.00x")
    for name, seconds in queries.items():
        print(f"  {name:32s} {seconds * 1000:8.1f} ms  {seconds / scan:5.2f}x")
    ok = total / scan <= TARGET
    print(f"  {'all dashboard queries':32s} {total * 1000:8.1f} ms  {total / scan:5.2f}x   "
          f"(target <= {TARGET:.0f}x: {'met' if ok else 'NOT met'})")
    whole = counts["whole dashboard"]
    print(f"  {'(the page: dashboard() at once)':32s} {whole * 1000:8.1f} ms  {whole / scan:5.2f}x   "
          "(every statement in one cold connection and snapshot, with the assembly; for information)")
    return ok


def discard(url: str) -> None:
    """Forget a kept data set (``--fresh``)."""
    if url.startswith("sqlite"):
        path = Path(url.removeprefix("sqlite:///"))
        for stale in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
            stale.unlink(missing_ok=True)
        return
    drop_schema(url, PG_SCHEMA)


def run_backend(backend: str, url: str, args: argparse.Namespace, data_dir: Path) -> bool:
    if args.fresh:
        discard(url)
    print(f"{backend}: preparing {url.split('@')[-1]} (scale {args.scale}) ...")
    prepare(url, data_dir, args.scale)
    scan, queries, period, counts = measure(url, args.days, args.granularity, args.runs, data_dir)
    return report(backend, scan, queries, period, counts)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=int, default=100, help="seed-demo scale (100 = 1,000,000 events)")
    parser.add_argument("--days", type=int, default=90, help="the dashboard's date range")
    parser.add_argument("--granularity", choices=("day", "week", "month"), default="day")
    parser.add_argument("--runs", type=int, default=5, help="measured runs (the median is reported)")
    parser.add_argument("--sqlite", help="SQLite file to seed or reuse (default: a temporary one)")
    parser.add_argument("--no-sqlite", action="store_true", help="skip SQLite")
    parser.add_argument("--pg", default=os.environ.get("STUDIO_TEST_DATABASE_URL"),
                        help="PostgreSQL URL (default: STUDIO_TEST_DATABASE_URL); data in schema analytics_bench")
    parser.add_argument("--fresh", action="store_true", help="seed again: discard a kept SQLite file / schema first")
    parser.add_argument("--drop", action="store_true", help="drop the PostgreSQL schema afterwards")
    args = parser.parse_args(argv)
    ok = True
    with tempfile.TemporaryDirectory(prefix="studio-analytics-bench-") as tmp:
        data_dir = Path(tmp) / "data"
        if not args.no_sqlite:
            path = Path(args.sqlite) if args.sqlite else Path(tmp) / "analytics.db"
            ok &= run_backend("SQLite", f"sqlite:///{path.resolve()}", args, data_dir)
        if args.pg:
            try:
                ok &= run_backend("PostgreSQL", args.pg, args, data_dir)
            finally:
                if args.drop:
                    discard(args.pg)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
