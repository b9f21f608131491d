"""Prompt Lab: write a template with variants, see the exact cost, run it, compare the grid, vote, reuse."""

import uuid

import streamlit as st

from studio_core.ports import Enhancement
from studio_core.services.accounts import AccessDenied
from studio_core.services.experiments import (
    AXIS_LABELS,
    VERSION_LABELS,
    CellView,
    ExperimentError,
    ExperimentNotFound,
    ExperimentSpec,
    ExperimentView,
    Plan,
    Quote,
    parse_seeds,
)
from studio_core.services.generation import ASPECT_RATIOS
from studio_core.services.prompts import EnhanceResult
from studio_core.ui.cards import image_source
from studio_core.ui.generation import STATUS_LABEL, job_image, recipe_card
from studio_core.ui.session import get_studio, require_user
from studio_core.ui.widgets import empty_state, error_state, plain

user = require_user()
studio = get_studio()
lab = studio.experiments
settings = studio.settings
ss = st.session_state

EDITOR = {"lab_title": "", "lab_template": "", "lab_negative": "", "lab_versions": ["raw"], "lab_seeds": "42",
          "lab_tiers": [settings.default_tier], "lab_aspect": "1:1", "lab_columns": "prompt", "lab_cap_on": False,
          "lab_cap": 10, "lab_over": "refuse"}
for key, value in EDITOR.items():
    ss.setdefault(key, value)
CELL_STATE = {"waiting": "Waiting for a free slot", "skipped": "Skipped · not charged", **STATUS_LABEL,
              "failed": "Failed · not charged", "canceled": "Canceled · not charged"}
OVER_BUDGET = {"refuse": "Refuse the run", "trim": "Trim rows to fit"}


def credits(n: int) -> str:
    return f"{n} credit{'s' if n != 1 else ''}"


# -- navigation (query parameter ?experiment=<id>, so a link opens the same experiment) ------------------------
def open_experiment(experiment_id: int) -> None:
    st.query_params["experiment"] = str(experiment_id)


def back_to_list() -> None:
    st.query_params.pop("experiment", None)
    ss.pop("lab_token", None)  # the editor starts a fresh experiment
    ss.pop("lab_enlarge", None)


def load_into_editor(spec: ExperimentSpec) -> None:
    """Run again / edit a copy: the recipe goes back into the editor as a new experiment (same seeds, so the
    same images unless something else changed)."""
    ss.update(lab_title=spec.title, lab_template=spec.template, lab_negative=spec.negative_prompt,
              lab_versions=list(spec.versions), lab_seeds=", ".join(str(s) for s in spec.seeds),
              lab_tiers=[t for t in spec.tiers if t in settings.tiers] or [settings.default_tier],
              lab_aspect=spec.aspect_ratio, lab_columns=spec.column_axis, lab_cap_on=spec.budget_cap is not None,
              lab_cap=spec.budget_cap or 10, lab_over=spec.over_budget)
    back_to_list()


def copy_to_studio(view: ExperimentView, cell: CellView) -> None:
    """The cell's recipe into the studio's form (the keys app_pages/studio.py reads), then go there."""
    ss.update(studio_prompt=cell.prompt, studio_negative=view.spec.negative_prompt,
              studio_aspect=view.spec.aspect_ratio, studio_tier=cell.tier, studio_seed_fixed=True,
              studio_seed=cell.seed, studio_template=None)
    ss.pop("studio_enh", None)
    ss.pop("studio_enh_text", None)
    if cell.version == "enhanced" and cell.enhanced_prompt:
        # Restore the studio's enhancement panel with this exact enhanced text, chosen for generating.
        ss.studio_enh = EnhanceResult(cell.prompt, Enhancement(
            original=cell.prompt, enhanced=cell.enhanced_prompt, negative_prompt="", added=(),
            provider=studio.prompts.provider))
        ss.studio_enh_text = cell.enhanced_prompt
        ss.studio_use = "Enhanced"
    st.switch_page("app_pages/studio.py")


