"""Accessibility in a real browser, on every screen: axe-core finds no serious or critical violation (nor a heading
that skips a level), every <img> has alt text, and the Tab key reaches every control, the key ones named.

axe-core comes from the npm registry, pinned in ``tests/e2e/package.json`` / ``package-lock.json``; the session
fixture below runs ``npm ci`` there when it is not installed yet. Without npm the module is skipped with the
reason, except under CI, where that is a failure (the same rule as the browser).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from playwright.sync_api import expect

from studio_core.bootstrap import build_studio
from studio_core.config import load_settings
from studio_core.services.generation import GenerateRequest, new_request_key
from tests.e2e.conftest import (
    PASSWORD,
    card,
    click_once,
    expect_available,
    go,
    new_page,
    open_sign_up,
    screenshot,
    sign_up,
    wait_idle,
)

E2E_DIR = Path(__file__).resolve().parent
AXE_JS = E2E_DIR / "node_modules" / "axe-core" / "axe.min.js"
SERIOUS = ("serious", "critical")
# Moderate, but cheap to keep right and a real obstacle to screen-reader navigation: held to zero as well.
ALSO_HELD = ("heading-order",)

# Violations in Streamlit's own markup that the app cannot change, each excused only on the exact elements named.
STREAMLIT_MARKUP = {
    # The sidebar navigation puts its section labels ("Create", "Admin") as <div>s straight inside its <ul>, and
    # the <li>s inside those <div>s. The app only passes st.navigation a dict of sections.
    "list": '[data-testid="stSidebarNavItems"]',
    "listitem": '[data-testid="stSidebarNavItems"] li',
    # st.metric's sparkline (Vega) adds an empty hover-highlight layer <g role="graphics-symbol"> without a
    # name; st.metric offers no way to label it. The figure's label, value and change are text beside it.
    "svg-img-alt": '[data-testid="stMetric"] g[role="graphics-symbol"]',
}

AXE_RUN = """async ([allowed, held]) => {
  const result = await axe.run(document, {resultTypes: ['violations']});
  const excused = (rule, node) => {
    const selector = allowed[rule];
    if (!selector || node.target.length !== 1) return false;  // a target inside a frame or shadow root: report it
    const el = document.querySelector(node.target[0]);
    return el !== null && el.matches(selector);
  };
  return result.violations
    .filter(v => ['serious', 'critical'].includes(v.impact) || held.includes(v.id))
    .map(v => ({id: v.id, impact: v.impact, help: v.help,
                nodes: v.nodes.filter(n => !excused(v.id, n))
                              .map(n => n.target.join(' >>> ') + '\\n      ' + n.html.slice(0, 160) + '\\n      '
                                        + (n.failureSummary || '').replace(/\\s+/g, ' ').slice(0, 300))}))
    .filter(v => v.nodes.length > 0);
}"""

IMAGES_WITHOUT_ALT = """() => [...document.images]
  .filter(img => !(img.getAttribute('alt') || '').trim())
  .map(img => img.outerHTML.slice(0, 160))"""

# One Tab press: mark what has focus; "round" once focus is back on the first thing this walk focused. (A data
# grid keeps focus for a few presses while it moves between its columns, so a repeat alone does not end a round.)
TAB_STEP = """(first) => {
  const el = document.activeElement;
  if (!el || el === document.body) return 'body';
  if (first) el.setAttribute('data-a11y-first', '');
  else if (el.hasAttribute('data-a11y-first')) return 'round';
  el.setAttribute('data-a11y-tabbed', '');
  return 'on';
}"""

# Every visible, enabled control in scope (the open dialog, else the whole page) that the walk did not reach.
# Controls Streamlit takes out of the Tab order on purpose (tabindex=-1: a select's chevron, a number input's
# +/- buttons, a dialog's close button, all of which have keyboard equivalents) are not counted; members of a
# group with one Tab stop and arrow keys (radios, tabs, segmented controls, pills) count once for the group.
UNREACHED = """() => {
  const scope = document.querySelector('[role=dialog]') || document;
  const selector = 'a[href], button, input, select, textarea, summary, [role=button], [role=link], [role=tab], '
                 + '[role=checkbox], [role=switch], [role=radio], [role=combobox], [role=slider], '
                 + '[tabindex]:not([tabindex="-1"])';
  const shown = el => {
    const box = el.getBoundingClientRect();
    return (box.width > 0 || box.height > 0) && getComputedStyle(el).visibility !== 'hidden'
      && !el.closest('[aria-hidden=true], [inert]');
  };
  const groupOf = el => {
    if (el.type === 'radio' && el.name) return 'radio:' + el.name;
    return el.closest('[role=tablist], [role=radiogroup], [data-testid=stButtonGroup]');
  };
  const groups = new Map();
  const unreached = [];
  for (const el of scope.querySelectorAll(selector)) {
    if (el.disabled || el.getAttribute('aria-disabled') === 'true' || el.type === 'hidden' || !shown(el)) continue;
    if (el.getAttribute('tabindex') === '-1' && !groupOf(el)) continue;
    const reached = el.hasAttribute('data-a11y-tabbed');
    const describe = () => {
      const name = (el.getAttribute('aria-label') || el.innerText || el.value || el.name || '').trim();
      const widget = el.closest('[data-testid]');
      return `${el.tagName.toLowerCase()} "${name.replace(/\\s+/g, ' ').slice(0, 60)}" in ${widget ? widget.dataset.testid : '?'}`;
    };
    const group = groupOf(el);
    if (group) {
      const entry = groups.get(group) || {reached: false, name: describe()};
      entry.reached = entry.reached || reached;
      groups.set(group, entry);
    } else if (!reached) {
      unreached.push(describe());
    }
  }
  for (const entry of groups.values()) if (!entry.reached) unreached.push('group of ' + entry.name);
  return unreached;
}"""


@pytest.fixture(scope="session")
def axe_js() -> Path:
    """axe-core's browser build, installed from the lock file on first use."""
    if not AXE_JS.exists():
        npm = shutil.which("npm")
        if npm is None:
            if os.environ.get("CI"):
                pytest.fail("CI needs npm to install axe-core for the accessibility tests (apt-get install npm)")
            pytest.skip("npm is not installed: install Node.js and npm to run the accessibility tests")
        done = subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=E2E_DIR, capture_output=True, text=True,
                              timeout=300)
        if done.returncode != 0 or not AXE_JS.exists():
            pytest.fail(f"npm ci in {E2E_DIR} failed:\n{done.stdout}\n{done.stderr}")
    return AXE_JS


