"""Every figure of the analytics dashboard on the hand-built world (see conftest.World), on both databases."""

from __future__ import annotations

import random
from collections import defaultdict
from datetime import date, timedelta

import pytest

from studio_core.services.accounts import AccessDenied
from studio_core.services.analytics import DASHBOARD_QUERIES, AnalyticsService, InvalidPeriod, Period
from tests.integration.analytics.conftest import END, START, at

D = date.fromisoformat


@pytest.fixture
def board(world):
    return world.analytics.dashboard(world.admin, Period(START, END, "day"))


def kpi(board, key):
    return next(k for k in board.kpis if k.key == key)


def test_kpis_compare_with_the_previous_period(board):
    assert (kpi(board, "active_users").value, kpi(board, "active_users").previous) == (2, 2)
    assert kpi(board, "active_users").change == 0
    gens = kpi(board, "generations")
    assert (gens.value, gens.previous, gens.change) == (9, 2, 3.5)
    rate = kpi(board, "success_rate")
    assert rate.value == pytest.approx(5 / 8) and rate.previous == pytest.approx(0.5)
    assert rate.change == pytest.approx(0.125)  # percentage points, not a relative change
    spent = kpi(board, "credits_spent")
    assert (spent.value, spent.previous, spent.change) == (4, 1, 3.0)
    revenue = kpi(board, "revenue")
    assert (revenue.value, revenue.previous, revenue.currency) == (15.0, 5.0, "USD")
    assert kpi(board, "generations").trend[2] == 6  # 3 March: four successes and two failures


def test_active_users_per_day_and_per_week(world, board):
    assert board.active_users.rows[:3] == ((D("2025-03-01"), 1), (D("2025-03-02"), 2), (D("2025-03-03"), 0))
    assert len(board.daily_active_users.rows) == 7
    weekly = world.analytics.dashboard(world.admin, Period(START, END, "week"))
    # Whole weeks (Monday first): 24 Feb .. 2 Mar had ada, bob and cy; the next week only an anonymous visitor.
    assert weekly.active_users.rows == ((D("2025-02-24"), 3), (D("2025-03-03"), 0))
    assert kpi(weekly, "active_users").value == 2
    assert weekly.daily_active_users.rows[1] == (D("2025-03-02"), 2)


def test_generations_by_tier_and_status_and_failure_rate(board):
    rows = {(b, tier, status): n for b, tier, status, n in board.generations.rows}
    assert rows[(D("2025-03-03"), "standard", "succeeded")] == 4
    assert rows[(D("2025-03-03"), "standard", "failed")] == 2
    assert rows[(D("2025-03-04"), "standard", "canceled")] == 1
    assert sum(board.generations.column("generations")) == 9
    failure = {b: (finished, failed, rate) for b, finished, failed, rate in board.failure_rate.rows}
    assert failure[D("2025-03-03")] == (6, 2, pytest.approx(1 / 3))
    assert failure[D("2025-03-04")] == (1, 1, 1.0)  # the canceled job is neither a success nor a failure
    assert failure[D("2025-03-01")] == (0, 0, None)
    assert board.error_codes.rows == (("provider_timeout", 2), ("rate_limited", 1))


def test_latency_percentiles_by_provider_and_tier(board):
    latency = {(p, t): (n, p50, p95) for p, t, n, p50, p95 in board.latency.rows}
    n, p50, p95 = latency[("local", "standard")]
    assert n == 4 and p50 == pytest.approx(5.0, abs=1e-3) and p95 == pytest.approx(7.7, abs=1e-3)
    n, p50, p95 = latency[("replicate", "premium2")]
    assert n == 1 and p50 == pytest.approx(10.0, abs=1e-3) and p95 == pytest.approx(10.0, abs=1e-3)
    assert set(latency) == {("local", "standard"), ("replicate", "premium2")}


def percentile_cont(values: list[float], q: float) -> float:
    ordered = sorted(values)
    h = (len(ordered) - 1) * q
    lo = int(h)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (h - lo)


