"""The Prompt Lab under AppTest: quote before running, cap refuse/trim, run to a finished grid charged once,
vote, copy to the studio, save as a template (admin), share read-only, and the studio's one-click compare."""

from __future__ import annotations

from studio_core.bootstrap import build_studio
from studio_core.config import load_settings
from tests.app.conftest import new_app, run, sign_in, sign_up, texts
from tests.app.test_studio import _credits, _wait_for

LAB = "app_pages/prompt_lab.py"


def _lab(email="ada@example.com", name="Ada"):
    at = run(new_app())
    sign_up(at, email, name)
    at.switch_page(LAB)
    return run(at)


def _metrics(at) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def _write(at, template: str, seeds: str = "42") -> None:
    at.text_area(key="lab_template").input(template)
    at.text_input(key="lab_seeds").input(seeds)
    run(at)


def _run_to_the_end(at):
    at.button(key="lab_run").click()
    run(at)
    return _wait_for(at, lambda a: "images delivered" in texts(a))


def test_the_quote_comes_before_anything_runs_and_the_cap_refuses_or_trims(app_env):
    at = _lab()
    shown = texts(at)
    assert "Write a template" in shown and "No experiments yet" in shown
    _write(at, "a {red|blue} fox", "1, 2")
    assert {k: _metrics(at)[k] for k in ("Images", "Credits", "Left after")} == {
        "Images": "4", "Credits": "4", "Left after": "26"}
    assert "2 rows × 2 columns · columns: prompt variants · rows: seeds" in texts(at)
    assert "Images start 2 at a time and at most 6 a minute. It keeps filling" in texts(at)
    assert at.button(key="lab_run").label == "Run · 4 images · 4 credits"

    at.toggle(key="lab_cap_on").set_value(True)
    run(at)
    at.number_input(key="lab_cap").set_value(3)
    run(at)
    assert any("over your cap of 3" in w.value for w in at.warning)
    assert at.button(key="lab_run").disabled
    at.radio(key="lab_over").set_value("trim")
    run(at)
    assert "Trimmed to 1 of 2 rows" in texts(at)
    assert at.button(key="lab_run").label == "Run · 2 images · 2 credits" and not at.button(key="lab_run").disabled

    at.text_area(key="lab_template").input("a {red|blue fox")
    run(at)
    assert any("syntax error" in w.value for w in at.warning)
    assert _credits_left(at) == 30  # nothing moved


def _credits_left(at) -> int:
    return int(next(m.value for m in at.sidebar.markdown if "available" in m.value).split("**")[1])


def test_run_vote_save_as_template_and_copy_to_the_studio(app_env):
    at = _lab()  # the first account is the admin
    at.text_input(key="lab_title").input("Fox colours")
    _write(at, "a {red|blue} fox on a frozen lake", "7")
    _run_to_the_end(at)
    assert at.query_params["experiment"] == "1"
    shown = texts(at)
    assert "2 of 2 images delivered · charged 2 credits (quoted 2 credits)" in shown
    assert "a red fox on a frozen lake" in shown and "seed 7" in shown
    assert _credits_left(at) == 28
    alts = [img.alt for element in at.image for img in element.proto.imgs]
    assert alts == ["a red fox on a frozen lake (seed 7)", "a blue fox on a frozen lake (seed 7)"]
    run(at)  # reruns never charge again
    assert _credits_left(at) == 28

    at.button(key="lab_vote_2").click()
    run(at)
    assert "1 vote · your pick" in texts(at) and "Most votes" in texts(at)

    at.button(key="lab_save_winner").click()
    run(at)
    assert at.text_area(key="lab_tpl_pattern").value == "a blue fox on a frozen lake"
    at.text_area(key="lab_tpl_pattern").input("a blue {subject} on a frozen lake")
    at.text_input(key="lab_tpl_title").input("Frozen lake")
    at.button(key="lab_tpl_save").click()
    run(at)
    assert any("Saved “Frozen lake”" in t.value for t in at.toast)

    at.button(key="lab_back").click()
    run(at)
    assert "Fox colours" in texts(at) and "Finished · 2 of 2 images · 2 credits · 1 vote" in texts(at)
    at.button(key="lab_open_1").click()
    run(at)
    at.button(key="lab_copy_winner").click()
    run(at)
    assert at.title[0].value == "Studio"
    assert at.text_area(key="studio_prompt").value == "a blue fox on a frozen lake"
    assert at.toggle(key="studio_seed_fixed").value is True and at.number_input(key="studio_seed").value == 7
    # The saved template is in the catalog, where the studio finds it.
    studio = build_studio(load_settings(), seed_catalog=False)
    saved = [t for t in studio.catalog.templates() if t.title == "Frozen lake"]
    studio.db.dispose()
    assert [t.prompt_pattern for t in saved] == ["a blue {subject} on a frozen lake"]


