"""The whole product in a real browser, three people at once, run twice: on the offline providers, then with every
real SDK talking to the stand-in Replicate, Gemini, Cloudinary and Stripe servers of ``tests/fakes``.

1. The first account signs up and becomes the admin; its Account page gives a referral link.
2. A visitor follows that link (the sign-up form arrives prefilled with the code), signs up with the welcome
   bonus, enhances a prompt, generates an image and watches it finish without clicking, buys a credit pack (the
   sandbox's test card offline; Stripe Checkout against the stand-in, verified server side on return), and
   publishes the image to the Community. The admin's referral bonus arrives with that first image.
3. A second user likes, reports and remixes the post; the remix opens in the studio prefilled.
4. The admin works the moderation queue (dismisses the report, with a note kept in the history), renames a
   template in the catalog (creators see the new name), and reads the analytics dashboard.

Each step asserts what the person sees (balances, bonus, counts, statuses) and saves a screenshot.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import pytest
from playwright.sync_api import expect

from studio_core.bootstrap import Studio, build_studio
from studio_core.config import load_settings
from tests.e2e.conftest import (
    AppServer,
    card,
    click_once,
    expect_available,
    go,
    new_page,
    open_sign_up,
    running_app,
    screenshot,
    sign_in,
    sign_up,
    wait_idle,
)
from tests.fakes.cloudinary_server import FakeCloudinary
from tests.fakes.gemini_server import FakeGemini
from tests.fakes.replicate_server import FakeReplicate
from tests.fakes.stripe_server import FakeStripe

PROMPT = "a lighthouse on a cliff at dawn"
TITLE = "Lighthouse at dawn"
REPORT = "Looks like an advert for a hotel"
NOTE = "Checked: a landscape, not an advert"
NEW_TEMPLATE_TITLE = "Studio headshot, soft light"


@dataclass
class Journey:
    name: str  # "local" or "stand-ins"
    server: AppServer
    fakes: dict = field(default_factory=dict)  # the stand-in servers by provider, for the stand-ins run

    @property
    def offline(self) -> bool:
        return not self.fakes


@pytest.fixture(scope="module", params=["local", "stand-ins"])
def journey(request, tmp_path_factory) -> Iterator[Journey]:
    """A fresh app (its own data) per run; for the stand-ins run every provider setting points at a stand-in."""
    tmp = tmp_path_factory.mktemp(request.param)
    if request.param == "local":
        with running_app(tmp) as server:
            yield Journey("local", server)
        return
    with FakeGemini() as gemini, FakeReplicate() as replicate, FakeCloudinary() as cloudinary, \
            FakeStripe() as stripe:
        replicate.steps = 2  # "starting", two "processing" polls with progress, then the image
        with running_app(tmp, {
            "STUDIO_ENHANCER": "gemini", "STUDIO_GEMINI_API_KEY": gemini.api_key,
            "STUDIO_GEMINI_BASE_URL": gemini.url, "STUDIO_GEMINI_TIMEOUT_S": "10",
            "STUDIO_GENERATOR": "replicate", "STUDIO_REPLICATE_API_TOKEN": replicate.api_token,
            "STUDIO_REPLICATE_BASE_URL": replicate.url, "STUDIO_REPLICATE_TIMEOUT_S": "10",
            "STUDIO_STORAGE": "cloudinary", "STUDIO_CLOUDINARY_CLOUD_NAME": cloudinary.cloud_name,
            "STUDIO_CLOUDINARY_API_KEY": cloudinary.api_key, "STUDIO_CLOUDINARY_API_SECRET": cloudinary.api_secret,
            "STUDIO_CLOUDINARY_UPLOAD_PREFIX": cloudinary.url, "STUDIO_CLOUDINARY_DELIVERY_BASE_URL": cloudinary.url,
            "STUDIO_PAYMENTS": "stripe", "STUDIO_STRIPE_SECRET_KEY": stripe.api_key,
            "STUDIO_STRIPE_API_BASE": stripe.url,
        }) as server:
            yield Journey("stand-ins", server, {"gemini": gemini, "replicate": replicate,
                                                "cloudinary": cloudinary, "stripe": stripe})


@contextmanager
def backend(j: Journey) -> Iterator[Studio]:
    """A second Studio on the journey's data (another replica, as it were), for what a page cannot show."""
    studio = build_studio(load_settings(_env_file=None, data_dir=j.server.data_dir, enhancer="local",
                                        generator="local", storage="local", payments="sandbox"))
    try:
        yield studio
    finally:
        studio.db.dispose()