# -- the checks --------------------------------------------------------------------------------------------------
def settle(page) -> None:
    """The script run has ended and no pointer hovers anything (a hover shows tooltips and toolbars mid-fade)."""
    wait_idle(page)
    page.mouse.move(0, 0)


def axe_violations(page, axe_js: Path, *, held: tuple[str, ...] = ALSO_HELD) -> list[str]:
    if not page.evaluate("() => typeof window.axe !== 'undefined'"):
        page.add_script_tag(path=str(axe_js))
    found = page.evaluate(AXE_RUN, [STREAMLIT_MARKUP, list(held)])
    return [f"[{v['impact']}] {v['id']}: {v['help']}\n    " + "\n    ".join(v["nodes"]) for v in found]


def tab_through(page, limit: int = 400) -> int:
    """Press Tab until focus is back where the walk began: one full round of the page's Tab order."""
    page.evaluate("() => document.querySelectorAll('[data-a11y-tabbed], [data-a11y-first]').forEach(el => {"
                  " el.removeAttribute('data-a11y-tabbed'); el.removeAttribute('data-a11y-first'); })")
    first = True
    for presses in range(1, limit + 1):
        page.keyboard.press("Tab")
        step = page.evaluate(TAB_STEP, first)
        if step == "round":
            return presses
        first = first and step == "body"
    raise AssertionError(f"{limit} Tab presses never came back round: is focus trapped somewhere?")


@dataclass
class Screen:
    name: str
    keys: list = field(default_factory=list)  # locators of the controls that must take focus
    images: int = 0  # at least this many <img> (so the alt check checks something)
    held: tuple[str, ...] = ALSO_HELD


def check(page, axe_js: Path, screen: Screen) -> None:
    if screen.images:  # the grid's pictures arrive in the last part of a run: wait for them
        expect(page.locator("img").nth(screen.images - 1)).to_be_visible()
    for key in screen.keys:
        expect(key).to_have_count(1)  # also: the rerun that drew it is over (it briefly shows two copies)
        expect(key).to_be_visible()
    settle(page)
    screenshot(page, f"a11y-{screen.name}")
    problems = axe_violations(page, axe_js, held=screen.held)
    assert not problems, f"axe on {screen.name}:\n" + "\n".join(problems)

    assert page.evaluate(IMAGES_WITHOUT_ALT) == [], f"images without alt text on {screen.name}"

    tab_through(page)
    unreached = page.evaluate(UNREACHED)
    assert not unreached, f"not reachable with Tab on {screen.name}: {unreached}"
    for key in screen.keys:
        expect(key).to_have_count(1)
        expect(key).to_have_attribute("data-a11y-tabbed", "")


