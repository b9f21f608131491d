"""In a real browser: a creator fills a template, enhances, confirms and gets an image; charged once."""

from playwright.sync_api import expect

from tests.e2e.conftest import click_once, expect_available, screenshot, sign_up, wait_idle


def test_template_enhance_generate(app_server, page):
    page.set_viewport_size({"width": 1400, "height": 1700})
    sign_up(page, app_server.url, "grace@example.com", "Grace")
    expect_available(page, 30)

    wait_idle(page)
    subject = page.get_by_role("textbox", name="Subject")
    subject.fill("a lighthouse on a cliff")  # committed by the click below, in the same rerun
    click_once(page.get_by_role("button", name="Use this template"))
    wait_idle(page)
    expect(page.get_by_role("textbox", name="Prompt", exact=True).first).to_have_value(
        "professional studio headshot of a lighthouse on a cliff, soft key light, shallow depth of field, "
        "neutral grey backdrop, 85mm lens")
    wait_idle(page)
    click_once(page.get_by_role("button", name="Enhance prompt"))
    expect(page.get_by_text("Added to your prompt")).to_be_visible()
    screenshot(page, "studio-enhanced")

    click_once(page.get_by_role("button", name="Generate · 2 credits"))
    wait_idle(page)
    dialog = page.get_by_role("dialog")
    expect(dialog.get_by_text("You are charged only if the image is delivered.")).to_be_visible()
    dialog.get_by_role("button", name="Confirm").dblclick()  # a double click must not charge twice
    # The progress fragment polls by itself: nobody clicks until the image is there.
    expect(page.get_by_role("button", name="Download PNG")).to_be_visible(timeout=60_000)
    with page.expect_download() as download:
        page.get_by_role("button", name="Download PNG").click()
    path = download.value.path()
    assert download.value.suggested_filename.endswith(".png")
    assert open(path, "rb").read(8) == b"\x89PNG\r\n\x1a\n"
    expect(page.get_by_text("Offline preview (procedural, not AI)")).to_be_visible()
    expect_available(page, 28)
    click_once(page.get_by_text("Recipe", exact=True))
    expect(page.get_by_text("Model version")).to_be_visible()
    screenshot(page, "studio-result")
