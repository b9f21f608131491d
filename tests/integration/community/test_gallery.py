"""My Creations: one user's images, newest first in keyset pages, filters, prompt search, and deletion."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy import func, select

from studio_core.models import CreditLedgerEntry, GeneratedImage, ImageTemplate
from studio_core.services.community import FeedQuery
from studio_core.services.gallery import GalleryError, GalleryFilter, ImageNotFound
from studio_core.services.paging import BadCursor


def listed(world, user, filters: GalleryFilter | None = None, limit=24) -> list[int]:
    filters = filters or GalleryFilter()
    ids, cursor = [], None
    while True:
        page = world.gallery.list(user.id, filters, cursor, limit=limit)
        ids += [i.job.id for i in page.items]
        if page.next_cursor is None:
            return ids
        cursor = page.next_cursor


def test_only_your_own_images_newest_first_in_pages(world):
    mine = [world.image(world.ada, f"picture {i}") for i in range(7)]
    world.image(world.bob, "picture of bob's")
    newest_first = [j.id for j in reversed(mine)]
    assert listed(world, world.ada, limit=3) == newest_first
    assert listed(world, world.ada, GalleryFilter(sort="oldest"), limit=3) == newest_first[::-1]
    assert world.gallery.count(world.ada.id) == 7
    with pytest.raises(ImageNotFound):
        world.gallery.get(world.bob.id, mine[0].id)
    with pytest.raises(BadCursor):
        world.gallery.list(world.ada.id, GalleryFilter(sort="oldest"),
                           world.gallery.list(world.ada.id, limit=1).next_cursor)


def test_failed_jobs_are_listed_with_their_reason_and_not_charged(world):
    ok = world.image(world.ada, "fine")
    failed = world.image(world.ada, "doomed", fail=True)
    items = {i.job.id: i for i in world.gallery.list(world.ada.id).items}
    assert items[failed.id].job.status == "failed" and not items[failed.id].job.charged
    assert items[failed.id].job.error_message.endswith("Not charged.")
    assert items[ok.id].job.charged
    assert listed(world, world.ada, GalleryFilter(statuses=("failed",))) == [failed.id]
    assert listed(world, world.ada, GalleryFilter(statuses=("succeeded", "failed"))) == [failed.id, ok.id]
    assert world.gallery.thumbnail_url(items[failed.id]) is None


def test_filters_tier_template_dates_and_published(world):
    template = world.catalog.templates()[0]
    day = world.clock.now
    a = world.image(world.ada, "alpha", tier="premium2", at=day - timedelta(days=3))
    b = world.image(world.ada, "beta", template_id=template.id, at=day - timedelta(days=1))
    c = world.image(world.ada, "gamma", at=day)
    world.community.publish(world.ada.id, b.id, "Beta")
    unpublished = world.community.publish(world.ada.id, c.id, "Gamma")
    world.community.unpublish(world.ada.id, unpublished.id)
    assert listed(world, world.ada, GalleryFilter(tier="premium2")) == [a.id]
    assert listed(world, world.ada, GalleryFilter(template_id=template.id)) == [b.id]
    assert listed(world, world.ada, GalleryFilter(published=True)) == [b.id]
    assert listed(world, world.ada, GalleryFilter(published=False)) == [c.id, a.id]
    d = day.date()
    assert listed(world, world.ada, GalleryFilter(date_from=d - timedelta(days=1))) == [c.id, b.id]
    assert listed(world, world.ada, GalleryFilter(date_to=d - timedelta(days=1))) == [b.id, a.id]
    assert listed(world, world.ada, GalleryFilter(date_from=d - timedelta(days=2),
                                                  date_to=d - timedelta(days=1))) == [b.id]
    with pytest.raises(GalleryError, match="start date"):
        world.gallery.list(world.ada.id, GalleryFilter(date_from=date(2026, 2, 2), date_to=date(2026, 2, 1)))
    item = world.gallery.get(world.ada.id, b.id)
    assert item.is_published and item.post.title == "Beta" and item.job.template_title == template.title
    assert not world.gallery.get(world.ada.id, c.id).is_published


def test_search_by_prompt_text_only_in_your_own_images(world):
    fox = world.image(world.ada, "a red fox in deep snow")
    world.image(world.ada, "a whale under the ice")
    world.image(world.bob, "a red fox too")
    assert listed(world, world.ada, GalleryFilter(text="Fox")) == [fox.id]
    assert listed(world, world.ada, GalleryFilter(text="snow red")) == [fox.id]
    assert listed(world, world.ada, GalleryFilter(text="fox whale")) == []
    assert listed(world, world.bob, GalleryFilter(text="snow")) == []
    assert listed(world, world.ada, GalleryFilter(text="fox", statuses=("failed",))) == []


def test_delete_removes_the_file_unpublishes_and_keeps_the_ledger(world):
    job = world.image(world.ada, "to be deleted")
    path = world.store.root / job.image_key
    thumb = world.store.root / job.thumbnail_key
    assert path.exists() and thumb.exists()
    post = world.community.publish(world.ada.id, job.id, "Soon gone")
    world.community.like(world.bob.id, post.id)
    template = world.catalog.create_template(world.admin, category_id=world.catalog.categories()[0].id,
                                             title="Tmp", prompt_pattern="{subject}, minimal")
    admin_job = world.image(world.admin, "admin example")
    world.catalog.update_template(world.admin, template.id, category_id=template.category_id, title="Tmp",
                                  prompt_pattern="{subject}, minimal", example_image_id=admin_job.id)
    with world.db.read() as s:
        entries = s.scalar(select(func.count()).select_from(CreditLedgerEntry)
                           .where(CreditLedgerEntry.user_id == world.ada.id))
    balance = world.ledger.balance(world.ada.id).available

    with pytest.raises(ImageNotFound):
        world.gallery.delete(world.bob.id, job.id)
    world.gallery.delete(world.ada.id, job.id)
    world.gallery.delete(world.admin.id, admin_job.id)

    assert not path.exists() and not thumb.exists()
    with pytest.raises(ImageNotFound):
        world.gallery.get(world.ada.id, job.id)
    assert world.gallery.list(world.ada.id).is_empty
    assert world.community.feed(world.bob.id, FeedQuery()).is_empty
    assert world.community.get_post(world.ada.id, post.id).status == "unpublished"
    with pytest.raises(ImageNotFound):
        world.gallery.delete(world.ada.id, job.id)  # once
    with world.db.read() as s:
        row = s.get(GeneratedImage, job.id)
        assert row.deleted_at is not None and row.final_prompt == "to be deleted"  # the recipe stays
        assert s.scalar(select(func.count()).select_from(CreditLedgerEntry)
                        .where(CreditLedgerEntry.user_id == world.ada.id)) == entries
        assert s.get(ImageTemplate, template.id).example_image_id is None
    assert world.ledger.balance(world.ada.id).available == balance  # deleting refunds nothing
    assert [r for r in world.ledger.check_invariants() if not r.ok] == []


def test_a_running_job_cannot_be_deleted(world):
    world.generator.script = ["running"]
    from studio_core.services.generation import GenerateRequest, new_request_key

    job = world.generation.submit(world.ada.id, GenerateRequest(prompt="slow", tier="standard"),
                                  new_request_key())
    with pytest.raises(GalleryError, match="Cancel it"):
        world.gallery.delete(world.ada.id, job.id)
    world.generation.cancel(world.ada.id, job.id)
    world.gallery.delete(world.ada.id, job.id)
    assert world.gallery.list(world.ada.id).is_empty
