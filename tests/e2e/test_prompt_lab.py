"""In a real browser: a 2x2 experiment on the local provider, quoted, run (double-clicked) to a finished grid,
charged exactly once per image, voted on and enlarged with its recipe."""

import re

from playwright.sync_api import expect

from tests.e2e.conftest import go, screenshot, sign_up, wait_idle


def test_two_by_two_experiment_to_a_finished_grid(app_server, page):
    page.set_viewport_size({"width": 1400, "height": 1300})
    sign_up(page, app_server.url, "ada.lab@example.com", "Ada")
    sidebar = page.get_by_test_id("stSidebar")
    go(page, "Prompt Lab")  # and wait until its run ended: the pills below must hold their defaults first
    expect(page.locator("strong", has_text="Write a template")).to_be_visible()  # the empty state

    # Each value is committed and its rerun finished before the next field is typed into: a field filled while
    # a rerun is under way can be redrawn with its old value.
    template = page.get_by_role("textbox", name="Prompt template")
    template.fill("a {red|blue} fox in the snow")
    template.press("Control+Enter")
    wait_idle(page)
    seeds = page.get_by_role("textbox", name="Seeds")
    seeds.fill("7, 8")
    seeds.press("Enter")
    wait_idle(page)
    expect(page.get_by_text("2 rows × 2 columns", exact=False)).to_be_visible()
    expect(page.get_by_test_id("stMetric").filter(has_text="Credits")).to_contain_text("4")
    expect(page.get_by_test_id("stMetric").filter(has_text="Left after")).to_contain_text("26")
    screenshot(page, "prompt-lab-quote")

    page.get_by_role("button", name="Run · 4 images · 4 credits").dblclick()  # a double click runs it once
    expect(page.get_by_text(re.compile(r"4 of 4 images delivered · charged 4 credits"))).to_be_visible(
        timeout=60_000)
    expect(page).to_have_url(re.compile(r"prompt_lab\?experiment=1$"))
    grid_images = page.get_by_role("img", name=re.compile(r"fox in the snow"))
    expect(grid_images).to_have_count(4)
    expect(sidebar.get_by_text("26 available")).to_be_visible()

    page.get_by_role("button", name="Vote").first.click()
    expect(page.get_by_text("1 vote · your pick")).to_be_visible()
    expect(page.get_by_role("heading", name="Most votes")).to_be_visible()
    screenshot(page, "prompt-lab-grid")

    page.get_by_role("button", name="View").nth(1).click()
    dialog = page.get_by_role("dialog")
    expect(dialog.get_by_text("Model version")).to_be_visible()
    expect(dialog.get_by_text("a blue fox in the snow").first).to_be_visible()
    screenshot(page, "prompt-lab-enlarged")

    # The experiment is saved and listed with what it cost.
    page.keyboard.press("Escape")
    page.get_by_role("button", name="All experiments").click()
    page.get_by_role("tab", name="Your experiments").click()
    expect(page.get_by_text("Finished · 4 of 4 images · 4 credits · 1 vote")).to_be_visible()
