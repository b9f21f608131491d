"""In a real browser: an admin opens Analytics over a seeded year of history and every chart renders, a tab
at a time."""

import re

from playwright.sync_api import expect

from studio_core.bootstrap import build_studio
from studio_core.config import load_settings
from studio_core.services.demo import seed_history
from tests.e2e.conftest import click_once, screenshot, sign_up, wait_idle


def _seed(app_server) -> None:
    settings = load_settings(_env_file=None, data_dir=app_server.data_dir, enhancer="local", generator="local",
                             storage="local", payments="sandbox")
    studio = build_studio(settings)
    try:
        assert seed_history(studio, 1, rng_seed=11)[-1] == "Ledger invariants: all hold."
    finally:
        studio.db.dispose()


def test_admin_reads_the_dashboard(app_server, page):
    page.set_viewport_size({"width": 1440, "height": 1000})
    sign_up(page, app_server.url, "ada@example.com", "Ada")
    expect(page.get_by_text("you are the admin")).to_be_visible()
    _seed(app_server)

    page.get_by_test_id("stSidebar").get_by_role("link", name="Analytics").click()
    expect(page.get_by_role("heading", name="Analytics")).to_be_visible()
    expect(page.get_by_test_id("stMetric").filter(has_text="Generations")).to_be_visible()
    page.get_by_label("Range").click()  # the whole year, by month: every chart has data to draw
    page.get_by_role("option", name="Last 12 months").click()
    expect(page.get_by_role("figure", name="Chart: Active users per month")).to_be_visible()
    wait_idle(page)
    # Every one of the thirteen cards is drawn, a tab at a time: a chart, or (a small random history may lack,
    # say, a resolved report in the whole year) its empty state; and each chart has its CSV.
    sections = {"Usage": 4, "Reliability and speed": 3, "Credits and revenue": 2, "Templates and categories": 2,
                "Community": 2}
    titles = {"Usage": "Enhancement funnel", "Reliability and speed": "Generation latency by provider and tier",
              "Templates and categories": "Most used templates"}
    charts = page.get_by_test_id("stPlotlyChart")
    empty_in_all = 0
    for section, cards in sections.items():
        tab = page.get_by_role("tab", name=section, exact=True)
        click_once(tab)
        expect(tab).to_have_attribute("aria-selected", "true")
        wait_idle(page)
        empty_cards = page.get_by_text(re.compile(r"^No .* in this range\.")).count()
        expect(charts).to_have_count(cards - empty_cards, timeout=30_000)
        expect(page.get_by_role("button", name="Download CSV", exact=True)).to_have_count(cards - empty_cards)
        empty_in_all += empty_cards
        if section in titles:
            figure = page.get_by_role("figure", name=f"Chart: {titles[section]}")  # the chart's alt text
            expect(figure.locator(".gtitle", has_text=titles[section])).to_be_visible()  # and its drawn title
    assert empty_in_all <= 2
    click_once(page.get_by_role("tab", name="Usage", exact=True))
    page.set_viewport_size({"width": 1440, "height": 2400})  # the app scrolls inside itself: show all of it
    wait_idle(page)
    screenshot(page, "analytics-dashboard-year")

    page.set_viewport_size({"width": 1440, "height": 1000})
    page.get_by_label("Range").click()
    page.get_by_role("option", name="Last 30 days").click()
    expect(page.get_by_role("figure", name="Chart: Active users per day")).to_be_visible()
    wait_idle(page)
    screenshot(page, "analytics-dashboard")
