"""The dashboard's rollups are kept exactly: each ended job is counted once, in the transaction that ends it,
whatever path ends it (success, failure, cancel, restart) and however often a worker or a user retries; the
latency column is what the user waited; tracked events are counted per day; the migration backfills them all
from existing rows. Every check compares the rollups with a recount of the rows themselves, on both
databases."""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

import pytest
from alembic import command
from sqlalchemy import text

from studio_core.migrate import alembic_config, upgrade_to_head
from studio_core.ports import JobStatus
from studio_core.services.analytics import Event, Period
from studio_core.services.generation import new_request_key
from tests.integration.analytics.conftest import (
    at,
    event_counts,
    expected_event_counts,
    expected_rollups,
    latencies,
    rollups,
)
from tests.integration.generation.fakes import ScriptedGenerator
from tests.integration.generation.test_generation_service import World, req
from tests.integration.test_schema import empty_database  # noqa: F401 - the fixture of the migration tests


# -- the generation service keeps them -------------------------------------------------------------------------
@dataclass
class StepClock:
    now: datetime = field(default_factory=lambda: datetime(2025, 3, 3, 23, 59, 55, tzinfo=UTC))

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def gen(database, settings):
    settings.monthly_allowance = 50
    settings.generation_timeout_s = 30
    settings.max_concurrent_jobs_per_user = 3
    w = World(database, settings)
    w.clock = StepClock()
    w.service = w.make_service(clock=w.clock)
    return w


def submit(w, **kw):
    job = w.service.submit(w.user.id, req(**kw), new_request_key())
    w.clock.advance(61)  # the per-minute limit counts by the service's clock
    return job


def test_each_way_a_job_ends_counts_it_once_in_the_right_rows(gen):
    w = gen
    day = date(2025, 3, 3)
    ok = w.service.submit(w.user.id, req(tier="premium2", enhanced_prompt="a lighthouse, golden hour"),
                          new_request_key())
    w.clock.advance(7.25)  # across midnight: the job counts on the day it was requested
    w.service.run_job(ok.id)
    assert w.service.get(w.user.id, ok.id).finished_at.date() == day + timedelta(days=1)
    w.clock.advance(61)

    w.generator.script = ["running", "failed"]
    failed = submit(w)
    w.service.run_job(failed.id)
    canceled = submit(w)
    w.service.cancel(w.user.id, canceled.id)

    outcomes, sources = rollups(w.db)
    assert outcomes == Counter({(day, "premium2", "succeeded", "scripted", ""): 1,
                                (day + timedelta(days=1), "standard", "failed", "scripted", "blocked_prompt"): 1,
                                (day + timedelta(days=1), "standard", "canceled", "scripted", "canceled"): 1})
    assert sources == Counter({(day, 0, "succeeded", True): 1,
                               (day + timedelta(days=1), 0, "failed", False): 1,
                               (day + timedelta(days=1), 0, "canceled", False): 1})
    assert latencies(w.db)[ok.id] == (7250, 7250)

    # Retries change nothing: another worker, a second run, a late cancel, a restart's sweep.
    other = w.make_service(worker_id="other-process", clock=w.clock)
    for job in (ok, failed, canceled):
        w.service.run_job(job.id)
        other.run_job(job.id)
        w.service.cancel(w.user.id, job.id)
    assert other.resume_unfinished(other.run_job) == (0, 0)
    assert rollups(w.db) == (outcomes, sources) == expected_rollups(w.db)
    assert all(have == want for have, want in latencies(w.db).values())
    w.assert_books_balance()


@dataclass
class GatedGenerator(ScriptedGenerator):
    """Holds its answer until the test opens the gate, so the test can act while the provider 'works'."""

    asked: threading.Event = field(default_factory=threading.Event)
    gate: threading.Event = field(default_factory=threading.Event)

    def poll(self, provider_job_id: str) -> JobStatus:
        self.asked.set()
        assert self.gate.wait(20)
        return super().poll(provider_job_id)


def test_a_cancel_racing_the_worker_counts_the_job_once(gen):
    """The user cancels after the provider produced the image but before the worker's terminal update: only
    one of the two guarded updates ends the job, and only that one counts it."""
    w = gen
    w.generator = GatedGenerator(script=["succeeded"])
    w.service = w.make_service(clock=w.clock)
    job = submit(w)
    worker = threading.Thread(target=w.service.run_job, args=(job.id,))
    worker.start()
    assert w.generator.asked.wait(20)
    w.service.cancel(w.user.id, job.id)
    w.generator.gate.set()  # the image arrives: the worker stores it, finds the job canceled, discards it
    worker.join(20)
    assert not worker.is_alive()
    assert w.service.get(w.user.id, job.id).status == "canceled" and w.store.files == {}
    outcomes, _ = rollups(w.db)
    assert list(outcomes) == [(date(2025, 3, 3), "standard", "canceled", "scripted", "canceled")]
    assert sum(outcomes.values()) == 1 and rollups(w.db) == expected_rollups(w.db)
    w.assert_books_balance()