def test_latency_percentiles_are_exact_on_a_random_history(empty_world):
    """The index walks land on exactly the right rows: jobs before, in and after the period, failures, ties,
    groups of one and two; compared with percentile_cont worked out in Python."""
    w, rng = empty_world, random.Random(4)
    want: dict[tuple[str, str], list[float]] = defaultdict(list)

    def image(day: date, provider: str, tier: str, latency: float, status: str = "succeeded") -> None:
        w.image("ada", at(day, rng.uniform(0, 23)), status=status, tier=tier, provider=provider, latency_s=latency)
        if status == "succeeded" and START <= day <= END:
            want[(provider, tier)].append(latency)

    for _ in range(120):
        image(START + timedelta(days=rng.randrange(-9, 12)), rng.choice(("local", "replicate")),
              rng.choice(("standard", "premium2")), round(rng.lognormvariate(1.6, 0.6), rng.choice((1, 3))),
              rng.choice(("succeeded",) * 5 + ("failed",)))
    image(START, "solo", "standard", 3.5)
    image(END, "pair", "standard", 2.0)
    image(END, "pair", "standard", 2.0)
    image(START - timedelta(days=1), "pair", "standard", 1.0)  # the day before: not in the period
    board = w.analytics.dashboard(w.admin, Period(START, END))
    got = {(provider, tier): (n, p50, p95) for provider, tier, n, p50, p95 in board.latency.rows}
    assert set(got) == set(want)
    for group, values in want.items():
        n, p50, p95 = got[group]
        assert n == len(values), group
        assert p50 == pytest.approx(percentile_cont(values, 0.5), abs=1e-9), group
        assert p95 == pytest.approx(percentile_cont(values, 0.95), abs=1e-9), group
    assert got[("solo", "standard")] == (1, 3.5, 3.5) and got[("pair", "standard")] == (2, 2.0, 2.0)


def test_credit_flows(board):
    flows = {}
    for _bucket, flow, credits in board.credits.rows:
        flows[flow] = flows.get(flow, 0) + credits
    assert flows == {"granted": 30, "purchased": 50, "spent": 6, "refunded": 2, "expired": 10}
    assert (D("2025-03-03"), "spent", 6) in board.credits.rows


def test_revenue_by_pack(board):
    assert board.revenue.rows == ((D("2025-03-02"), "starter", "USD", 1, 5.0),
                                  (D("2025-03-06"), "creator", "USD", 1, 10.0))


def test_enhancement_funnel(board):
    assert board.funnel.rows == (("Enhancement requested", 3), ("Enhanced prompt used", 2),
                                 ("Image generated", 1), ("Published", 1))
    assert dict(board.enhancement_choices.rows) == {"accepted as written": 1, "edited, then used": 1,
                                                    "rejected (original used)": 1}


def test_template_and_category_performance(board):
    templates = {r[1]: r for r in board.templates.rows}
    assert templates["Headshot"] == ("Portraits", "Headshot", 3, 2, pytest.approx(2 / 3), 1, 2, 1)
    assert templates["Vista"] == ("Landscapes", "Vista", 1, 1, 1.0, 1, 1, 0)
    assert board.templates.rows[0][1] == "Headshot"  # most used first
    categories = {r[0]: r for r in board.categories.rows}
    assert categories["Portraits"][1:] == (3, 2, pytest.approx(2 / 3), 1, 2, 1)


def test_community_and_time_to_moderation(board):
    community = {b: (posts, likes, reports) for b, posts, likes, reports in board.community.rows}
    assert community[D("2025-03-03")] == (1, 0, 0)
    assert community[D("2025-03-04")] == (0, 2, 2)
    assert community[D("2025-03-06")] == (0, 1, 1)
    assert len(board.moderation.rows) == 1
    bucket, resolved, p50, p95 = board.moderation.rows[0]
    assert (bucket, resolved) == (D("2025-03-04"), 2)
    assert p50 == pytest.approx(3.0, abs=1e-3) and p95 == pytest.approx(3.9, abs=1e-3)
    reports, resolved, open_, p50, _ = board.moderation_overall.rows[0]
    assert (reports, resolved, open_) == (3, 2, 1) and p50 == pytest.approx(3.0, abs=1e-3)


