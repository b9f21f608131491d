"""Moderation: the queue (worst first), hide / restore / remove / dismiss with notes, the history; and every
admin service refusing creators (and admins demoted since their page loaded)."""

from __future__ import annotations

import pytest
from sqlalchemy import select, update

from studio_core.models import ModerationAction, PostReport, User
from studio_core.services.accounts import AccessDenied
from studio_core.services.community import FeedQuery
from studio_core.services.moderation import ModerationError


def test_queue_groups_open_reports_by_post_worst_first(world):
    mild = world.post(world.ada, "Mild")
    bad = world.post(world.bob, "Bad")
    clean = world.post(world.cy, "Clean")
    world.community.report(world.bob.id, mild.id, "spam")
    world.community.report(world.ada.id, bad.id, "nsfw", "explicit")
    world.community.report(world.cy.id, bad.id, "copyright", "my photo")
    assert world.moderation.open_report_count(world.admin) == 3
    listed = world.moderation.queue(world.admin)
    queue = listed.items
    assert [q.post_id for q in queue] == [bad.id, mild.id] and listed.waiting_posts == 2
    assert world.moderation.queue(world.admin, limit=1).waiting_posts == 2  # counted before the limit
    worst = queue[0]
    assert (worst.title, worst.author_name, worst.status) == ("Bad", "Bob", "visible")
    assert [(r.reporter_name, r.reason, r.details) for r in worst.reports] == [
        ("Ada", "nsfw", "explicit"), ("Cy", "copyright", "my photo")]
    assert worst.reason_counts == {"copyright": 1, "nsfw": 1}
    assert world.moderation.thumbnail_url(worst).endswith(".thumb.webp")
    assert clean.id not in [q.post_id for q in queue]


def test_actions_change_the_post_resolve_reports_and_are_recorded(world):
    post = world.post(world.ada, "Contested")
    for user in (world.bob, world.cy):
        world.community.report(user.id, post.id, "spam")

    with pytest.raises(ModerationError, match="note"):
        world.moderation.act(world.admin, post.id, "hide", "   ")
    assert world.moderation.act(world.admin, post.id, "hide", "Looks like spam") == "hidden"
    assert world.community.feed(world.bob.id, FeedQuery()).is_empty
    assert world.moderation.open_report_count(world.admin) == 0
    with world.db.read() as s:
        assert {r.status for r in s.scalars(select(PostReport))} == {"actioned"}

    assert world.moderation.act(world.admin, post.id, "restore", "Not spam after all") == "visible"
    assert [p.id for p in world.community.feed(world.bob.id, FeedQuery()).items] == [post.id]
    # restored posts start afresh: old (resolved) reports do not count towards the threshold
    world.community.report(world.admin.id, post.id, "other", "still not sure")
    assert world.community.get_post(world.bob.id, post.id).status == "visible"
    assert world.moderation.act(world.admin, post.id, "dismiss", "Fine") == "visible"
    assert world.moderation.act(world.admin, post.id, "remove", "Final decision") == "removed"
    assert world.community.get_post(world.ada.id, post.id).status_label == "Removed by moderators"

    history = world.moderation.history(world.admin).items
    assert [(h.action, h.note, h.actor_name, h.target_name, h.post_title) for h in history] == [
        ("remove", "Final decision", "Admin", "Ada", "Contested"),
        ("dismiss", "Fine", "Admin", "Ada", "Contested"),
        ("restore", "Not spam after all", "Admin", "Ada", "Contested"),
        ("hide", "Looks like spam", "Admin", "Ada", "Contested")]
    page = world.moderation.history(world.admin, limit=3)
    assert len(page.items) == 3 and world.moderation.history(world.admin, page.next_cursor).items[0].action == "hide"


def test_auto_hidden_posts_appear_in_history_and_can_be_restored(world):
    post = world.post(world.ada, "Brigaded")
    for user in (world.bob, world.cy, world.admin):
        world.community.report(user.id, post.id, "hateful")
    history = world.moderation.history(world.admin).items
    assert [(h.label, h.actor_name) for h in history] == [("Hidden automatically", "Admin")]
    world.moderation.act(world.admin, post.id, "restore", "Coordinated false reports")
    assert world.community.get_post(world.bob.id, post.id).status == "visible"
    with world.db.read() as s:
        assert [a.action for a in s.scalars(select(ModerationAction).order_by(ModerationAction.id))] == [
            "auto_hide", "restore"]


def test_an_unpublished_post_cannot_be_restored_for_its_author(world):
    post = world.post(world.ada, "Changed my mind")
    world.community.report(world.bob.id, post.id, "spam")
    world.community.unpublish(world.ada.id, post.id)
    with pytest.raises(ModerationError, match="unpublished"):
        world.moderation.act(world.admin, post.id, "restore", "no")
    world.moderation.act(world.admin, post.id, "dismiss", "gone anyway")
    assert world.community.get_post(world.ada.id, post.id).status == "unpublished"


def _admin_calls(world, post_id: int, category_id: int, template_id: int):
    m, c = world.moderation, world.catalog
    return {
        "open_report_count": lambda u: m.open_report_count(u),
        "queue": lambda u: m.queue(u),
        "act": lambda u: m.act(u, post_id, "hide", "x"),
        "history": lambda u: m.history(u),
        "create_category": lambda u: c.create_category(u, "Sneaky"),
        "update_category": lambda u: c.update_category(u, category_id, "Renamed"),
        "set_category_active": lambda u: c.set_category_active(u, category_id, False),
        "move_category": lambda u: c.move_category(u, category_id, 1),
        "create_template": lambda u: c.create_template(u, category_id=category_id, title="T",
                                                       prompt_pattern="{subject}"),
        "update_template": lambda u: c.update_template(u, template_id, category_id=category_id, title="T",
                                                       prompt_pattern="{subject}"),
        "set_template_active": lambda u: c.set_template_active(u, template_id, False),
        "move_template": lambda u: c.move_template(u, template_id, 1),
        "template_usage": lambda u: c.template_usage(u),
        "example_candidates": lambda u: c.example_candidates(u),
    }


def test_every_admin_service_refuses_creators_and_demoted_admins(world):
    post = world.post(world.ada, "Target")
    world.community.report(world.bob.id, post.id, "spam")
    category = world.catalog.categories()[0]
    template = world.catalog.templates(category.id)[0]
    calls = _admin_calls(world, post.id, category.id, template.id)
    stale_admin = world.user("Former admin", role="admin")
    disabled_admin = world.user("Disabled admin", role="admin")
    with world.db.write() as s:  # demoted or disabled after their page loaded: the UserView still says "admin"
        s.execute(update(User).where(User.id == stale_admin.id).values(role="creator"))
        s.execute(update(User).where(User.id == disabled_admin.id).values(disabled=True))
    for name, call in calls.items():
        for user in (world.ada, stale_admin, disabled_admin):
            with pytest.raises(AccessDenied, match="Only admins"):
                call(user)
                pytest.fail(f"{name} let {user.display_name} in")
        call(world.admin)  # the real admin may (each call is valid)
    renamed = next(c for c in world.catalog.categories(include_inactive=True) if c.id == category.id)
    assert (renamed.name, renamed.active) == ("Renamed", False)  # only the admin's calls went through