def shot(journey: Journey, page, step: str, *, height: int | None = None) -> None:
    """``height``: the app scrolls inside itself, so a long screen is shown whole in a taller window."""
    if height:
        page.set_viewport_size({"width": 1400, "height": height})
        wait_idle(page)
    screenshot(page, f"journey-{journey.name}-{step}")
    if height:
        page.set_viewport_size({"width": 1400, "height": 1100})


def metric(page, label: str):
    """The value of the st.metric with this label."""
    return page.get_by_test_id("stMetric").filter(has=page.get_by_test_id("stMetricLabel").get_by_text(
        label, exact=True)).get_by_test_id("stMetricValue")


# -- 1. the admin ----------------------------------------------------------------------------------------------
def admin_signs_up(j: Journey, page) -> str:
    sign_up(page, j.server.url, "ada@example.com", "Ada")
    expect(page.get_by_text("as the first account, you are the admin")).to_be_visible()
    expect_available(page, 30)
    expect(page.get_by_test_id("stSidebar").get_by_role("link", name="Moderation")).to_be_visible()
    go(page, "Account")
    expect(page.get_by_test_id("stMain").get_by_text("Admin", exact=True)).to_be_visible()  # the role
    link = page.get_by_test_id("stCode").filter(has_text="?ref=").inner_text().strip()
    assert re.fullmatch(re.escape(j.server.url) + r"/\?ref=[A-Z0-9]{6,16}", link), link
    shot(j, page, "01-admin-account")
    return link


# -- 2. the visitor ----------------------------------------------------------------------------------------------
def visitor_arrives_through_the_link(j: Journey, page, link: str) -> None:
    form = open_sign_up(page, link)
    expect(page.get_by_text("You were invited: your referral code is filled in below.")).to_be_visible()
    expect(form.get_by_role("textbox", name="Referral code (optional)")).to_have_value(link.rsplit("=", 1)[1])
    shot(j, page, "02-visitor-invited")
    sign_up(page, link, "grace@example.com", "Grace")
    expect_available(page, 40)  # 30 this month + the 10-credit welcome bonus of a referral
    sidebar = page.get_by_test_id("stSidebar")
    expect(sidebar.get_by_text("Paid 10 · On hold 0", exact=True)).to_be_visible()


