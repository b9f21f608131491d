"""A new visitor signs up in a real browser and lands in the app shell."""

from playwright.sync_api import expect

from tests.e2e.conftest import screenshot


def test_new_visitor_signs_up_and_lands_in_the_app(app_server, page):
    page.goto(app_server.url)
    expect(page.get_by_role("tab", name="Create account")).to_be_visible()
    screenshot(page, "sign-in")
    page.get_by_role("tab", name="Create account").click()
    form = page.get_by_test_id("stForm").filter(has=page.get_by_role("textbox", name="Display name"))
    form.get_by_role("textbox", name="Email").fill("ada@example.com")
    form.get_by_role("textbox", name="Display name").fill("Ada Lovelace")
    form.get_by_role("textbox", name="Password", exact=True).fill("Analytical-Engine-1843")
    form.get_by_role("textbox", name="Repeat password").fill("Analytical-Engine-1843")
    form.get_by_role("button", name="Create account").click()

    # Landed in the app: welcome, identity in the sidebar, and (as the first account) the admin section.
    expect(page.get_by_text("Welcome to Studio, Ada Lovelace!")).to_be_visible()
    sidebar = page.get_by_test_id("stSidebar")
    expect(sidebar.get_by_text("Ada Lovelace")).to_be_visible()
    expect(sidebar.get_by_role("link", name="Users")).to_be_visible()
    expect(page.get_by_role("heading", name="Studio")).to_be_visible()
    expect(sidebar.get_by_text("available")).to_be_visible()
    expect(sidebar.get_by_role("button", name="Sign out")).to_be_visible()
    screenshot(page, "signed-up-app-shell")