# -- the people and their things ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def admin(app_server, browser):
    """The first account (the admin), signed in, with: Bob's published image (likeable and reportable), the
    admin's own image published and reported by Bob (so the moderation queue has an entry), both made by a
    second Studio on the same data."""
    context, page = new_page(browser, width=1400, height=1100)
    sign_up(page, app_server.url, "admin@example.com", "Admin")
    settings = load_settings(_env_file=None, data_dir=app_server.data_dir, enhancer="local", generator="local",
                             storage="local", payments="sandbox")
    studio = build_studio(settings)
    try:
        studio.generation.dispatch = None  # run jobs here, synchronously
        bob = studio.accounts.sign_up("bob@example.com", "Bob", PASSWORD)
        admin_user = studio.accounts.by_email("admin@example.com")
        posts = {}
        for owner, prompt, title in ((bob, "a fox in the snow, watercolour", "Snow fox"),
                                     (admin_user, "a quiet harbour at dusk, oil painting", "Harbour at dusk")):
            studio.ledger.ensure_monthly_allowance(owner.id)
            job = studio.generation.submit(owner.id, GenerateRequest(prompt=prompt, tier="standard"),
                                           new_request_key())
            studio.generation.run_job(job.id)
            posts[owner.id] = studio.community.publish(owner.id, job.id, title, None)
        studio.community.report(bob.id, posts[admin_user.id].id, "spam", "Looks like an advert")
    finally:
        studio.db.dispose()
    yield page
    context.close()


def test_sign_in_and_sign_up(app_server, page, axe_js):
    page.goto(app_server.url)
    expect(page.get_by_role("tab", name="Sign in")).to_be_visible()
    form = page.get_by_test_id("stForm").filter(has=page.get_by_role("button", name="Sign in"))
    check(page, axe_js, Screen("sign-in", keys=[
        form.get_by_role("textbox", name="Email"), form.get_by_role("textbox", name="Password"),
        form.get_by_role("button", name="Sign in"), page.get_by_role("tab", name="Sign in")]))

    form = open_sign_up(page, f"{app_server.url}/?ref=NOSUCHCODE")
    check(page, axe_js, Screen("sign-up", keys=[
        form.get_by_role("textbox", name="Email"), form.get_by_role("textbox", name="Display name"),
        form.get_by_role("textbox", name="Password", exact=True), form.get_by_role("textbox", name="Repeat password"),
        form.get_by_role("textbox", name="Referral code (optional)"),
        form.get_by_role("button", name="Create account")]))
    # A wrong sign-in shows an error: that state must be as readable as the rest.
    page.get_by_role("tab", name="Sign in").click()
    form = page.get_by_test_id("stForm").filter(has=page.get_by_role("button", name="Sign in"))
    form.get_by_role("textbox", name="Email").fill("nobody@example.com")
    form.get_by_role("textbox", name="Password").fill("not-the-password")
    form.get_by_role("button", name="Sign in").click()
    expect(page.get_by_test_id("stAlertContentError")).to_be_visible()
    check(page, axe_js, Screen("sign-in-error"))


def focus_with_tab(page, target, limit: int = 60) -> None:
    for _ in range(limit):
        page.keyboard.press("Tab")
        expect(target).to_have_count(1)  # leaving a changed field reruns the script: wait for one copy
        if target.evaluate("el => el === document.activeElement"):
            return
    raise AssertionError(f"{limit} Tab presses never reached {target}")


