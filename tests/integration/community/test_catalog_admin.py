"""The catalog's admin side: categories and templates created, edited, reordered, deactivated (gone from the
studio, history kept), the {subject} slot enforced, examples from the admin's own images, usage figures."""

from __future__ import annotations

from datetime import timedelta

import pytest

from studio_core.services.accounts import AccessDenied
from studio_core.services.catalog import CatalogError, CatalogService, TemplateUsage, fill_pattern
from studio_core.services.generation import GenerateRequest, GenerationError, new_request_key


def test_create_edit_and_reorder_categories(world):
    before = [c.name for c in world.catalog.categories()]
    cat = world.catalog.create_category(world.admin, "  Still   life ", "Fruit, bowls, light")
    assert (cat.name, cat.slug, cat.active) == ("Still life", "still-life", True)
    assert world.catalog.create_category(world.admin, "Still life!").slug == "still-life-2"
    assert [c.name for c in world.catalog.categories()][-2:] == ["Still life", "Still life!"]
    world.catalog.move_category(world.admin, cat.id, -1)
    world.catalog.move_category(world.admin, cat.id, -1)
    names = [c.name for c in world.catalog.categories()]
    assert names.index("Still life") == len(before) - 2
    world.catalog.move_category(world.admin, cat.id, -100)  # clamped to the top
    assert world.catalog.categories()[0].id == cat.id
    renamed = world.catalog.update_category(world.admin, cat.id, "Still lifes", "")
    assert (renamed.name, renamed.slug) == ("Still lifes", "still-life")  # slugs stay put
    with pytest.raises(CatalogError, match="name"):
        world.catalog.create_category(world.admin, "   ")


def test_templates_need_the_subject_slot_and_a_known_tier(world):
    category = world.catalog.categories()[0]
    for pattern in ("a cat", "{Subject} on a hill", "{ subject }"):
        with pytest.raises(CatalogError, match="subject"):
            world.catalog.create_template(world.admin, category_id=category.id, title="T",
                                          prompt_pattern=pattern)
    with pytest.raises(CatalogError, match="tier"):
        world.catalog.create_template(world.admin, category_id=category.id, title="T",
                                      prompt_pattern="{subject}", default_tier="ultra")
    t = world.catalog.create_template(world.admin, category_id=category.id, title="Neon sign",
                                      prompt_pattern="glowing neon sign of {subject}, night, {brick} wall",
                                      negative_prompt="blurry", default_tier="premium2")
    assert t.fill("a coffee cup") == "glowing neon sign of a coffee cup, night, {brick} wall"
    assert fill_pattern(t.prompt_pattern, " ") == "glowing neon sign of your subject, night, {brick} wall"
    assert world.catalog.templates(category.id)[-1].id == t.id  # last in its category


def test_deactivated_items_leave_the_studio_but_keep_their_history(world):
    category = world.catalog.categories()[0]
    template = world.catalog.templates(category.id)[0]
    job = world.image(world.ada, "made from it", template_id=template.id)
    world.catalog.set_template_active(world.admin, template.id, False)
    assert template.id not in [t.id for t in world.catalog.templates()]
    assert template.id in [t.id for t in world.catalog.templates(include_inactive=True)]
    with pytest.raises(GenerationError, match="no longer available"):
        world.generation.submit(world.ada.id, GenerateRequest(prompt="x", tier="standard",
                                                              template_id=template.id), new_request_key())
    assert world.gallery.get(world.ada.id, job.id).job.template_title == template.title
    world.catalog.set_category_active(world.admin, category.id, False)
    assert category.id not in [c.id for c in world.catalog.categories()]
    assert all(t.category_id != category.id for t in world.catalog.templates())
    world.catalog.set_category_active(world.admin, category.id, True)
    world.catalog.set_template_active(world.admin, template.id, True)
    assert template.id in [t.id for t in world.catalog.templates()]


def test_editing_moves_reorders_and_sets_an_example_from_the_admins_own_images(world):
    first, second = world.catalog.categories()[:2]
    a, b = world.catalog.templates(first.id)[:2]
    world.catalog.move_template(world.admin, b.id, -1)
    assert [t.id for t in world.catalog.templates(first.id)][:2] == [b.id, a.id]
    own = world.image(world.admin, "admin's picture")
    others = world.image(world.ada, "ada's picture")
    failed = world.image(world.admin, "broken", fail=True)
    assert [c.image_id for c in world.catalog.example_candidates(world.admin)] == [own.id]
    for bad in (others.id, failed.id):
        with pytest.raises(CatalogError, match="your own"):
            world.catalog.update_template(world.admin, a.id, category_id=first.id, title=a.title,
                                          prompt_pattern=a.prompt_pattern, example_image_id=bad)
    moved = world.catalog.update_template(world.admin, a.id, category_id=second.id, title="Moved",
                                          prompt_pattern="{subject}, moved", example_image_id=own.id)
    assert (moved.category_id, moved.title, moved.example_image_id) == (second.id, "Moved", own.id)
    assert world.catalog.templates(second.id)[-1].id == a.id


def test_usage_counts_generations_success_publishes_and_likes(world):
    template, unused = world.catalog.templates()[:2]
    ok1 = world.image(world.ada, "one", template_id=template.id)
    world.image(world.ada, "two", template_id=template.id)
    world.image(world.ada, "three", template_id=template.id, fail=True)
    post = world.community.publish(world.ada.id, ok1.id, "From a template")
    world.community.like(world.bob.id, post.id)
    world.community.like(world.cy.id, post.id)
    usage = world.catalog.template_usage(world.admin)
    u = usage.of(template.id)
    assert (u.generations, u.succeeded, u.failed, u.publishes, u.likes) == (3, 2, 1, 1, 2)
    assert u.success_rate == pytest.approx(2 / 3)
    assert unused.id not in usage.by_template and usage.of(unused.id) == TemplateUsage()


def test_usage_counts_ended_jobs_from_the_rollup_and_jobs_still_in_flight(world):
    template = world.catalog.templates()[0]
    world.image(world.ada, "done", template_id=template.id)
    world.image(world.bob, "broken", template_id=template.id, fail=True)
    # submitted, not run: queued, so not in the daily rollup yet (that counts a job when it ends)
    world.generation.submit(world.cy.id, GenerateRequest(prompt="waiting", tier="standard",
                                                         template_id=template.id), new_request_key())
    u = world.catalog.template_usage(world.admin).of(template.id)
    assert (u.generations, u.succeeded, u.failed, u.publishes, u.likes) == (3, 1, 1, 0, 0)


def test_usage_is_kept_for_the_cache_time_and_added_up_again_when_asked_or_stale(world):
    template = world.catalog.templates()[0]
    catalog = CatalogService(world.db, world.settings.model_copy(update={"analytics_cache_s": 60}),
                             clock=world.clock)
    first = catalog.template_usage(world.admin)
    world.image(world.ada, "one", template_id=template.id)
    assert catalog.template_usage(world.admin) is first  # within the minute: the same figures
    with pytest.raises(AccessDenied):  # the role is checked on every call, kept figures or not
        catalog.template_usage(world.ada)
    fresh = catalog.template_usage(world.admin, fresh=True)
    assert fresh.of(template.id).generations == 1 and fresh.as_of == world.clock()
    world.image(world.ada, "two", template_id=template.id)
    world.clock.now += timedelta(seconds=61)
    assert catalog.template_usage(world.admin).of(template.id).generations == 2  # stale: added up again