def test_a_shared_link_is_read_only_for_a_teammate_except_voting(app_env):
    owner = _lab()
    _write(owner, "a {calm|stormy} sea")
    _run_to_the_end(owner)

    mate = run(new_app())
    sign_up(mate, "bob@example.com", "Bob")
    mate.switch_page(LAB)
    mate.query_params["experiment"] = "1"
    run(mate)
    assert any("has not been shared with you" in e.value for e in mate.error)

    owner.toggle(key="lab_share_1").set_value(True)
    run(owner)
    assert any("prompt_lab?experiment=1" in c.value for c in owner.code)

    run(mate)
    shown = texts(mate)
    assert "Shared with you" in shown and "by Ada" in shown and "2 of 2 images delivered" in shown
    keys = {b.key for b in mate.button}
    assert "lab_again" not in keys and not [t for t in mate.toggle if t.key == "lab_share_1"]
    mate.button(key="lab_vote_1").click()
    run(mate)
    assert "1 vote · your pick" in texts(mate) and "Most votes" in texts(mate)
    keys = {b.key for b in mate.button}
    assert "lab_copy_winner" in keys and "lab_save_winner" not in keys  # templates are for admins
    run(owner)
    assert "1 vote" in texts(owner) and "your pick" not in texts(owner)

    # Run again: the same recipe goes back into the editor as a new experiment, quoted before anything runs.
    owner.button(key="lab_again").click()
    run(owner)
    assert "experiment" not in owner.query_params
    assert owner.text_area(key="lab_template").value == "a {calm|stormy} sea"
    assert owner.button(key="lab_run").label == "Run · 2 images · 2 credits"


def test_a_bad_link_says_so(app_env):
    at = _lab()
    at.query_params["experiment"] = "abc"
    run(at)
    assert any("not valid" in e.value for e in at.error)
    at.button(key="lab_back_bad").click()
    run(at)
    assert "No experiments yet" in texts(at)


def test_compare_with_the_original_prompt_from_the_studio_result(app_env):
    at = run(new_app())
    sign_up(at, "ada@example.com", "Ada")
    at.text_area(key="studio_prompt").input("a lighthouse on a cliff")
    at.button(key="studio_enhance").click()
    run(at)
    at.button(key="studio_generate").click()
    run(at)
    at.button(key="studio_confirm").click()
    run(at)
    _wait_for(at, lambda a: any(b.key == "studio_compare" for b in a.button))
    assert _credits(at) == 29
    assert at.button(key="studio_compare").label == "Compare with the original prompt · 1 credit"
    at.button(key="studio_compare").click()
    run(at)
    assert at.title[0].value == "Prompt Lab" and at.query_params["experiment"] == "1"
    _wait_for(at, lambda a: "images delivered" in texts(a))
    shown = texts(at)
    assert "Your prompt" in shown and "Enhanced" in shown
    assert "2 of 2 images delivered · charged 1 credit (quoted 1 credit)" in shown  # the enhanced one is reused
    assert _credits_left(at) == 28


def test_a_run_keeps_filling_with_no_page_watching(app_env):
    """The driver thread, not the page, advances the grid: another session that only lists experiments (which
    never advances anything) sees the run finish."""
    at = _lab()
    _write(at, "a {red|green|blue} apple", "1, 2")  # 6 images, 2 slots at a time
    at.button(key="lab_run").click()
    run(at)
    again = run(new_app())
    sign_in(again, "ada@example.com")
    again.switch_page(LAB)
    _wait_for(again, lambda a: "Finished · 6 of 6 images · 6 credits" in texts(a))