def test_studio_from_prompt_to_a_finished_image(admin, axe_js):
    page = admin
    go(page, "Studio")
    check(page, axe_js, Screen("studio-empty", keys=[
        page.get_by_role("textbox", name="Prompt", exact=True),
        page.get_by_role("textbox", name="Negative prompt (what to avoid)"),
        page.get_by_role("button", name="Enhance prompt"), page.get_by_role("button", name="Generate · 1 credit")]))

    page.get_by_role("textbox", name="Prompt", exact=True).fill("a lighthouse on a cliff at night")
    wait_idle(page)
    click_once(page.get_by_role("button", name="Enhance prompt"))
    expect(page.get_by_text("Added to your prompt")).to_be_visible()
    click_once(page.get_by_role("button", name="Generate · 1 credit"))
    dialog = page.get_by_role("dialog")
    expect(dialog.get_by_role("button", name="Confirm")).to_be_visible()
    check(page, axe_js, Screen("studio-confirm", keys=[
        dialog.get_by_role("button", name="Confirm"), dialog.get_by_role("button", name="Not now")]))
    click_once(dialog.get_by_role("button", name="Confirm"))
    expect(page.get_by_role("button", name="Download PNG")).to_be_visible(timeout=60_000)
    expect_available(page, 28)  # 30 this month, 1 for the image made in the fixture, 1 for this one
    page.get_by_text("Recipe", exact=True).click()
    expect(page.get_by_text("Model version")).to_be_visible()
    check(page, axe_js, Screen("studio-result", images=1, keys=[
        page.get_by_role("textbox", name="Enhanced prompt"), page.get_by_role("button", name="Download PNG"),
        page.get_by_role("button", name="Retry"), page.get_by_role("button", name="Vary seed")]))


def test_wallet_and_its_checkout(admin, axe_js):
    page = admin
    go(page, "Wallet")
    check(page, axe_js, Screen("wallet", keys=[
        page.get_by_role("tab", name="Credits", exact=True), page.get_by_role("button", name="Buy for $5.00")]))
    click_once(page.get_by_role("tab", name="History"))  # only the open tab is drawn
    check(page, axe_js, Screen("wallet-history", keys=[
        page.get_by_role("tab", name="History"), page.get_by_role("button", name="Download CSV")]))
    click_once(page.get_by_role("tab", name="Invite friends"))
    check(page, axe_js, Screen("wallet-referrals", keys=[page.get_by_role("tab", name="Invite friends")]))
    click_once(page.get_by_role("tab", name="Adjust credits"))
    check(page, axe_js, Screen("wallet-adjust", keys=[
        page.get_by_role("textbox", name="User's email"), page.get_by_role("button", name="Review adjustment")]))
    click_once(page.get_by_role("tab", name="Credits", exact=True))
    click_once(page.get_by_role("button", name="Buy for $5.00"))
    dialog = page.get_by_role("dialog")
    check(page, axe_js, Screen("wallet-checkout", keys=[
        dialog.get_by_role("textbox", name="Card number"), dialog.get_by_role("button", name="Pay $5.00"),
        dialog.get_by_role("button", name="Cancel")]))
    click_once(dialog.get_by_role("button", name="Cancel"))
    expect(page.get_by_text("Checkout canceled. No charge was made")).to_be_visible()


def test_prompt_lab(admin, axe_js):
    page = admin
    go(page, "Prompt Lab")
    template = page.get_by_role("textbox", name="Prompt template")
    check(page, axe_js, Screen("prompt-lab", keys=[template, page.get_by_role("textbox", name="Seeds"),
                                                   page.get_by_role("tab", name="New experiment")]))
    template.fill("a {red|blue} kite over the dunes")
    template.press("Control+Enter")
    run = page.get_by_role("button", name=re.compile(r"^Run · 2 images"))
    expect(run).to_be_visible()
    check(page, axe_js, Screen("prompt-lab-quote", keys=[run]))


def test_my_creations_and_an_image_page(admin, axe_js):
    page = admin
    go(page, "My Creations")
    check(page, axe_js, Screen("my-creations", images=2, keys=[
        page.get_by_role("textbox", name="Search your prompts"), page.get_by_role("button", name="View").first]))
    page.get_by_text("Filters", exact=True).click()  # drawn when opened
    status = page.get_by_role("combobox", name="Status")
    expect(status).to_be_visible()
    check(page, axe_js, Screen("my-creations-filters", images=2, keys=[status]))
    status.click()
    page.get_by_role("option", name="Canceled").click()
    expect(page.get_by_text("Nothing matches")).to_be_visible()  # both images finished
    page.keyboard.press("Escape")
    page.get_by_text("Filters", exact=True).click()  # closed again: the filter still applies
    expect(status).to_have_count(0)
    expect(page.get_by_text("Nothing matches")).to_be_visible()
    page.get_by_text("Filters", exact=True).click()
    wait_idle(page)  # a click while the reopening run is still drawing the fields can be lost
    page.get_by_role("button", name=re.compile("^Remove Canceled")).click()
    expect(page.get_by_role("button", name="View").first).to_be_visible()
    # the grid is drawn card by card: while it is, the innermost block with "quiet harbour" and a View button
    # can be the grid itself, and its only View button another card's
    wait_idle(page)
    click_once(card(page, "quiet harbour").get_by_role("button", name="View"))
    expect(page.get_by_role("button", name="All my images")).to_be_visible()
    check(page, axe_js, Screen("image-page", images=1, keys=[
        page.get_by_role("button", name="All my images"), page.get_by_role("button", name="Download"),
        page.get_by_role("button", name="Remix"), page.get_by_role("textbox", name="Title"),
        page.get_by_role("button", name="Update post")]))
    click_once(page.get_by_role("button", name="All my images"))


