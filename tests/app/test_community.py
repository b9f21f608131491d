"""The Community page under AppTest: empty state, cards, like / unlike, report through the dialog, remix into
the studio, your own posts (no liking yourself; hidden ones shown to you with their status), a ?post= link."""

from __future__ import annotations

from tests.app import _community as c
from tests.app.conftest import new_app, run, sign_up, texts


def _community(email="bob@example.com", name="Bob"):
    at = run(new_app())
    sign_up(at, email, name)
    at.switch_page("app_pages/community.py")
    return run(at)


def test_empty_feed_says_how_to_share(app_env):
    at = _community()
    assert at.title[0].value == "Community"
    assert "No posts yet" in texts(at)
    at.text_input(key="community_text").input("%")
    run(at)
    assert "Nothing here" in texts(at)


def test_like_report_and_remix_someone_elses_post(app_env):
    at = _community()  # Bob, the first account (admin); Ada posts
    studio = c.backend()
    ada = c.user(studio, "ada@example.com", "Ada")
    post_id = c.published(studio, ada, "Harbour at dusk", prompt="a quiet harbour at dusk, oil painting")
    run(at)
    assert "Harbour at dusk" in texts(at) and "by Ada" in texts(at)
    assert c.image_alts(at) == ["Harbour at dusk by Ada"]

    at.button(key=f"card_like_{post_id}").click()
    run(at)
    assert at.button(key=f"card_like_{post_id}").label == "Liked · 1"
    at.button(key=f"card_like_{post_id}").click()  # unlike
    run(at)
    assert at.button(key=f"card_like_{post_id}").label == "Like · 0"

    assert {b.key for b in at.button} >= {f"card_like_{post_id}", f"open_{post_id}"}
    assert f"card_report_{post_id}" not in {b.key for b in at.button}  # Remix and Report are in the post's view
    at.button(key=f"open_{post_id}").click()
    run(at)
    assert "Prompt used" in texts(at)
    at.button(key=f"dialog_report_{post_id}").click()
    run(at)
    at.radio(key="report_reason").set_value("other")
    at.button(key="report_send").click()
    run(at)
    assert any("details are required" in e.value for e in at.error)
    at.text_area(key="report_details").input("This is my photo")
    at.button(key="report_send").click()
    run(at)
    reported = at.button(key=f"dialog_report_{post_id}")  # back in the post's view
    assert reported.disabled and reported.label == "Reported"  # once per user and post
    assert c.open_reports(studio) == 1

    at.button(key=f"dialog_remix_{post_id}").click()
    run(at)
    assert at.title[0].value == "Studio"
    assert at.text_area(key="studio_prompt").value == "a quiet harbour at dusk, oil painting"
    assert "Remix of “Harbour at dusk” by Ada" in texts(at)
    # the dashboard's community figures come from these events
    assert [e["post_id"] for e in c.events(studio, "like")] == [post_id]  # the like, not the unlike
    assert [e["reason"] for e in c.events(studio, "report")] == ["other"]
    assert [e["post_id"] for e in c.events(studio, "remix")] == [post_id]


def test_own_posts_cannot_be_liked_and_hidden_ones_show_their_status_to_the_author(app_env):
    at = _community("ada@example.com", "Ada")
    studio = c.backend()
    ada = c.user(studio, "ada@example.com")
    shown = c.published(studio, ada, "Shown")
    hidden = c.published(studio, ada, "Hidden one")
    studio.moderation.act(ada, hidden, "hide", "testing")  # Ada is the admin here (first account)
    run(at)
    assert at.button(key=f"card_like_{shown}").disabled
    at.button(key=f"open_{shown}").click()
    run(at)
    assert at.button(key=f"dialog_like_{shown}").disabled and at.button(key=f"dialog_report_{shown}").disabled
    assert "Hidden one" not in texts(at)
    at.toggle(key="community_mine").set_value(True)
    run(at)
    assert "Hidden one" in texts(at) and "Hidden pending review" in texts(at)


def test_a_post_link_opens_its_page_with_the_recipe(app_env):
    at = _community()
    studio = c.backend()
    ada = c.user(studio, "ada@example.com", "Ada")
    post_id = c.published(studio, ada, "Lantern", prompt="paper lanterns over a river")
    at.query_params["post"] = str(post_id)
    run(at)
    shown = texts(at)
    assert "Prompt used" in shown and "paper lanterns over a river" in shown and "Seed" in shown
    assert at.button(key=f"dialog_like_{post_id}") is not None


def test_a_published_remix_links_to_its_source_and_counts_on_it(app_env):
    at = _community()
    studio = c.backend()
    ada = c.user(studio, "ada@example.com", "Ada")
    bob = studio.accounts.by_email("bob@example.com")
    source = c.published(studio, ada, "Harbour at dusk")
    source_image = studio.community.get_post(bob.id, source).image_id
    studio.community.start_remix(bob.id, source)
    remix = c.image(studio, bob, "harbour at dawn instead", remixed_from=source_image)
    remix_post = studio.community.publish(bob.id, remix.id, "Harbour at dawn").id
    run(at)
    assert "by Ada · 1 remix" in texts(at)  # on the source's card (it has no category)
    # the label is Markdown-escaped (a title is user text); the link opens the source post
    # on the card one line (a long title is cut with "…"), the whole label on hover
    links = {link.label.replace("\\", ""): link.proto for link in at.page_link}
    link = links["Remix of “Harbour at…"]
    assert link.help.replace("\\", "") == "Remixed from “Harbour at dusk” by Ada"
    assert link.page.endswith("community") and f"post={source}" in link.query_string
    at.button(key=f"open_{remix_post}").click()  # the remix's own view: the whole label
    run(at)
    links = {link.label.replace("\\", ""): link.proto for link in at.page_link}
    assert f"post={source}" in links["Remixed from “Harbour at dusk” by Ada"].query_string
    assert remix_post != source


def test_a_chosen_category_stays_chosen_when_an_admin_renames_it(app_env):
    at = _community()  # Bob, the first account: an admin too, but the rename comes from elsewhere
    studio = c.backend()
    category = studio.catalog.categories()[2]
    at.selectbox(key="community_category").set_value(category.id)
    run(at)
    studio.catalog.update_category(c.first_admin(studio), category.id, "Still lifes", category.description)
    run(at)  # the next click sends the old label
    box = at.selectbox(key="community_category")
    assert box.value == category.id and box.options[box.index] == "Still lifes"