def visitor_enhances_and_generates(j: Journey, page) -> str:
    expect(page.get_by_text(
        "Enhancer: offline rules · Images: Offline preview renderer (not AI)" if j.offline
        else "Enhancer: gemini · Images: Replicate · SDXL", exact=False)).to_be_visible()
    prompt = page.get_by_role("textbox", name="Prompt", exact=True)
    prompt.fill(PROMPT)
    wait_idle(page)
    click_once(page.get_by_role("button", name="Enhance prompt"))
    expect(page.get_by_text("Added to your prompt")).to_be_visible()
    enhanced = page.get_by_role("textbox", name="Enhanced prompt")
    expect(enhanced).to_have_value(re.compile("^" + re.escape(PROMPT) + ".+"))
    if not j.offline:  # what the stand-in Gemini added, shown phrase by phrase
        expect(page.get_by_text("+ warm golden hour light", exact=False)).to_be_visible()
        expect(enhanced).to_have_value(PROMPT + ", cinematic photo, warm golden hour light, wide-angle "
                                                "composition, serene mood")
    final_prompt = enhanced.input_value()
    shot(j, page, "03-visitor-enhanced")

    click_once(page.get_by_role("button", name="Generate · 1 credit"))
    dialog = page.get_by_role("dialog")
    expect(dialog.get_by_text("You are charged only if the image is delivered.")).to_be_visible()
    expect(dialog.get_by_test_id("stMetric")).to_contain_text("39 left after")
    click_once(dialog.get_by_role("button", name="Confirm"))
    # Nobody clicks from here on: the progress fragment polls until the image is there.
    if not j.offline:  # Replicate's stand-in takes a few polls: the progress (with a Cancel) shows meanwhile
        expect(page.get_by_test_id("stMain").get_by_role("button", name="Cancel")).to_be_visible()
    expect(page.get_by_role("button", name="Download PNG")).to_be_visible(timeout=60_000)
    picture = page.get_by_role("img", name="Generated image: " + final_prompt[:200])
    expect(picture).to_be_visible()
    expect_available(page, 39)
    page.get_by_text("Recipe", exact=True).click()
    expect(page.get_by_text("Model version")).to_be_visible()
    expect(page.get_by_text("Offline preview renderer (not AI)" if j.offline else "Replicate · SDXL",
                            exact=True).last).to_be_visible()
    shot(j, page, "04-visitor-result", height=1700)
    if not j.offline:  # the image went through the real SDKs: Replicate made it, Cloudinary stores it
        sent = j.fakes["replicate"].requests_to("POST", r"/predictions$")
        assert [r.json()["input"]["prompt"] for r in sent] == [final_prompt]
        cloudinary = j.fakes["cloudinary"]
        (stored,) = cloudinary.assets  # one upload: thumbnails are URL transformations of it
        assert stored.startswith("studio/")
        expect(picture).to_have_attribute("src", re.compile("^" + re.escape(cloudinary.url)))  # its CDN
    return final_prompt


def admin_sees_the_referral_bonus(j: Journey, page) -> None:
    go(page, "Wallet")  # a fresh run of the admin's page: the wallet bar is drawn again
    expect_available(page, 50)  # 30 + the 20-credit referral bonus, booked with the friend's first image
    click_once(page.get_by_role("tab", name="Invite friends"))
    expect(metric(page, "Friends joined")).to_have_text("1")
    expect(metric(page, "Credits earned")).to_have_text("20")
    shot(j, page, "05-admin-referral-bonus")
    click_once(page.get_by_role("tab", name="History"))  # the bonus, line by line
    expect(page.get_by_test_id("stDataFrame").first).to_be_visible()
    click_once(page.get_by_role("tab", name="Credits", exact=True))


def visitor_buys_a_pack(j: Journey, page, browser) -> None:
    go(page, "Wallet")
    expect(page.get_by_text("Monthly allowance: 29 of 30 left · 1 used")).to_be_visible()
    click_once(page.get_by_role("button", name="Buy for $5.00"))
    if j.offline:
        dialog = page.get_by_role("dialog")
        expect(dialog.get_by_text("4242 4242 4242 4242")).to_be_visible()
        dialog.get_by_role("textbox", name="Card number").fill("4242 4242 4242 4242")
        shot(j, page, "06-visitor-checkout")
        click_once(dialog.get_by_role("button", name="Pay $5.00"))
        expect(dialog).to_have_count(0)
    else:
        stripe = j.fakes["stripe"]
        checkout = page.get_by_role("link", name="Continue to checkout · $5.00")
        expect(checkout).to_be_visible()
        (session_id,) = stripe.sessions
        session = stripe.sessions[session_id]
        assert (session["amount_total"], session["currency"], session["mode"]) == (500, "usd", "payment")
        expect(checkout).to_have_attribute("href", session["url"])
        shot(j, page, "06-visitor-checkout")
        click_once(page.get_by_role("button", name="I have paid: check now"))  # too early: nothing is added
        expect(page.get_by_text("has not been completed", exact=False)).to_be_visible()
        expect_available(page, 39)
        stripe.pay(session_id)  # the customer pays on Stripe's page ...
        # ... and Stripe sends the browser back, in the tab Checkout opened: a new session, signed out.
        back, back_page = new_page(browser)
        try:
            back_to = session["success_url"].replace("{CHECKOUT_SESSION_ID}", session_id)
            assert back_to == f"{j.server.url}/wallet?session_id={session_id}"
            sign_in(back_page, back_to, "grace@example.com")
            # signing in lands on the page Stripe returned to, which verifies the session and credits it
            expect(back_page.get_by_role("heading", name="Wallet", exact=True)).to_be_visible()
            expect(back_page.get_by_text("Payment received: 50 credits added to your wallet.")).to_be_visible()
            shot(j, back_page, "07-visitor-back-from-stripe")
            expect_available(back_page, 89)
        finally:
            back.close()
        click_once(page.get_by_role("button", name="I have paid: check now"))  # the first tab: credited once
        expect(page.get_by_text("already added to your wallet", exact=False)).to_be_visible()
    if j.offline:
        expect(page.get_by_text("Payment received: 50 credits added to your wallet.")).to_be_visible()
    expect_available(page, 89)
    expect(page.get_by_text("Receipts (1)")).to_be_visible()
    expect(metric(page, "Paid credits")).to_have_text("60")  # the welcome bonus and the pack
    shot(j, page, "07-visitor-receipt", height=1600)


