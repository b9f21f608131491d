"""The Moderation page under AppTest: admins only (not even registered for creators), the open-report count
in the navigation, the queue with reasons and reporters, an action with its note, and the history."""

from __future__ import annotations

import pytest

from tests.app import _community as c
from tests.app.conftest import new_app, run, sign_up, texts


def _admin_at_moderation():
    at = run(new_app())
    sign_up(at, "admin@example.com", "Admin")
    at.switch_page("app_pages/admin_moderation.py")
    return run(at)


def test_empty_queue_and_history(app_env):
    at = _admin_at_moderation()
    assert at.title[0].value == "Moderation"
    assert "No open reports" in texts(at) and "No decisions yet" not in texts(at)  # the open tab only
    assert "Moderation" in c.page_titles(at)
    at.session_state["mod_tab"] = "History"
    run(at)
    assert "No decisions yet" in texts(at) and "No open reports" not in texts(at)


def test_creators_do_not_get_the_page(app_env):
    _admin_at_moderation()
    at = run(new_app())
    sign_up(at, "ada@example.com", "Ada")
    with pytest.raises(ValueError, match="Known pages"):
        at.switch_page("app_pages/admin_moderation.py")
    assert not any(t.startswith("Moderation") for t in c.page_titles(at))


def test_reported_post_is_hidden_with_a_note_and_recorded(app_env):
    at = _admin_at_moderation()
    studio = c.backend()
    ada, bob, cy = (c.user(studio, f"{n}@example.com", n.title()) for n in ("ada", "bob", "cy"))
    post_id = c.published(studio, ada, "Spammy", prompt="buy now, limited offer")
    studio.community.report(bob.id, post_id, "spam", "links to a shop")
    studio.community.report(cy.id, post_id, "copyright")
    run(at)
    assert "Moderation (2)" in c.page_titles(at)
    shown = texts(at)
    assert "Spammy" in shown and "2 open reports" in shown and "Spam ×1" in shown
    assert "Bob · Spam\nlinks to a shop" in shown
    assert c.image_alts(at) == ["Reported image: Spammy"]

    at.button(key=f"mod_hide_{post_id}").click()
    run(at)
    assert any("note" in e.value for e in at.error)  # a decision needs its note
    at.text_input(key=f"mod_note_{post_id}").input("Advertising")
    at.button(key=f"mod_hide_{post_id}").click()
    run(at)
    assert "Hide: done. The post is now hidden." in texts(at)
    assert "No open reports" in texts(at) and "Moderation" in c.page_titles(at)
    assert not at.dataframe  # the history is drawn only while its tab is open
    at.session_state["mod_tab"] = "History"  # what clicking the tab sets
    run(at)
    history = at.dataframe[0].value
    assert history.iloc[0][["Action", "Post", "Author", "By", "Note"]].tolist() == [
        "Hide", "Spammy", "Ada", "Admin", "Advertising"]
    assert studio.community.feed(bob.id).is_empty


def test_a_long_queue_is_a_table_worst_first_with_one_post_under_review(app_env, monkeypatch):
    at = _admin_at_moderation()
    monkeypatch.setenv("STUDIO_MAX_JOBS_PER_MINUTE", "100")  # the test's own Studio publishes a dozen at once
    studio = c.backend()
    ada, bob, cy = (c.user(studio, f"{n}@example.com", n.title()) for n in ("ada", "bob", "cy"))
    posts = [c.published(studio, ada, f"Post {i}") for i in range(12)]
    for post_id in posts:
        studio.community.report(bob.id, post_id, "spam")
    studio.community.report(cy.id, posts[-1], "nsfw")  # the most reported one comes first
    run(at)
    queue = at.dataframe[0].value
    assert len(queue) == 12 and queue.iloc[0][["Post", "Reports"]].tolist() == ["Post 11", 2]
    assert "13 open reports on 12 posts, most reported first" in texts(at)
    notes = [t.key for t in at.text_input if t.key.startswith("mod_note_")]
    assert notes == [f"mod_note_{posts[-1]}"]  # one post under review: the worst
    assert studio.moderation.queue(c.first_admin(studio), limit=5).waiting_posts == 12  # however many listed

    at.selectbox(key="mod_pick").set_value(posts[3])  # another one, chosen from the list
    run(at)
    assert [t.key for t in at.text_input if t.key.startswith("mod_note_")] == [f"mod_note_{posts[3]}"]
    at.text_input(key=f"mod_note_{posts[3]}").input("Spam")
    at.button(key=f"mod_hide_{posts[3]}").click()
    run(at)
    assert "Hide: done. The post is now hidden." in texts(at)
    assert len(at.dataframe[0].value) == 11 and "Post 3" not in list(at.dataframe[0].value["Post"])
    # the decided post left the queue: the worst one is under review again
    assert [t.key for t in at.text_input if t.key.startswith("mod_note_")] == [f"mod_note_{posts[-1]}"]