def editor_spec() -> ExperimentSpec:
    return ExperimentSpec(
        template=ss.lab_template, versions=tuple(ss.lab_versions or ()), seeds=parse_seeds(ss.lab_seeds),
        tiers=tuple(ss.lab_tiers or ()), negative_prompt=ss.lab_negative, aspect_ratio=ss.lab_aspect,
        column_axis=ss.lab_columns, budget_cap=int(ss.lab_cap) if ss.lab_cap_on else None,
        over_budget=ss.lab_over, title=ss.lab_title)


# -- pieces ----------------------------------------------------------------------------------------------------
def show_quote(plan: Plan, quote: Quote) -> None:
    images, cost, after = st.columns(3)
    images.metric("Images", quote.images)
    cost.metric("Credits", quote.total, help="The exact total: one hold per image, charged on delivery.")
    after.metric("Left after", quote.balance_after if quote.ok else "—",
                 help=f"You have {credits(quote.available)} now.")
    rows = " × ".join(AXIS_LABELS[a].lower() for a in plan.row_axes) or "one row"
    st.caption(f"{quote.rows} row{'s' if quote.rows != 1 else ''} × {quote.cols} column"
               f"{'s' if quote.cols != 1 else ''} · columns: {AXIS_LABELS[plan.column_axis].lower()} · rows: {rows}")
    slots, per_minute = settings.max_concurrent_jobs_per_user, settings.max_jobs_per_minute
    if quote.ok and quote.images > slots:
        minutes = (quote.images - 1) // per_minute
        st.caption(f"Images start {slots} at a time and at most {per_minute} a minute"
                   + (f", so this grid takes at least {minutes} minute{'s' if minutes != 1 else ''}" if minutes
                      else "") + ". It keeps filling if you leave the page.")
    if quote.reused:
        st.caption(f"{quote.reused} image{'s' if quote.reused != 1 else ''} already exist and cost nothing.")
    if quote.trimmed:
        st.info(f"Trimmed to {quote.rows} of {quote.planned_rows} rows to stay within your cap "
                f"(the full grid would cost {credits(quote.planned_total)}).", icon=":material/content_cut:")
    if not quote.ok:
        st.warning(plain(quote.problem), icon=":material/account_balance_wallet:")
    st.caption(f"Prompts ({len(plan.variants)})")
    st.text("\n".join(f"{i}. {v}" for i, v in enumerate(plan.variants, 1)))


def show_wildcards() -> None:
    with st.expander("Wildcards", icon=":material/style:"):
        wildcards = lab.wildcards()
        if not wildcards:
            st.caption("No wildcard files yet.")
        for w in wildcards:
            st.code(f"__{w.name}__", language=None)
            st.caption(plain(", ".join(w.values[:12]) + (" …" if len(w.values) > 12 else "")))
        if user.is_admin:
            st.caption(plain(f"Admins: add .txt files (one value per line) to {lab.wildcards_dir}; the "
                             "file name (without .txt) is the wildcard's name."))
        else:
            st.caption("Wildcard lists are managed by an admin.")


def ask_to_run(spec: ExperimentSpec) -> None:
    ss.lab_start = spec  # started from the page body, where a spinner can show (enhancing may take a while)


def run_new(spec: ExperimentSpec) -> None:
    # One token per editor visit: a double click (two starts) creates one experiment, and runs it once.
    token = ss.setdefault("lab_token", uuid.uuid4().hex)
    created = ss.get("lab_created", {})
    try:
        experiment_id = created.get(token)
        if experiment_id is None:
            experiment_id = lab.create(user.id, spec).id
            ss.lab_created = {token: experiment_id}
        open_experiment(experiment_id)
        lab.run(user.id, experiment_id)
    except ExperimentError as exc:
        ss.lab_error = str(exc)