def test_community_post_and_report(admin, axe_js):
    page = admin
    go(page, "Community")
    foxes = card(page.get_by_test_id("stMain"), "Snow fox")
    expect(foxes.get_by_role("img", name="Snow fox by Bob")).to_be_visible()
    check(page, axe_js, Screen("community", images=2, keys=[
        page.get_by_role("textbox", name="Search"), foxes.get_by_role("button", name="Like · 0"),
        foxes.get_by_role("button", name="View")]))
    click_once(foxes.get_by_role("button", name="View"))
    dialog = page.get_by_role("dialog")
    expect(dialog.get_by_text("Model version")).to_be_visible()
    check(page, axe_js, Screen("community-post", images=1, keys=[
        dialog.get_by_role("button", name="Like · 0"), dialog.get_by_role("button", name="Remix · 0"),
        dialog.get_by_role("button", name="Report")]))
    click_once(dialog.get_by_role("button", name="Report"))
    expect(dialog.get_by_role("button", name="Send report")).to_be_visible()
    check(page, axe_js, Screen("community-report", keys=[
        dialog.get_by_role("textbox", name="Details"), dialog.get_by_role("button", name="Send report")]))
    click_once(dialog.get_by_role("button", name="Cancel"))
    expect(dialog.get_by_text("Model version")).to_be_visible()  # back in the post's view
    page.keyboard.press("Escape")
    expect(dialog).to_have_count(0)


def test_account(admin, axe_js):
    page = admin
    go(page, "Account")
    check(page, axe_js, Screen("account"))


def test_admin_screens(admin, axe_js):
    page = admin
    go(page, "Moderation (1)", "Moderation")
    check(page, axe_js, Screen("moderation", images=1, keys=[
        page.get_by_role("textbox", name="Note (kept in the history)"), page.get_by_role("button", name="Hide"),
        page.get_by_role("button", name="Dismiss reports"), page.get_by_role("tab", name="Queue (1)")]))

    go(page, "Catalog")
    check(page, axe_js, Screen("catalog", keys=[
        page.get_by_role("tab", name="Templates"), page.get_by_role("combobox", name="Show"),
        page.get_by_role("combobox", name="Template to change"), page.get_by_role("button", name="Deactivate")]))

    go(page, "Users")
    check(page, axe_js, Screen("users", keys=[
        page.get_by_role("textbox", name="Search by email or name"),
        page.get_by_role("combobox", name="User to change"), page.get_by_role("button", name="Make admin"),
        page.get_by_role("button", name="Disable")]))

    go(page, "Analytics")
    expect(page.get_by_test_id("stPlotlyChart").first).to_be_visible()
    check(page, axe_js, Screen("analytics", keys=[
        page.get_by_role("combobox", name="Range"), page.get_by_role("button", name="Download CSV").first]))


def test_signing_in_and_enhancing_with_the_keyboard_alone(app_server, page, admin):
    """No pointer at all: Tab to the field, type, Enter submits; Tab to a button, Space presses it."""
    page.goto(app_server.url)
    email = page.get_by_role("textbox", name="Email")  # the sign-up tab's fields are hidden
    expect(email).to_be_visible()
    focus_with_tab(page, email)
    page.keyboard.type("bob@example.com")
    page.keyboard.press("Tab")
    expect(page.get_by_role("textbox", name="Password")).to_be_focused()
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    expect(page.get_by_test_id("stSidebar").get_by_role("button", name="Sign out")).to_be_visible()
    wait_idle(page)
    prompt = page.get_by_role("textbox", name="Prompt", exact=True)
    focus_with_tab(page, prompt)
    page.keyboard.type("a paper boat on a puddle")
    focus_with_tab(page, page.get_by_role("button", name="Enhance prompt"))
    page.keyboard.press("Space")
    expect(page.get_by_text("Added to your prompt")).to_be_visible()
    expect(page.get_by_role("textbox", name="Enhanced prompt")).to_have_value(
        re.compile(r"^a paper boat on a puddle, .+"))
