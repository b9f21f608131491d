"""Admin · Analytics under AppTest (with data, with an empty range, refused for a creator), and the product
events the existing screens record."""

from __future__ import annotations

import csv
import io
import time
from datetime import timedelta

import pytest
from sqlalchemy import select

from studio_core.config import load_settings
from studio_core.db import Database
from studio_core.models import AnalyticsEvent
from studio_core.services.accounts import UserView
from studio_core.services.analytics import AnalyticsService, Event, Period
from tests.app.conftest import new_app, run, sign_up, texts

PAGE = "app_pages/admin_analytics.py"


def _db(app_env) -> Database:
    return Database(f"sqlite:///{app_env / 'studio.db'}")


def _events(app_env) -> list[tuple[str, dict]]:
    db = _db(app_env)
    try:
        with db.read() as s:
            return [(r.name, r.properties) for r in
                    s.execute(select(AnalyticsEvent.name, AnalyticsEvent.properties).order_by(AnalyticsEvent.id))]
    finally:
        db.dispose()


def _admin_on_analytics(app_env):
    at = run(new_app())
    sign_up(at, "ada@example.com", "Ada")  # the first account is the admin
    at.switch_page(PAGE)
    return run(at)


def _metric(at, label_start: str):
    return next(m for m in at.main.metric if m.label.startswith(label_start))


SECTIONS = ("Usage", "Reliability and speed", "Credits and revenue", "Templates and categories", "Community")


def _every_section(at):
    """Each tab in turn (only the open one is drawn): what each showed, as (chart keys, texts, empty captions)."""
    seen = {}
    for section in SECTIONS:
        at.session_state["analytics_tab"] = section  # what clicking the tab sets
        run(at)
        assert not at.exception
        seen[section] = ([c.key for c in at.get("plotly_chart")], texts(at),
                         [c.value for c in at.main.caption if c.value.startswith("No ") and "in this range" in c.value])
    at.session_state["analytics_tab"] = SECTIONS[0]
    run(at)
    return seen


def test_admin_sees_kpis_charts_and_downloads_over_a_seeded_history(app_env, deferred_downloads):
    at = run(new_app())
    sign_up(at, "ada@example.com", "Ada")
    from studio_core.bootstrap import build_studio
    from studio_core.services.demo import seed_history

    studio = build_studio(load_settings(data_dir=app_env))
    try:
        report = seed_history(studio, 1, rng_seed=3)
        assert report[-1] == "Ledger invariants: all hold."
        admin = studio.accounts.by_email("ada@example.com")
        expected = studio.analytics.dashboard(admin, Period.last(30, studio.analytics.today()))
    finally:
        studio.db.dispose()

    at.switch_page(PAGE)
    run(at)
    assert at.title[0].value == "Analytics"
    assert [m.label for m in at.main.metric] == ["Active users", "Generations", "Success rate", "Credits spent",
                                            "Revenue (USD)"]
    gens = next(k for k in expected.kpis if k.key == "generations")
    assert _metric(at, "Generations").value == f"{gens.value:,.0f}"
    charts = at.get("plotly_chart")
    assert {b.label for b in at.get("download_button")} == {"Download CSV"}
    assert len(at.get("download_button")) == len(charts) >= 3  # every chart has its data as CSV
    assert [c.key for c in charts] == ["chart_active_users", "chart_enhancement_funnel", "chart_generations_by_status",
                                      "chart_generations_by_tier"]  # the Usage tab only
    # made on the click, not on every run: exactly the rows of the chart's table
    generations = next(f() for f in deferred_downloads if f().startswith("bucket,tier,status,generations"))
    rows = list(csv.DictReader(io.StringIO(generations)))
    assert sum(int(r["generations"]) for r in rows) == sum(g[-1] for g in expected.generations.rows) > 0
    assert "No activity in this range" not in texts(at)
    assert "Figures as of " in texts(at)  # kept for a minute, and said so
    assert f"{studio.analytics.today():%d %b} is counted only so far" in texts(at)  # the range ends today
    at.button(key="analytics_refresh").click()
    assert not run(at).exception and "Figures as of " in texts(at)

    at.selectbox(key="analytics_preset").select("Last 12 months")
    run(at)
    assert at.segmented_control(key="analytics_granularity").value == "month"
    # a whole year: every card draws its chart, or (rarely, for so small a history) says why it is empty
    seen = _every_section(at)
    charts = [key for keys, _, _ in seen.values() for key in keys]
    empty_cards = [c for _, _, empty in seen.values() for c in empty]
    assert len(charts) == len(set(charts)) and len(charts) + len(empty_cards) == 13 and len(empty_cards) <= 2
    assert [m.label for m in at.main.metric][0] == "Active users"  # the headline figures stay on every tab