def editor() -> None:
    left, right = st.columns([3, 2], gap="large")
    with left:
        st.text_input("Title (optional)", key="lab_title", max_chars=120, placeholder="Fox colours")
        st.text_area("Prompt template", key="lab_template", height=100, max_chars=settings.prompt_max_chars,
                     placeholder="a {red|blue} fox in the snow, {watercolour|oil painting}",
                     help="Variants: {a|b} makes one prompt per option. Weights like {2::a|b} still run every "
                          "option once. Wildcards: __name__ uses a list from the wildcards folder.")
        show_wildcards()
        st.text_area("Negative prompt (the same for every image)", key="lab_negative", height=68,
                     max_chars=settings.prompt_max_chars, placeholder="blurry, text, watermark")
        st.header("What to compare")
        st.pills("Prompt versions", list(VERSION_LABELS), selection_mode="multi", key="lab_versions",
                 format_func=VERSION_LABELS.get,
                 help="Enhanced: each prompt is enhanced once before the run; both share seed and tier.")
        st.text_input("Seeds", key="lab_seeds", help="Whole numbers separated by commas. A row keeps one seed, "
                                                    "so only the compared factor changes along it.")
        st.pills("Quality tiers", list(settings.tiers), selection_mode="multi", key="lab_tiers",
                 format_func=lambda t: f"{settings.tiers[t].label} · {credits(settings.tiers[t].credits)}")
        aspect_col, axis_col = st.columns(2)
        aspect_col.selectbox("Aspect ratio", list(ASPECT_RATIOS), key="lab_aspect")
        axis_col.selectbox("Columns compare", list(AXIS_LABELS), key="lab_columns", format_func=AXIS_LABELS.get,
                           help="The other varied axes make the rows.")
        st.header("Budget")
        st.toggle("Cap this run's cost", key="lab_cap_on")
        if ss.lab_cap_on:
            cap_col, over_col = st.columns(2)
            cap_col.number_input("Budget cap (credits)", min_value=1, step=1, key="lab_cap")
            over_col.radio("If the run costs more", list(OVER_BUDGET), key="lab_over", format_func=OVER_BUDGET.get)
    with right, st.container(border=True):
        st.header("Before you run")
        if not ss.lab_template.strip():
            empty_state("Write a template", "For example “a {red|blue} fox in the snow”: the lab shows every "
                        "prompt it makes, the exact cost and your balance after, before anything runs.",
                        icon=":material/science:")
            return
        try:
            spec = editor_spec()
        except ExperimentError as exc:
            st.warning(plain(str(exc)), icon=":material/info:")
            return
        preview = lab.preview(user.id, spec)
        if preview.problem:
            st.warning(plain(preview.problem), icon=":material/info:")
            return
        show_quote(preview.plan, preview.quote)
        q = preview.quote
        st.button(f"Run · {q.images} image{'s' if q.images != 1 else ''} · {credits(q.total)}", type="primary",
                  icon=":material/play_arrow:", disabled=not q.ok, key="lab_run", on_click=ask_to_run, args=(spec,),
                  width="stretch")
        st.caption("Each image is charged only when it is delivered; a failed image costs nothing.")


def my_experiments() -> None:
    mine = lab.list_for(user.id)
    if not mine:
        empty_state("No experiments yet", "Write a template under New experiment and run it; it is saved "
                    "here with its grid, its cost and its votes.", icon=":material/science:")
        return
    for e in mine:
        with st.container(border=True):
            title_col, info_col, open_col = st.columns([5, 4, 1], vertical_alignment="center")
            title_col.text(e.title)
            title_col.caption(f"{e.created_at:%d %b %Y %H:%M} UTC")
            info_col.caption(f"{e.status.capitalize()} · {e.succeeded} of {e.images} images · "
                             f"{credits(e.charged)} · {e.votes} vote{'s' if e.votes != 1 else ''}")
            open_col.button("Open", key=f"lab_open_{e.id}", on_click=open_experiment, args=(e.id,),
                            width="stretch")


