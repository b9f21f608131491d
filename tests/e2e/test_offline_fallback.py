"""In a real browser, while Replicate (its stand-in, driven by the real client) refuses every image: the studio
says so, charges nothing, and one click switches to the offline renderer, which delivers an image."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import click_once, expect_available, running_app, screenshot, sign_up, wait_idle
from tests.fakes.replicate_server import FakeReplicate


@pytest.fixture(scope="module")
def replicate_down():
    with FakeReplicate() as replicate:
        replicate.fail("status", status=503, method="POST", path=r"/predictions$", times=None)
        yield replicate


@pytest.fixture(scope="module")
def app_with_replicate(tmp_path_factory, replicate_down):
    with running_app(tmp_path_factory.mktemp("app"), {
            "STUDIO_GENERATOR": "replicate", "STUDIO_REPLICATE_API_TOKEN": replicate_down.api_token,
            "STUDIO_REPLICATE_BASE_URL": replicate_down.url, "STUDIO_PROVIDER_OUTAGE_FAILURES": "2"}) as server:
        yield server


def _generate(page) -> None:
    wait_idle(page)
    click_once(page.get_by_role("button", name="Generate · 1 credit"))
    click_once(page.get_by_role("dialog").get_by_role("button", name="Confirm"))


def test_outage_then_offline_preview(app_with_replicate, replicate_down, page):
    page.set_viewport_size({"width": 1400, "height": 1500})
    sign_up(page, app_with_replicate.url, "lin@example.com", "Lin")
    expect(page.get_by_text("Images: Replicate · SDXL")).to_be_visible()

    page.get_by_role("textbox", name="Prompt", exact=True).fill("a lighthouse in a storm")
    _generate(page)
    expect(page.get_by_text("Not charged").first).to_be_visible(timeout=30_000)
    expect(page.get_by_role("button", name="Render an offline preview instead")).to_be_visible()
    _generate(page)
    expect(page.get_by_text("is not answering")).to_be_visible(timeout=30_000)
    expect_available(page, 30)
    screenshot(page, "studio-provider-down")

    click_once(page.get_by_role("button", name="Use the offline preview renderer"))
    expect(page.get_by_text("Images: Offline preview renderer (not AI)")).to_be_visible()
    _generate(page)
    expect(page.get_by_role("button", name="Download PNG")).to_be_visible(timeout=60_000)
    expect(page.get_by_text("Offline preview (procedural, not AI)")).to_be_visible()
    expect_available(page, 29)
    screenshot(page, "studio-offline-preview")
    assert len(replicate_down.requests_to("POST", r"/predictions$")) == 2