def test_an_empty_range_shows_an_empty_state(app_env):
    at = _admin_on_analytics(app_env)
    at.selectbox(key="analytics_preset").select("Custom range")
    run(at)
    long_ago = at.date_input(key="analytics_dates")
    start = long_ago.value[0] - timedelta(days=400)
    long_ago.set_value((start, start + timedelta(days=6)))
    run(at)
    shown = texts(at)
    assert "No activity in this range" in shown
    assert "Figures as of " in shown and "counted only so far" not in shown  # a range in the past is complete
    assert not at.get("plotly_chart")
    assert _metric(at, "Generations").value == "0" and _metric(at, "Success rate").value == "—"
    assert not at.error


def test_a_fresh_install_shows_per_chart_empty_states(app_env):
    at = _admin_on_analytics(app_env)  # only the admin's own sign-up happened
    assert _metric(at, "Active users").value == "1"
    seen = _every_section(at)
    assert "No images were requested in this range." in seen["Usage"][1]
    assert "No credit packs were bought in this range." in seen["Credits and revenue"][1]
    # the admin's own visit and the month's allowance; everything else is an empty state
    assert [key for keys, _, _ in seen.values() for key in keys] == ["chart_active_users", "chart_credits"]


def test_a_creator_cannot_reach_analytics(app_env):
    run(sign_up(run(new_app()), "ada@example.com", "Ada"))
    at = run(new_app())
    sign_up(at, "grace@example.com", "Grace")
    with pytest.raises(ValueError, match="Known pages") as refused:
        at.switch_page(PAGE)
    assert "admin_analytics.py" not in str(refused.value).split("Known pages:")[1]
    studio_db = _db(app_env)
    try:
        creator = UserView(id=2, email="grace@example.com", display_name="Grace", role="creator",
                           referral_code="-", created_at=studio_db_now())
        from studio_core.services.accounts import AccessDenied

        with pytest.raises(AccessDenied):
            AnalyticsService(studio_db, load_settings(data_dir=app_env)).dashboard(
                creator, Period.last(7, studio_db_now().date()))
    finally:
        studio_db.dispose()


def studio_db_now():
    from studio_core.models import utcnow

    return utcnow()


def test_screens_record_sign_up_page_views_and_the_studio_flow(app_env):
    at = run(new_app())
    sign_up(at, "ada@example.com", "Ada")
    at.text_area(key="studio_prompt").input("a lighthouse on a cliff")
    at.button(key="studio_enhance").click()
    run(at)
    at.button(key="tier_premium2").click()
    run(at)
    at.button(key="studio_generate").click()
    run(at)
    at.button(key="studio_confirm").click()
    run(at)
    run(at)  # reruns of the same page are not new page views

    deadline = time.monotonic() + 30  # the worker records the outcome when the image is done
    while Event.GENERATION_SUCCEEDED not in [n for n, _ in _events(app_env)] and time.monotonic() < deadline:
        time.sleep(0.1)
    events = _events(app_env)
    names = [n for n, _ in events if not n.startswith("active_")]
    assert names[:2] == [Event.SIGN_UP, Event.PAGE_VIEW]
    assert names.count(Event.PAGE_VIEW) == 1
    for name in (Event.ENHANCE_REQUESTED, Event.TIER_SELECTED, Event.GENERATE_CONFIRMED, Event.ENHANCE_ACCEPTED,
                 Event.GENERATION_SUCCEEDED):
        assert names.count(name) == 1, (name, names)
    props = dict(events)
    assert props[Event.TIER_SELECTED] == {"tier": "premium2", "previous": "standard"}
    assert props[Event.GENERATE_CONFIRMED]["tier"] == "premium2" and props[Event.GENERATE_CONFIRMED]["enhanced"]
    assert props[Event.GENERATION_SUCCEEDED]["latency_s"] >= 0
    assert props[Event.GENERATION_SUCCEEDED]["provider"] == "local"
    markers = [n for n, _ in events if n.startswith("active_")]
    assert sorted(markers) == ["active_day", "active_month", "active_week"]  # once each, however many events