# -- one experiment --------------------------------------------------------------------------------------------
def vote(experiment_id: int, cell_id: int) -> None:
    try:
        lab.vote(user.id, experiment_id, cell_id)
    except ExperimentError as exc:
        ss.lab_error = str(exc)


def cell_card(view: ExperimentView, cell: CellView) -> None:
    job = cell.job
    if not cell.succeeded:
        st.caption(CELL_STATE.get(cell.state, cell.state))
        if job is not None and job.is_active:
            st.progress(job.progress if job.status == "running" else 0.0)
        elif cell.state != "waiting":  # why it ended without an image (never charged)
            st.caption(plain((job.error_message if job else cell.note) or "Not charged."))
        return
    shown = job.final_prompt
    where = cell.row_label if cell.col_label == shown else f"{cell.col_label}, {cell.row_label}"
    source, output_format = image_source(studio.generation.thumbnail_url(job) or studio.generation.image_url(job))
    st.image(source, alt=f"{shown[:160]} ({where})", width="stretch", output_format=output_format)
    mine = view.my_vote == cell.id
    st.caption(f"{cell.votes} vote{'s' if cell.votes != 1 else ''}" + (" · your pick" if mine else ""))
    enlarge, pick = st.columns(2)
    if enlarge.button("View", key=f"lab_enlarge_{cell.id}", icon=":material/zoom_in:",
                      width="stretch", help="Enlarge: the full image and its recipe."):
        ss.lab_enlarge = cell.id
        st.rerun(scope="app")  # the dialog opens from the full page, also when clicked inside the live grid
    pick.button("Voted" if mine else "Vote", key=f"lab_vote_{cell.id}", icon=":material/thumb_up:",
                type="primary" if mine else "secondary", on_click=vote, args=(view.id, cell.id),
                width="stretch",
                help="One vote per person; vote for another image to move it, or again to withdraw it.")


def grid(view: ExperimentView) -> None:
    total = len(view.cells)
    ended = view.count("succeeded", "failed", "canceled", "skipped")
    if view.is_active:
        st.progress(ended / total if total else 0.0,
                    text=f"{ended} of {total} images finished · {view.count('queued', 'running')} generating · "
                         f"{view.count('waiting')} waiting for a free slot")
    else:
        failed = view.count("failed", "canceled", "skipped")
        st.caption(f"{view.count('succeeded')} of {total} images delivered"
                   + (f" · {failed} not delivered (not charged)" if failed else "")
                   + f" · charged {credits(view.charged)} (quoted {credits(view.quoted_cost)})")
    # At least three image columns wide, so a 2-column grid does not blow each image up to half the page.
    widths = [1] + [2] * max(len(view.col_labels), 3)
    header = st.columns(widths)
    for column, label in zip(header[1:], view.col_labels, strict=False):
        column.caption(plain(label))
    for r, row_label in enumerate(view.row_labels):
        columns = st.columns(widths)
        columns[0].caption(plain(row_label))
        for c, column in enumerate(columns[1:len(view.col_labels) + 1]):
            cell = view.cell(r, c)
            if cell is not None:
                with column, st.container(border=True):
                    cell_card(view, cell)


@st.fragment(run_every=1.0)
def live_grid(experiment_id: int) -> None:
    view = lab.get(user.id, experiment_id)
    if not view.is_active:
        st.rerun(scope="app")  # all done: redraw once and stop polling
    grid(view)


@st.dialog("Image and recipe", width="large", on_dismiss=lambda: ss.pop("lab_enlarge", None))
def enlarge(view: ExperimentView, cell: CellView) -> None:
    st.caption(plain(f"{cell.col_label} · {cell.row_label}"))
    if cell.job is None:
        st.warning(plain(cell.note or "This image was not generated. Not charged."), icon=":material/info:")
        return
    picture, recipe = st.columns([3, 2])
    with picture:
        job_image(cell.job, studio.generation.image_url(cell.job))
    with recipe:
        recipe_card(cell.job)
        if cell.succeeded and st.button("Copy to studio", key="lab_dialog_copy", icon=":material/palette:",
                                        width="stretch",
                                        help="Load this prompt, version, seed, tier and size into the studio."):
            ss.pop("lab_enlarge", None)
            copy_to_studio(view, cell)


