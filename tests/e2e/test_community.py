"""In a real browser, three people: Ada publishes an image, Bob likes, reports and remixes it, the admin hides
it from the moderation queue, and Bob no longer sees it while Ada sees it as hidden."""

import re

from playwright.sync_api import expect

from studio_core.bootstrap import build_studio
from studio_core.config import load_settings
from studio_core.services.generation import GenerateRequest, new_request_key
from tests.e2e.conftest import go, new_page, screenshot, sign_up

PROMPT = "a quiet harbour at dusk, oil painting, warm lamps on the water"


def _ada_image(app_server) -> int:
    """Ada's finished image, made by a second Studio on the same data (another replica, as it were): the
    studio's own journey is the studio test's business."""
    settings = load_settings(_env_file=None, data_dir=app_server.data_dir, enhancer="local", generator="local",
                             storage="local", payments="sandbox")
    studio = build_studio(settings)
    try:
        studio.generation.dispatch = None  # run it here, synchronously
        ada = studio.accounts.by_email("ada@example.com")
        job = studio.generation.submit(ada.id, GenerateRequest(prompt=PROMPT, tier="standard"), new_request_key())
        studio.generation.run_job(job.id)
        assert studio.generation.get(ada.id, job.id).status == "succeeded"
        return job.id
    finally:
        studio.db.dispose()


def _person(browser, app_server, email, name):
    context, page = new_page(browser)
    sign_up(page, app_server.url, email, name)
    return context, page


def test_publish_like_report_remix_then_the_admin_hides_it(app_server, browser):
    contexts = []
    try:
        for email, name in (("admin@example.com", "Admin"), ("ada@example.com", "Ada"),
                            ("bob@example.com", "Bob")):
            contexts.append(_person(browser, app_server, email, name))
        (_, admin), (_, ada), (_, bob) = contexts
        image_id = _ada_image(app_server)

        # Ada publishes it from My Creations
        go(ada, "My Creations", "My Creations")
        expect(ada.get_by_role("img", name=re.compile("quiet harbour"))).to_be_visible()
        ada.get_by_role("button", name="View").click()
        expect(ada.get_by_text("Prompt used")).to_be_visible()
        ada.get_by_role("textbox", name="Title").fill("Harbour at dusk")
        ada.get_by_role("button", name="Publish to the Community").click()
        expect(ada.get_by_text("Published · 0 likes · 0 remixes")).to_be_visible()
        screenshot(ada, "community-1-ada-published")

        # Bob finds it in the Community, likes it, reports it, and remixes it
        go(bob, "Community", "Community")
        card = bob.get_by_test_id("stMain")  # the only post on the page
        expect(card.get_by_role("img", name="Harbour at dusk by Ada")).to_be_visible()
        expect(card.get_by_text("by Ada")).to_be_visible()
        card.get_by_role("button", name="Like · 0").click()
        expect(card.get_by_role("button", name="Liked · 1")).to_be_visible()
        card.get_by_role("button", name="View").click()  # Remix and Report are in the post's view
        dialog = bob.get_by_role("dialog")
        expect(dialog.get_by_text("Prompt used")).to_be_visible()
        dialog.get_by_role("button", name="Report").click()
        expect(dialog.get_by_role("button", name="Send report")).to_be_visible()
        dialog.get_by_text("Spam", exact=True).click()
        dialog.get_by_role("textbox", name="Details").fill("Looks like an advert to me")
        screenshot(bob, "community-2-bob-reports")
        dialog.get_by_role("button", name="Send report").click()
        expect(dialog.get_by_role("button", name="Reported")).to_be_disabled()  # back in the post's view
        dialog.get_by_role("button", name="Remix · 0").click()
        expect(bob.get_by_role("heading", name="Studio", exact=True)).to_be_visible()
        expect(bob.get_by_role("textbox", name="Prompt", exact=True)).to_have_value(PROMPT)
        expect(bob.get_by_text("Remix of “Harbour at dusk” by Ada")).to_be_visible()
        screenshot(bob, "community-3-bob-remixes")

        # The admin sees the open report in the navigation and hides the post with a note
        go(admin, "Community", "Community")  # any click reruns the app and rebuilds the navigation
        go(admin, "Moderation (1)", "Moderation")
        expect(admin.get_by_text("Looks like an advert to me", exact=False)).to_be_attached()
        admin.get_by_role("textbox", name="Note (kept in the history)").fill("Advertising, hidden for review")
        screenshot(admin, "community-4-admin-queue")
        admin.get_by_role("button", name="Hide").click()
        expect(admin.get_by_text("Hide: done. The post is now hidden.")).to_be_visible()
        expect(admin.get_by_text("No open reports")).to_be_visible()
        screenshot(admin, "community-5-admin-hid-it")

        # Bob no longer sees it; Ada sees her post as hidden pending review
        go(bob, "Community", "Community")
        expect(bob.get_by_text("No posts yet")).to_be_visible()
        expect(bob.get_by_text("Harbour at dusk")).to_have_count(0)
        screenshot(bob, "community-6-bob-no-longer-sees-it")
        go(ada, "My Creations", "My Creations")  # still on her image's page
        expect(ada.get_by_text("Hidden pending review")).to_be_visible()
        expect(ada.get_by_text("Moderators decide what happens to this post.")).to_be_visible()
        screenshot(ada, "community-7-ada-sees-it-hidden")
        assert image_id
    finally:
        for context, _ in contexts:
            context.close()
