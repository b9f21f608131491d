"""My Creations under AppTest: empty state, the grid with a failed job, search, an image's page (recipe,
download, publish, unpublish), remix into the studio, and delete behind a confirm dialog."""

from __future__ import annotations

from tests.app import _community as c
from tests.app.conftest import new_app, run, sign_up, texts


def _gallery(email="ada@example.com", name="Ada"):
    at = run(new_app())
    sign_up(at, email, name)
    at.switch_page("app_pages/gallery.py")
    return run(at)


def _open(at, image_id: int):
    at.button(key=f"gallery_open_{image_id}").click()
    return run(at)


def test_empty_state_points_to_the_studio(app_env):
    at = _gallery()
    assert at.title[0].value == "My Creations"
    assert "No images yet" in texts(at) and "never charged" in texts(at)


def _shown(at) -> list[str]:
    return [b.key for b in at.button if b.key and b.key.startswith("gallery_open_")]


def _fox_and_storm():
    """My Creations with a finished image and one that did not finish (a canceled job: never charged)."""
    at = _gallery()
    studio = c.backend()
    ada = c.user(studio, "ada@example.com")
    fox = c.image(studio, ada, "a red fox in the snow")
    failed = c.image(studio, ada, "a storm that never came", canceled=True)
    run(at)
    return at, fox, failed


def test_filters_are_drawn_only_while_open_and_keep_applying_when_closed(app_env):
    at, fox, failed = _fox_and_storm()
    assert "gallery_status" not in {m.key for m in at.multiselect}  # closed: not drawn
    at.session_state["gallery_filters_open"] = True  # what opening it in the browser sets
    run(at)
    at.multiselect(key="gallery_status").select("canceled")
    run(at)
    assert _shown(at) == [f"gallery_open_{failed.id}"]
    at.session_state["gallery_filters_open"] = False  # closed again: the filter still applies
    run(at)
    assert "gallery_status" not in {m.key for m in at.multiselect} and _shown(at) == [f"gallery_open_{failed.id}"]
    at.text_input(key="gallery_text").input("storm")  # another widget, another run: still kept
    run(at)
    assert _shown(at) == [f"gallery_open_{failed.id}"]
    at.session_state["gallery_filters_open"] = True  # reopened, it shows what is applied
    run(at)
    assert at.multiselect(key="gallery_status").value == ["canceled"]
    at.multiselect(key="gallery_status").unselect("canceled")
    at.text_input(key="gallery_text").input("")
    run(at)
    assert set(_shown(at)) == {f"gallery_open_{fox.id}", f"gallery_open_{failed.id}"}


def test_grid_shows_finished_and_failed_images_and_searches_prompts(app_env):
    at, fox, failed = _fox_and_storm()
    shown = texts(at)
    assert "2 images" in shown
    assert any("Not charged" in e.value for e in at.error)  # the failed job, with its reason
    assert c.image_alts(at) == ["Your image: a red fox in the snow"]  # the failed job has no picture
    assert {f"gallery_open_{fox.id}", f"gallery_open_{failed.id}"} <= {b.key for b in at.button}
    at.text_input(key="gallery_text").input("fox")
    run(at)
    assert [b.key for b in at.button if b.key and b.key.startswith("gallery_open_")] == [f"gallery_open_{fox.id}"]
    at.text_input(key="gallery_text").input("100%")
    run(at)
    assert "Nothing matches" in texts(at)


def test_image_page_publish_unpublish_and_delete(app_env):
    at = _gallery()
    studio = c.backend()
    ada = c.user(studio, "ada@example.com")
    job = c.image(studio, ada, "a lighthouse in fog")
    run(at)
    _open(at, job.id)
    shown = texts(at)
    assert "Prompt used" in shown and "a lighthouse in fog" in shown and "Seed" in shown
    assert [d.label for d in at.get("download_button")] == ["Download"]

    at.text_input(key=f"gallery_title_{job.id}").input("Fog light")
    at.button(key=f"FormSubmitter:gallery_publish_{job.id}-Publish to the Community").click()
    run(at)
    assert "Published · 0 likes · 0 remixes" in texts(at)
    assert [e["image_id"] for e in c.events(studio, "publish")] == [job.id]
    assert [p.id for p in studio.community.feed(ada.id).items] != []

    at.button(key=f"gallery_unpublish_{job.id}").click()
    run(at)
    assert studio.community.feed(ada.id).is_empty

    at.button(key="gallery_delete_open").click()
    run(at)
    assert "removed for good" in texts(at)  # the confirm dialog
    at.button(key="gallery_delete_yes").click()
    run(at)
    assert "No images yet" in texts(at)
    assert not (app_env / "images" / job.image_key).exists()


def test_remix_opens_the_studio_with_the_recipe(app_env):
    at = _gallery()
    studio = c.backend()
    ada = c.user(studio, "ada@example.com")
    job = c.image(studio, ada, "a paper boat on a puddle")
    run(at)
    _open(at, job.id)
    at.button(key="gallery_remix").click()
    run(at)
    assert at.title[0].value == "Studio"
    assert at.text_area(key="studio_prompt").value == "a paper boat on a puddle"
    assert at.session_state["studio_remixed_from"] == job.id and at.session_state["studio_seed"] == job.seed
    assert "Remix of one of your images" in texts(at)
    at.button(key="studio_not_remix").click()
    run(at)
    assert "Remix of" not in texts(at)


def test_a_template_filter_stays_chosen_when_an_admin_renames_the_template(app_env):
    at, _fox, _failed = _fox_and_storm()
    studio = c.backend()
    template = studio.catalog.templates()[3]
    at.session_state["gallery_filters_open"] = True
    run(at)
    at.selectbox(key="gallery_template").set_value(template.id)
    run(at)
    studio.catalog.update_template(c.first_admin(studio), template.id, category_id=template.category_id,
                                   title="Renamed template", prompt_pattern=template.prompt_pattern)
    run(at)  # the next click sends the old label
    box = at.selectbox(key="gallery_template")
    assert box.value == template.id and box.options[box.index] == "Renamed template"
