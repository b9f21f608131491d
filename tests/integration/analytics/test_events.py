"""track(): one row per event, never an exception, activity markers once per user and bucket; the generation
service's hooks record outcomes. On both databases."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest
from argon2 import PasswordHasher
from sqlalchemy import select

from studio_core.models import AnalyticsEvent
from studio_core.services.accounts import AccountService
from studio_core.services.analytics import MAX_PROPERTIES_BYTES, AnalyticsService, Event
from studio_core.services.generation import GenerateRequest, GenerationService, new_request_key
from studio_core.services.ledger import LedgerService
from tests.integration.analytics.conftest import at
from tests.integration.generation.fakes import MemoryStore, ScriptedGenerator


def rows(db, name=None):
    q = select(AnalyticsEvent).order_by(AnalyticsEvent.id)
    if name:
        q = q.where(AnalyticsEvent.name == name)
    with db.read() as s:
        return [(r.name, r.user_id, r.session_id, r.properties, r.created_at) for r in s.scalars(q)]


def test_track_writes_one_row(empty_world):
    w = empty_world
    w.clock.now = at("2025-03-03", 9)
    assert w.analytics.track(Event.DOWNLOAD, w.users["ada"], {"job_id": 7}, session_id="abc")
    assert rows(w.db, Event.DOWNLOAD) == [("download", w.users["ada"], "abc", {"job_id": 7}, at("2025-03-03", 9))]


def test_track_never_raises(empty_world, caplog):
    w = empty_world
    caplog.set_level(logging.WARNING, "studio_core.services.analytics")
    assert not w.analytics.track("Not A Name!", None)
    assert not w.analytics.track(Event.LIKE, 999_999)  # no such user: the database refuses, the caller goes on
    assert "was not recorded" in caplog.text
    assert rows(w.db) == []


def test_properties_are_made_safe(empty_world):
    w = empty_world
    assert w.analytics.track(Event.PUBLISH, None, {"when": at("2025-03-03"), "n": 1})
    assert w.analytics.track(Event.PUBLISH, None, {"prompt": "x" * (MAX_PROPERTIES_BYTES + 1)})
    first, second = (p for *_, p, _ in rows(w.db, Event.PUBLISH))
    assert first == {"when": "2025-03-03 12:00:00+00:00", "n": 1}
    assert second == {"truncated": True, "keys": ["prompt"]}


def test_activity_markers_once_per_user_day_week_and_month(empty_world, settings):
    w = empty_world
    ada = w.users["ada"]
    w.clock.now = at("2025-03-03", 9)  # a Monday
    for _ in range(3):
        w.analytics.track(Event.PAGE_VIEW, ada, {"page": "Studio"})
    # another process (a fresh service, nothing cached) on the same day adds nothing
    AnalyticsService(w.db, settings, clock=w.clock).track(Event.PAGE_VIEW, ada, {})
    w.clock.now = at("2025-03-04", 9)
    w.analytics.track(Event.PAGE_VIEW, ada, {})
    w.analytics.track(Event.PAGE_VIEW, None, {})  # anonymous visitors are never active users
    markers = [(name, created) for name, _, _, _, created in rows(w.db) if name.startswith("active_")]
    assert markers == [("active_day", at("2025-03-03", 9)), ("active_week", at("2025-03-03", 9)),
                       ("active_month", at("2025-03-03", 9)), ("active_day", at("2025-03-04", 9))]


@pytest.mark.parametrize("script, expected", [(["running", "succeeded"], Event.GENERATION_SUCCEEDED),
                                              (["failed"], Event.GENERATION_FAILED)])
def test_generation_outcomes_are_recorded_by_the_worker(database, settings, script, expected):
    clock_now = [at("2025-03-03", 9)]

    def clock():
        clock_now[0] += timedelta(seconds=1.5)
        return clock_now[0]

    analytics = AnalyticsService(database, settings, clock=clock)
    accounts = AccountService(database, settings, hasher=PasswordHasher(time_cost=1, memory_cost=64))
    ledger = LedgerService(database, settings, clock=clock)
    user = accounts.sign_up("ada@example.com", "Ada", "Correct-Horse-42")
    ledger.ensure_monthly_allowance(user.id)
    service = GenerationService(database, settings, ledger, ScriptedGenerator(script=script), MemoryStore(),
                                clock=clock, poll_interval_s=0, on_succeeded=analytics.track_generation,
                                on_failed=analytics.track_generation)
    job = service.submit(user.id, GenerateRequest(prompt="a fox", tier="standard"), new_request_key())
    service.run_job(job.id)
    recorded = rows(database, expected)
    assert len(recorded) == 1
    name, user_id, _, props, _ = recorded[0]
    assert user_id == user.id and props["job_id"] == job.id and props["tier"] == "standard"
    assert props["provider"] == "scripted" and props["latency_s"] > 0
    assert props["error_code"] == (None if expected == Event.GENERATION_SUCCEEDED else "blocked_prompt")
    service.run_job(job.id)  # a finished job is never recorded twice
    assert len(rows(database, expected)) == 1