def test_concurrent_cancels_count_once(gen):
    w = gen
    jobs = [submit(w) for _ in range(3)]
    barrier = threading.Barrier(4)

    def cancel_all():
        barrier.wait()
        for job in jobs:
            w.service.cancel(w.user.id, job.id)

    threads = [threading.Thread(target=cancel_all) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    outcomes, sources = rollups(w.db)
    assert sum(outcomes.values()) == sum(sources.values()) == 3
    assert (outcomes, sources) == expected_rollups(w.db)
    w.assert_books_balance()


def test_a_job_not_ended_is_in_no_rollup(gen):
    job = submit(gen)
    assert rollups(gen.db) == (Counter(), Counter())
    assert latencies(gen.db)[job.id] == (None, None)


# -- tracked events --------------------------------------------------------------------------------------------
def test_counted_events_and_markers_are_counted_per_day(empty_world):
    w = empty_world
    for when, name, user in ((at("2025-03-03", 9), Event.PAGE_VIEW, "ada"),
                             (at("2025-03-03", 10), Event.ENHANCE_REQUESTED, "ada"),
                             (at("2025-03-03", 11), Event.ENHANCE_REQUESTED, "bob"),
                             (at("2025-03-03", 12), Event.ENHANCE_ACCEPTED, "ada"),
                             (at("2025-03-04", 9), Event.ENHANCE_REQUESTED, None),
                             (at("2025-03-04", 10), Event.PAGE_VIEW, "ada")):
        w.event(name, user, when)
    assert not w.analytics.track("Bad Name", w.users["ada"])  # refused: counts nothing
    counts = event_counts(w.db)
    assert counts == expected_event_counts(w.db)
    assert counts[(date(2025, 3, 3), "enhance_requested")] == 2
    assert counts[(date(2025, 3, 4), "enhance_requested")] == 1
    assert counts[(date(2025, 3, 3), "active_day")] == 2 and counts[(date(2025, 3, 4), "active_day")] == 1
    assert counts[(date(2025, 3, 3), "active_week")] == 2 and (date(2025, 3, 4), "active_week") not in counts
    assert not any(name == "page_view" for _, name in counts)


# -- the migration backfills -----------------------------------------------------------------------------------
def test_the_migration_backfills_latency_and_rollups(empty_database):  # noqa: F811
    db = empty_database
    cfg = alembic_config(db)
    with db.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0002")
    t0 = datetime(2025, 3, 3, 23, 59, 58, 250000)
    with db.engine.begin() as conn:
        conn.execute(text("INSERT INTO users (id, email, display_name, password_hash, role, referral_code, "
                          "created_at, disabled) VALUES (1, 'a@example.com', 'A', 'x', 'creator', 'R1', :t, false)"),
                     {"t": t0})
        for i, (status, error, enhanced, latency_s) in enumerate((
                ("succeeded", None, "golden", 4.001), ("succeeded", None, None, 12.3),
                ("failed", "rate_limited", None, 1.0), ("canceled", "canceled", "golden", 2.5),
                ("running", None, None, None))):
            conn.execute(text(
                "INSERT INTO generated_images (owner_id, request_key, prompt, enhanced_prompt, final_prompt, "
                "negative_prompt, tier, width, height, seed, provider, model_version, status, progress, error_code, "
                "cost, created_at, finished_at) VALUES (1, :key, 'p', :enh, 'p', '', 'standard', 64, 64, 1, "
                "'local', '', :status, 0, :error, 0, :created, :finished)"),
                {"key": f"k{i}", "enh": enhanced, "status": status, "error": error, "created": t0,
                 "finished": t0 + timedelta(seconds=latency_s) if latency_s else None})
        for name, when in (("enhance_requested", t0), ("enhance_requested", t0 + timedelta(seconds=5)),
                           ("page_view", t0), ("active_day", t0)):
            conn.execute(text("INSERT INTO analytics_events (name, user_id, properties, created_at) "
                              "VALUES (:n, 1, '{}', :t)"), {"n": name, "t": when})
    upgrade_to_head(db)
    assert rollups(db) == expected_rollups(db)
    assert sum(rollups(db)[0].values()) == 4  # the running job waits for its end
    assert {k: v[0] for k, v in latencies(db).items()} == {1: 4001, 2: 12300, 3: 1000, 4: 2500, 5: None}
    assert event_counts(db) == expected_event_counts(db) == Counter({
        (date(2025, 3, 3), "enhance_requested"): 1, (date(2025, 3, 4), "enhance_requested"): 1,
        (date(2025, 3, 3), "active_day"): 1})


# -- the dashboard reads the rollups and the live jobs ------------------------------------------------------------
def test_queued_and_running_jobs_count_as_requested(world):
    p = Period(date(2025, 3, 1), date(2025, 3, 7))
    before = world.analytics.dashboard(world.admin, p)
    world.image("ada", at("2025-03-05", 9), status="queued", template=world.template_id)
    world.image("bob", at("2025-02-27", 9), status="running")  # the previous period
    after = world.analytics.dashboard(world.admin, p)
    kpi = {k.key: k for k in after.kpis}
    old = {k.key: k for k in before.kpis}
    assert (kpi["generations"].value, kpi["generations"].previous) == (old["generations"].value + 1,
                                                                      old["generations"].previous + 1)
    assert kpi["success_rate"].value == old["success_rate"].value  # neither succeeded nor failed yet
    assert (date(2025, 3, 5), "standard", "queued", 1) in after.generations.rows
    uses = {r[1]: r[2] for r in after.templates.rows}
    assert uses["Headshot"] == {r[1]: r[2] for r in before.templates.rows}["Headshot"] + 1
    assert after.error_codes == before.error_codes and after.funnel == before.funnel