@st.dialog("Save the winner as a template", on_dismiss=lambda: ss.pop("lab_save_cell", None))
def save_template(cell: CellView) -> None:
    categories = studio.catalog.categories(include_inactive=True)
    if not categories:
        st.warning("Create a category in the catalog first.")
        return
    category = st.selectbox("Category", categories, format_func=lambda c: c.name, key="lab_tpl_category")
    title = st.text_input("Title", key="lab_tpl_title", max_chars=120)
    pattern = st.text_area("Prompt pattern", key="lab_tpl_pattern", height=120)
    st.caption("Replace the subject with {subject}: creators fill that slot with their own subject.")
    tier = st.selectbox("Default tier", list(settings.tiers), key="lab_tpl_tier",
                        format_func=lambda t: settings.tiers[t].label)
    if st.button("Save template", type="primary", key="lab_tpl_save"):
        try:
            saved = studio.catalog.create_template(user, category_id=category.id, title=title,
                                                   prompt_pattern=pattern, default_tier=tier)
        except (ValueError, AccessDenied) as exc:  # CatalogError is a ValueError
            st.error(plain(str(exc)))
        else:
            ss.pop("lab_save_cell", None)
            st.toast(plain(f"Saved “{saved.title}” to {category.name}."), icon=":material/check:")
            st.rerun()


def ask_to_save_template(cell: CellView) -> None:
    final = cell.job.final_prompt if cell.job else cell.prompt
    ss.update(lab_save_cell=cell.id, lab_tpl_title=final[:60], lab_tpl_pattern=final, lab_tpl_tier=cell.tier)


def owner_controls(view: ExperimentView) -> None:
    share_col, again_col = st.columns([3, 1], vertical_alignment="center")
    with share_col:
        shared = st.toggle("Share with signed-in teammates", value=view.shared, key=f"lab_share_{view.id}",
                           help="Teammates with the link can look and vote; only you can run or change it.")
        if shared != view.shared:
            lab.set_shared(user.id, view.id, shared)
            st.rerun()
        if view.shared:
            st.code(f"{settings.app_url.rstrip('/')}/prompt_lab?experiment={view.id}", language=None)
    if view.status != "draft":
        again_col.button("Run again", key="lab_again", icon=":material/replay:", on_click=load_into_editor,
                         args=(view.spec,), width="stretch",
                         help="A new experiment with this recipe, in the editor: change it or run it as it is.")


def draft_panel(view: ExperimentView) -> None:
    preview = lab.preview_saved(user.id, view.id)
    with st.container(border=True):
        st.caption("Not run yet: nothing has been charged.")
        if preview.problem:
            st.warning(plain(preview.problem), icon=":material/info:")
        else:
            show_quote(preview.plan, preview.quote)
        if not view.viewer_is_owner:
            return
        run_col, edit_col, delete_col = st.columns(3)
        q = preview.quote
        if run_col.button(f"Run · {credits(q.total)}" if q else "Run", type="primary", key="lab_run_draft",
                          disabled=not (q and q.ok), icon=":material/play_arrow:", width="stretch"):
            try:
                lab.run(user.id, view.id)
            except ExperimentError as exc:
                ss.lab_error = str(exc)
            st.rerun()
        edit_col.button("Edit in the editor", key="lab_edit_draft", icon=":material/edit:",
                        on_click=load_into_editor, args=(view.spec,), width="stretch")
        if delete_col.button("Delete draft", key="lab_delete_draft", icon=":material/delete:",
                             width="stretch"):
            lab.delete_draft(user.id, view.id)
            back_to_list()
            st.rerun()


