"""The Catalog page under AppTest: admins only, categories and templates created (the {subject} slot
enforced, a live preview), deactivated templates gone from the studio, usage figures shown."""

from __future__ import annotations

import pytest

from tests.app import _community as c
from tests.app.conftest import new_app, run, sign_up, texts


def _admin_at_catalog():
    at = run(new_app())
    sign_up(at, "admin@example.com", "Admin")
    at.switch_page("app_pages/admin_catalog.py")
    return run(at)


def test_creators_do_not_get_the_page(app_env):
    _admin_at_catalog()
    at = run(new_app())
    sign_up(at, "ada@example.com", "Ada")
    with pytest.raises(ValueError, match="Known pages"):
        at.switch_page("app_pages/admin_catalog.py")


def test_create_a_category_and_a_template_with_a_live_preview(app_env):
    at = _admin_at_catalog()
    assert at.title[0].value == "Catalog" and "Studio headshot" in texts(at)
    assert "category_new_name" not in {t.key for t in at.text_input}  # the open tab only
    at.session_state["catalog_tab"] = "Categories"  # what clicking the tab sets
    run(at)
    at.text_input(key="category_new_name").input("Still life")
    at.button(key="FormSubmitter:category_new-Create category").click()
    run(at)
    assert "Category created." in texts(at) and "still-life" in texts(at)

    at.session_state["catalog_tab"] = "Templates"
    run(at)
    assert "tpl_new_title" not in {t.key for t in at.text_input}  # drawn only while "New template" is open
    at.session_state["tpl_new_open"] = True  # what opening it in the browser sets
    run(at)
    at.text_input(key="tpl_new_title").input("Neon sign")
    at.text_area(key="tpl_new_pattern").input("glowing neon sign, night")
    run(at)
    assert "The pattern needs a {subject} slot." in texts(at)
    at.button(key="tpl_new_save").click()
    run(at)
    assert any("{subject} slot" in e.value for e in at.error)  # the service refuses it too

    at.text_area(key="tpl_new_pattern").input("glowing neon sign of {subject}, night")
    at.text_input(key="tpl_new_subject").input("a coffee cup")
    run(at)
    assert "glowing neon sign of a coffee cup, night" in [code.value for code in at.code]
    at.button(key="tpl_new_save").click()
    run(at)
    assert "Template created." in texts(at)
    studio = c.backend()
    created = next(t for t in studio.catalog.templates() if t.title == "Neon sign")
    assert created.prompt_pattern == "glowing neon sign of {subject}, night"


def test_deactivated_templates_leave_the_studio_and_usage_is_shown(app_env):
    at = _admin_at_catalog()
    studio = c.backend()
    admin = c.first_admin(studio)
    template = studio.catalog.templates()[0]
    studio.ledger.ensure_monthly_allowance(admin.id)
    from studio_core.services.generation import GenerateRequest, new_request_key

    job = studio.generation.submit(admin.id, GenerateRequest(prompt=template.fill("a fox"), tier="standard",
                                                             template_id=template.id), new_request_key())
    studio.generation.run_job(job.id)
    run(at)
    assert any(c.value.endswith("  \nUsed 1 time · 100% succeeded · 0 posts · 0 likes") for c in at.caption)

    at.button(key=f"tpl_active_{template.id}").click()
    run(at)
    assert template.id not in [t.id for t in studio.catalog.templates()]
    assert "Inactive: hidden from the studio" in texts(at)
    at.switch_page("app_pages/studio.py")
    run(at)
    offered = [o for box in at.selectbox if box.key == "studio_template_pick" for o in box.options]
    assert offered and template.title not in offered
    assert studio.catalog.template_usage(admin)[template.id].generations == 1  # history kept


def test_an_editor_is_drawn_only_while_its_expander_is_open(app_env):
    at = _admin_at_catalog()
    template = c.backend().catalog.templates()[0]
    fields = lambda: {t.key for t in at.text_input} | {t.key for t in at.text_area}  # noqa: E731
    assert f"tpl_{template.id}_title" not in fields() and "tpl_new_title" not in fields()
    at.session_state[f"tpl_edit_{template.id}"] = True  # what opening it in the browser sets
    run(at)
    assert f"tpl_{template.id}_title" in fields()
    assert at.text_input(key=f"tpl_{template.id}_title").value == template.title
