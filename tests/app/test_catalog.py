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
    usage = at.dataframe[0].value  # the figures of the first run, kept for a minute
    assert usage[usage["Template"] == template.title].iloc[0]["Used"] == 0
    at.button(key="catalog_usage_refresh").click()  # added up again now
    run(at)
    assert any(c.value.startswith("Usage as of ") for c in at.caption)
    usage = at.dataframe[0].value  # every template in one table, with its usage
    row = usage[usage["Template"] == template.title].iloc[0]
    assert (row["Used"], row["Succeeded"], row["Posts"], row["Status"]) == (1, 100.0, 0, "Active")
    assert len(usage) == len(studio.catalog.templates(include_inactive=True))
    at.selectbox(key="catalog_pick").set_value(template.id)  # the template to change
    run(at)
    assert any(c.value.endswith("  \nUsed 1 time · 100% succeeded · 0 posts · 0 likes") for c in at.caption)

    at.button(key=f"tpl_active_{template.id}").click()
    run(at)
    assert template.id not in [t.id for t in studio.catalog.templates()]
    assert "Inactive: hidden from the studio" in texts(at)
    usage = at.dataframe[0].value
    assert usage[usage["Template"] == template.title].iloc[0]["Status"] == "Inactive"
    at.switch_page("app_pages/studio.py")
    run(at)
    offered = [o for box in at.selectbox if box.key == "studio_template_pick" for o in box.options]
    assert offered and template.title not in offered
    assert studio.catalog.template_usage(admin, fresh=True).of(template.id).generations == 1  # history kept


def test_an_editor_is_drawn_only_while_its_expander_is_open(app_env):
    at = _admin_at_catalog()
    template = c.backend().catalog.templates()[0]
    fields = lambda: {t.key for t in at.text_input} | {t.key for t in at.text_area}  # noqa: E731
    assert f"tpl_{template.id}_title" not in fields() and "tpl_new_title" not in fields()
    at.session_state[f"tpl_edit_{template.id}"] = True  # what opening it in the browser sets
    run(at)
    assert f"tpl_{template.id}_title" in fields()
    assert at.text_input(key=f"tpl_{template.id}_title").value == template.title


def test_the_table_and_the_template_to_change_follow_the_category_shown(app_env):
    at = _admin_at_catalog()
    studio = c.backend()
    first, second = studio.catalog.categories()[:2]
    in_first = studio.catalog.templates(first.id)
    in_second = studio.catalog.templates(second.id)
    at.selectbox(key="catalog_pick").set_value(in_first[-1].id)
    run(at)
    assert at.button(key=f"tpl_down_{in_first[-1].id}").disabled  # the last of its category
    at.selectbox(key="catalog_show_category").set_value(second.id)
    run(at)
    assert list(at.dataframe[0].value["Template"]) == [t.title for t in in_second]
    assert at.selectbox(key="catalog_pick").value == in_second[0].id  # the choice moved into this category
    assert at.button(key=f"tpl_up_{in_second[0].id}").disabled and not at.exception
    at.button(key=f"tpl_down_{in_second[0].id}").click()
    run(at)
    assert [t.id for t in studio.catalog.templates(second.id)][1] == in_second[0].id  # moved down one


def test_renaming_the_template_being_changed_keeps_it_chosen(app_env):
    at = _admin_at_catalog()
    studio = c.backend()
    template = studio.catalog.templates()[1]
    at.selectbox(key="catalog_pick").set_value(template.id)
    at.session_state[f"tpl_edit_{template.id}"] = True
    run(at)
    at.text_input(key=f"tpl_{template.id}_title").input("Renamed template")
    run(at)  # in the browser, leaving the field reruns the page before Save can be clicked
    at.button(key=f"tpl_{template.id}_save").click()
    run(at)
    assert "Template saved." in texts(at)
    assert studio.catalog.templates()[1].title == "Renamed template"
    pick = at.selectbox(key="catalog_pick")
    assert pick.value == template.id and "Renamed template · Portraits" in pick.options
    at.selectbox(key="catalog_show_category").set_value(None)  # any other click: the choice still holds
    run(at)
    assert not at.exception and at.selectbox(key="catalog_pick").value == template.id