def experiment_page(experiment_id: int) -> None:
    st.button("All experiments", key="lab_back", icon=":material/arrow_back:", on_click=back_to_list)
    try:
        view = lab.get(user.id, experiment_id)
    except ExperimentNotFound as exc:
        error_state(str(exc))
        return
    st.header(plain(view.title))
    when = f"{view.created_at:%d %b %Y %H:%M} UTC"
    status = {"draft": "Draft", "running": "Running", "finished": "Finished"}[view.status]
    st.caption(plain(f"{status} · by {'you' if view.viewer_is_owner else view.owner_name} · {when}"))
    if not view.viewer_is_owner:
        st.info("Shared with you: you can look, enlarge, vote and copy a recipe to your studio.",
                icon=":material/group:")
    with st.expander("Recipe of the experiment", icon=":material/receipt_long:"):
        st.caption("Template" + (" (used as written)" if view.spec.literal else ""))
        st.code(view.spec.template, language=None, wrap_lines=True)
        if view.spec.negative_prompt:
            st.caption("Negative prompt")
            st.code(view.spec.negative_prompt, language=None, wrap_lines=True)
        st.caption(f"Seeds {', '.join(map(str, view.spec.seeds))} · tiers "
                   f"{', '.join(settings.tiers[t].label for t in view.spec.tiers if t in settings.tiers)} · "
                   f"{view.spec.aspect_ratio}"
                   + (f" · cap {credits(view.spec.budget_cap)} ({OVER_BUDGET[view.spec.over_budget].lower()})"
                      if view.spec.budget_cap else ""))
    if view.viewer_is_owner:
        owner_controls(view)
    if view.status == "draft":
        draft_panel(view)
        return
    if view.is_active:
        live_grid(view.id)
    else:
        grid(view)

    winner = view.winner
    if winner is not None:
        with st.container(border=True):
            st.subheader("Most votes")  # under the experiment's own header
            st.caption(plain(f"{winner.col_label} · {winner.row_label} · {winner.votes} vote"
                             f"{'s' if winner.votes != 1 else ''}"))
            st.code(winner.job.final_prompt if winner.job else winner.prompt, language=None, wrap_lines=True)
            copy_col, save_col = st.columns(2)
            if copy_col.button("Copy to studio", key="lab_copy_winner", icon=":material/palette:",
                               width="stretch"):
                copy_to_studio(view, winner)
            if user.is_admin:
                save_col.button("Save as template", key="lab_save_winner", icon=":material/bookmark_add:",
                                on_click=ask_to_save_template, args=(winner,), width="stretch")
    elif view.count("succeeded"):
        st.caption("Vote for the best image: the winner can be copied to the studio"
                   + (" or saved as a template." if user.is_admin else "."))

    cell_id = ss.get("lab_enlarge")
    cell = next((c for c in view.cells if c.id == cell_id), None)
    if cell is not None:
        enlarge(view, cell)
    save_id = ss.get("lab_save_cell")
    save_cell = next((c for c in view.cells if c.id == save_id), None)
    if save_cell is not None and user.is_admin:
        save_template(save_cell)


# -- the page --------------------------------------------------------------------------------------------------
st.title("Prompt Lab")
st.caption("Compare prompt variations side by side. You see how many images and the exact cost before anything "
           "runs; every image carries its full recipe.")
if (start := ss.pop("lab_start", None)) is not None:
    with st.spinner("Preparing the prompts and starting the run…"):
        run_new(start)
if error := ss.pop("lab_error", None):
    st.error(plain(error), icon=":material/error:")

raw_id = st.query_params.get("experiment")
if raw_id is not None:
    if raw_id.isdigit():
        experiment_page(int(raw_id))
    else:
        error_state("That experiment link is not valid.")
        st.button("All experiments", key="lab_back_bad", on_click=back_to_list)
else:
    new_tab, mine_tab = st.tabs(["New experiment", "Your experiments"])
    with new_tab:
        editor()
    with mine_tab:
        my_experiments()
