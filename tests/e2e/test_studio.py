"""In a real browser: a creator fills a template, enhances, confirms and gets an image; charged once."""

from playwright.sync_api import expect

from tests.e2e.conftest import screenshot, wait_idle


def _sign_up(page, url, email, name):
    page.goto(url)
    page.get_by_role("tab", name="Create account").click()
    form = page.get_by_test_id("stForm").filter(has=page.get_by_role("textbox", name="Display name"))
    form.get_by_role("textbox", name="Email").fill(email)
    form.get_by_role("textbox", name="Display name").fill(name)
    form.get_by_role("textbox", name="Password", exact=True).fill("Analytical-Engine-1843")
    form.get_by_role("textbox", name="Repeat password").fill("Analytical-Engine-1843")
    form.get_by_role("button", name="Create account").click()
    expect(page.get_by_role("heading", name="Studio")).to_be_visible()


def _click(locator) -> None:
    """Click once the element is unique: during a rerun Streamlit briefly shows the old and the new copy."""
    expect(locator).to_have_count(1)
    locator.click()


def test_template_enhance_generate(app_server, page):
    page.set_viewport_size({"width": 1400, "height": 1700})
    _sign_up(page, app_server.url, "grace@example.com", "Grace")
    sidebar = page.get_by_test_id("stSidebar")
    expect(sidebar.get_by_text("30 available")).to_be_visible()

    wait_idle(page)
    subject = page.get_by_role("textbox", name="Subject")
    subject.fill("a lighthouse on a cliff")  # committed by the click below, in the same rerun
    _click(page.get_by_role("button", name="Use this template"))
    wait_idle(page)
    expect(page.get_by_role("textbox", name="Prompt", exact=True).first).to_have_value(
        "professional studio headshot of a lighthouse on a cliff, soft key light, shallow depth of field, "
        "neutral grey backdrop, 85mm lens")
    wait_idle(page)
    _click(page.get_by_role("button", name="Enhance prompt"))
    expect(page.get_by_text("Added to your prompt")).to_be_visible()
    screenshot(page, "studio-enhanced")

    _click(page.get_by_role("button", name="Generate · 2 credits"))
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
    expect(sidebar.get_by_text("28 available")).to_be_visible()
    _click(page.get_by_text("Recipe", exact=True))
    expect(page.get_by_text("Model version")).to_be_visible()
    screenshot(page, "studio-result")