def test_month_buckets(world):
    board = world.analytics.dashboard(world.admin, Period(D("2025-02-01"), D("2025-03-31"), "month"))
    assert [b for b, *_ in board.active_users.rows] == [D("2025-02-01"), D("2025-03-01")]
    assert dict(board.active_users.rows) == {D("2025-02-01"): 2, D("2025-03-01"): 2}
    assert {b for b, *_ in board.generations.rows} == {D("2025-02-01"), D("2025-03-01")}


def test_an_empty_range_is_empty_not_an_error(world):
    board = world.analytics.dashboard(world.admin, Period(D("2024-06-01"), D("2024-06-30"), "week"))
    assert not board.has_activity
    for table in (board.active_users, board.generations, board.failure_rate, board.error_codes, board.latency,
                  board.credits, board.revenue, board.funnel, board.templates, board.community, board.moderation,
                  board.moderation_overall):
        assert table.empty
    assert kpi(board, "generations").value == 0 and kpi(board, "generations").change is None
    assert kpi(board, "success_rate").value is None


def test_the_dashboard_is_for_admins_only(world):
    with pytest.raises(AccessDenied):
        world.analytics.dashboard(world.creator, Period(START, END))
    with pytest.raises(AccessDenied):
        world.analytics.run_query(world.creator, "active_users", Period(START, END))


def test_figures_are_kept_for_a_while_per_period_and_added_up_again_on_refresh(world, settings):
    analytics = AnalyticsService(world.db, settings.model_copy(update={"analytics_cache_s": 60}),
                                 clock=world.clock)
    week, by_day = Period(START, END, "week"), Period(START, END, "day")
    first = analytics.dashboard(world.admin, week)
    assert first.as_of == world.clock.now
    generations = kpi(first, "generations").value
    world.image("bob", at(END, 9))  # one more generation in the period

    world.clock.now += timedelta(seconds=59)
    assert analytics.dashboard(world.admin, week) is first  # within the minute: the same figures
    assert kpi(analytics.dashboard(world.admin, by_day), "generations").value == generations + 1  # its own
    with pytest.raises(AccessDenied):  # kept figures are still for admins only
        analytics.dashboard(world.creator, week)
    refreshed = analytics.dashboard(world.admin, week, fresh=True)
    assert kpi(refreshed, "generations").value == generations + 1 and refreshed.as_of == world.clock.now

    world.image("bob", at(END, 10))
    world.clock.now += timedelta(seconds=60)  # a minute after the refresh: added up again
    assert kpi(analytics.dashboard(world.admin, week), "generations").value == generations + 2


def test_every_dashboard_statement_runs_alone(world):
    """The benchmark times the statements one by one: each must run on its own."""
    for name in DASHBOARD_QUERIES:
        assert isinstance(world.analytics.run_query(world.admin, name, Period(START, END, "week")), list)


def test_periods():
    p = Period(START, END, "week")
    assert p.days == 7 and p.previous == Period(D("2025-02-22"), D("2025-02-28"), "week")
    assert p.buckets() == [D("2025-02-24"), D("2025-03-03")]
    assert Period(D("2025-01-31"), D("2025-03-01"), "month").buckets() == [D("2025-01-01"), D("2025-02-01"),
                                                                           D("2025-03-01")]
    assert Period.last(30, D("2025-03-30")).start == D("2025-03-01")
    with pytest.raises(InvalidPeriod):
        Period(END, START)
    with pytest.raises(InvalidPeriod):
        Period(START, END, "hour")  # type: ignore[arg-type]