def visitor_publishes(j: Journey, page) -> None:
    go(page, "My Creations")
    click_once(card(page, PROMPT).get_by_role("button", name="View"))
    expect(page.get_by_text("Prompt used")).to_be_visible()
    page.get_by_role("textbox", name="Title").fill(TITLE)
    click_once(page.get_by_role("button", name="Publish to the Community"))
    expect(page.get_by_text("Published · 0 likes · 0 remixes")).to_be_visible()
    shot(j, page, "08-visitor-published", height=1500)


# -- 3. the second user ------------------------------------------------------------------------------------------
def second_user_likes_reports_remixes(j: Journey, page, final_prompt: str) -> None:
    expect_available(page, 30)  # no referral: no bonus
    go(page, "Community")
    post = card(page.get_by_test_id("stMain"), TITLE)
    expect(post.get_by_role("img", name=f"{TITLE} by Grace")).to_be_visible()
    click_once(post.get_by_role("button", name="Like · 0"))
    expect(post.get_by_role("button", name="Liked · 1")).to_be_visible()
    shot(j, page, "09-second-user-likes")
    click_once(post.get_by_role("button", name="View"))  # Remix and Report are in the post's view
    dialog = page.get_by_role("dialog")
    expect(dialog.get_by_text("Prompt used")).to_be_visible()
    click_once(dialog.get_by_role("button", name="Report"))
    dialog.get_by_text("Spam", exact=True).click()
    dialog.get_by_role("textbox", name="Details").fill(REPORT)
    shot(j, page, "10-second-user-reports")
    click_once(dialog.get_by_role("button", name="Send report"))
    expect(dialog.get_by_role("button", name="Reported")).to_be_disabled()  # back in the post's view
    click_once(dialog.get_by_role("button", name="Remix · 0"))
    expect(page.get_by_role("heading", name="Studio", exact=True)).to_be_visible()
    expect(page.get_by_role("textbox", name="Prompt", exact=True)).to_have_value(final_prompt)
    expect(page.get_by_text(f"Remix of “{TITLE}” by Grace")).to_be_visible()
    shot(j, page, "11-second-user-remix")


def visitor_sees_the_like(j: Journey, page) -> None:
    go(page, "My Creations")  # still on the image's page
    expect(page.get_by_text("Published · 1 like · 0 remixes")).to_be_visible()


# -- 4. the admin at work -----------------------------------------------------------------------------------------
def admin_moderates(j: Journey, page) -> None:
    go(page, "Account")  # any run rebuilds the navigation, which counts open reports
    go(page, "Moderation (1)", "Moderation")
    expect(page.get_by_role("tab", name="Queue (1)")).to_be_visible()
    expect(page.get_by_text("1 open report on 1 post", exact=False)).to_be_visible()
    expect(page.get_by_text("1 open report: Spam ×1")).to_be_visible()
    expect(page.get_by_text(REPORT, exact=False)).to_be_attached()
    expect(page.get_by_role("img", name=f"Reported image: {TITLE}")).to_be_visible()
    page.get_by_role("textbox", name="Note (kept in the history)").fill(NOTE)
    shot(j, page, "12-admin-queue")
    click_once(page.get_by_role("button", name="Dismiss reports"))
    expect(page.get_by_text("Dismiss reports: done. The post is now visible.")).to_be_visible()
    expect(page.get_by_text("No open reports")).to_be_visible()
    expect(page.get_by_test_id("stSidebar").get_by_role("link", name="Moderation", exact=True)).to_be_visible()
    page.get_by_role("tab", name="History").click()
    expect(page.get_by_test_id("stDataFrame")).to_be_visible()
    shot(j, page, "13-admin-history")
    # The history grid draws on a canvas, out of the page's reach: read the same rows the way the page does.
    with backend(j) as studio:
        (decision,) = studio.moderation.history(studio.accounts.by_email("ada@example.com")).items
    assert (decision.label, decision.post_title, decision.actor_name, decision.note) == (
        "Dismiss reports", TITLE, "Ada", NOTE)


