"""``seed-demo --scale N``: a year of history whose books balance and which the dashboard reads, on both
databases."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

from sqlalchemy import func, select

from studio_core.bootstrap import Studio
from studio_core.cli import build_parser
from studio_core.config import resolve_providers
from studio_core.models import AnalyticsEvent, CommunityPost, GeneratedImage, PromptReuseEvent, Purchase, User
from studio_core.services.analytics import Period, time_bucket
from studio_core.services.demo import EVENTS_PER_UNIT, GENERATIONS_PER_UNIT, USERS_PER_UNIT, seed_demo
from tests.integration.analytics.conftest import (
    event_counts,
    expected_event_counts,
    expected_rollups,
    latencies,
    rollups,
)


def test_a_year_of_history_balances_and_reads(database, settings):
    studio = Studio(settings=settings, db=database, providers=resolve_providers(settings))
    report = seed_demo(studio, scale=1, rng_seed=5)
    assert report[-1] == "Ledger invariants: all hold."
    assert all(r.ok for r in studio.ledger.check_invariants())

    with database.read() as s:
        events = s.scalar(select(func.count()).select_from(AnalyticsEvent))
        history_users = s.scalar(select(func.count()).select_from(User).where(User.email.like("%@history.demo.studio")))
        statuses = Counter(dict(s.execute(select(GeneratedImage.status, func.count())
                                          .group_by(GeneratedImage.status)).all()))
        paid = s.scalar(select(func.count()).select_from(Purchase).where(Purchase.status == "paid"))
        posts = s.scalar(select(func.count()).select_from(CommunityPost))
        remixes = s.scalar(select(func.count()).select_from(PromptReuseEvent))
        # one activity marker per user and day, never two
        marker_days = s.execute(select(AnalyticsEvent.user_id, func.count())
                                .where(AnalyticsEvent.name == "active_day")
                                .group_by(AnalyticsEvent.user_id, time_bucket("day", AnalyticsEvent.created_at))
                                .having(func.count() > 1)).all()
    assert history_users == USERS_PER_UNIT
    # 10,000 history events, plus the few the demo accounts' sign-ups wrote
    assert EVENTS_PER_UNIT <= events < EVENTS_PER_UNIT + 20
    total = sum(statuses.values())
    assert 0.8 * GENERATIONS_PER_UNIT <= total <= 1.05 * GENERATIONS_PER_UNIT
    assert 0.8 < statuses["succeeded"] / total < 0.97 and statuses["failed"] > 0 and statuses["canceled"] > 0
    assert paid > 0 and posts > 0 and remixes > 0
    assert marker_days == []
    # the rollups and the latency column, exactly as the generation service and track() would have kept them
    assert rollups(database) == expected_rollups(database) and sum(rollups(database)[0].values()) == total
    assert event_counts(database) == expected_event_counts(database)
    assert all(have == want for have, want in latencies(database).values())
    assert seed_demo(studio, scale=1)[-1].startswith("History: already present")

    admin = studio.accounts.by_email("admin@demo.studio")
    board = studio.analytics.dashboard(admin, Period.last(90, studio.analytics.today(), "week"))
    for table in (board.active_users, board.generations, board.latency, board.credits, board.funnel,
                  board.templates, board.community):
        assert not table.empty
    assert next(k for k in board.kpis if k.key == "generations").value > 0


def test_the_cli_takes_a_scale():
    args = build_parser().parse_args(["seed-demo", "--scale", "3"])
    assert args.scale == 3
    assert build_parser().parse_args(["seed-demo"]).scale == 0


def test_a_likes_target_tops_the_community_up_within_what_is_plausible(database, settings):
    from studio_core.models import PostLike

    studio = Studio(settings=settings, db=database, providers=resolve_providers(settings))
    # a fixed end: the history (and so how many likes it has without a target) depends on the calendar
    report = seed_demo(studio, scale=1, rng_seed=5, likes=300, now=datetime(2026, 9, 1, 12, tzinfo=UTC))
    assert report[-1] == "Ledger invariants: all hold."
    P, L = CommunityPost, PostLike
    with database.read() as s:
        likes = s.scalar(select(func.count()).select_from(L))
        counted = s.scalar(select(func.sum(P.like_count)))
        by_author = s.scalar(select(func.count()).select_from(L).join(P, P.id == L.post_id)
                             .where(L.user_id == P.author_id))
        before_post = s.scalar(select(func.count()).select_from(L).join(P, P.id == L.post_id)
                               .where(L.created_at < P.created_at))
        like_events = s.scalar(select(func.count()).select_from(AnalyticsEvent).where(AnalyticsEvent.name == "like"))
        events = s.scalar(select(func.count()).select_from(AnalyticsEvent))
    assert 290 <= likes <= 310  # 92 without a target
    assert counted == likes and by_author == 0 and before_post == 0
    # every like is an event as well, the added ones on top of the history's usual events
    assert like_events == likes and EVENTS_PER_UNIT < events < EVENTS_PER_UNIT + likes + 20
    assert event_counts(database) == expected_event_counts(database)


def test_the_cli_takes_a_likes_target_only_with_a_scale(tmp_path, monkeypatch):
    from studio_core.cli import main

    assert build_parser().parse_args(["seed-demo", "--scale", "2", "--likes", "5000"]).likes == 5000
    assert build_parser().parse_args(["seed-demo"]).likes is None
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("STUDIO_DATA_DIR", str(tmp_path / "data"))
    assert main(["seed-demo", "--likes", "10"]) == 2  # a usage error, before anything is touched
    assert not (tmp_path / "data").exists()