def admin_edits_a_template(j: Journey, page) -> None:
    go(page, "Catalog")
    expect(page.get_by_test_id("stDataFrame")).to_be_visible()  # every template and its usage
    page.get_by_label("Template to change").click()
    page.get_by_role("option", name=re.compile(r"^Studio headshot · ")).click()
    template = page.get_by_test_id("stVerticalBlock").filter(
        has=page.get_by_text("Studio headshot", exact=True)).filter(
        has=page.get_by_role("button", name="Deactivate")).last
    template.get_by_text("Edit", exact=True).click()
    title = template.get_by_role("textbox", name="Title")
    title.fill(NEW_TEMPLATE_TITLE)
    title.press("Enter")
    wait_idle(page)
    expect(template.get_by_text("Preview: what the studio will put in the prompt box")).to_be_visible()
    click_once(template.get_by_role("button", name="Save changes"))
    expect(page.get_by_text("Template saved.")).to_be_visible()
    # still the template being changed, under its new name (the browser knows a choice by its label)
    expect(page.get_by_role("combobox", name="Template to change")).to_have_value(
        f"{NEW_TEMPLATE_TITLE} · Portraits")
    expect(page.get_by_text(NEW_TEMPLATE_TITLE, exact=True).first).to_be_visible()
    shot(j, page, "14-admin-catalog")
    go(page, "Studio")  # creators start from it under its new name
    expect(page.get_by_role("combobox", name="Template")).to_have_value(NEW_TEMPLATE_TITLE)


def admin_reads_analytics(j: Journey, page) -> None:
    go(page, "Analytics")
    expect(metric(page, "Generations")).to_have_text("1")
    expect(metric(page, "Success rate")).to_have_text("100.0%")
    expect(metric(page, "Credits spent")).to_have_text("1")
    expect(metric(page, "Revenue (USD)")).to_have_text("5.00")
    expect(metric(page, "Active users")).to_have_text("3")
    expect(page.get_by_role("figure", name="Chart: Enhancement funnel")).to_be_visible()
    expect(page.get_by_test_id("stPlotlyChart").first).to_be_visible()
    shot(j, page, "15-admin-analytics", height=4200)


def test_referral_to_moderation(journey, browser):
    contexts = []
    try:
        people = {}
        for who in ("admin", "visitor", "second"):
            context, page = new_page(browser)
            contexts.append(context)
            people[who] = page
        admin, visitor, second = people["admin"], people["visitor"], people["second"]

        link = admin_signs_up(journey, admin)
        visitor_arrives_through_the_link(journey, visitor, link)
        final_prompt = visitor_enhances_and_generates(journey, visitor)
        admin_sees_the_referral_bonus(journey, admin)
        visitor_buys_a_pack(journey, visitor, browser)
        visitor_publishes(journey, visitor)

        sign_up(second, journey.server.url, "bob@example.com", "Bob")
        second_user_likes_reports_remixes(journey, second, final_prompt)
        visitor_sees_the_like(journey, visitor)

        admin_moderates(journey, admin)
        admin_edits_a_template(journey, admin)
        admin_reads_analytics(journey, admin)

        with backend(journey) as studio:  # and not a credit lost or counted twice on the way
            assert [r for r in studio.ledger.check_invariants() if not r.ok] == []
    finally:
        for context in contexts:
            context.close()
