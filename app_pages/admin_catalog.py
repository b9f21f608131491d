"""Admin · Catalog: the templates and categories creators start from. Create, edit (with a live preview of
the filled pattern), reorder, activate / deactivate; each template's usage. Deactivated items leave the studio
and keep their history."""

import functools
from collections.abc import Callable

import streamlit as st

from studio_core.services.accounts import AccessDenied
from studio_core.services.catalog import SUBJECT_SLOT, CatalogError, TemplateUsage, UsageReport, fill_pattern
from studio_core.ui.cards import counted, shorten, status_badge
from studio_core.ui.session import get_studio, require_admin
from studio_core.ui.widgets import chooser, empty_state, error_state, lazy_expander, lazy_tabs, plain, table

admin = require_admin()
studio = get_studio()
catalog = studio.catalog
settings = studio.settings
ss = st.session_state


def attempt(action, *args, done: str = "", **kwargs) -> None:
    """Run one admin call from a button callback; the outcome is shown on the next run."""
    try:
        action(admin, *args, **kwargs)
    except (CatalogError, AccessDenied) as exc:
        ss.catalog_error = str(exc)
    else:
        if done:
            ss.catalog_done = done


def title_row(kind: str, item, title: str, *, move, set_active, first: bool, last: bool) -> None:
    """A template's or a category's name, its inactive badge, Move up / Move down and (De)activate."""
    with st.container(horizontal=True, vertical_alignment="center", gap="small"):
        st.markdown(f"**{plain(title)}**", width="stretch")
        if not item.active:
            status_badge("unpublished", "Inactive: hidden from the studio")
        st.button("", key=f"{kind}_up_{item.id}", icon=":material/arrow_upward:", disabled=first,
                  on_click=attempt, args=(move, item.id, -1), help="Move up")
        st.button("", key=f"{kind}_down_{item.id}", icon=":material/arrow_downward:", disabled=last,
                  on_click=attempt, args=(move, item.id, 1), help="Move down")
        st.button("Deactivate" if item.active else "Activate", key=f"{kind}_active_{item.id}",
                  on_click=attempt, args=(set_active, item.id, not item.active))


# -- templates ---------------------------------------------------------------------------------------------------
def template_editor(template, categories: list, candidates: Callable[[], list]) -> None:
    """The fields of a new (template None) or existing template, a live preview, and Save. ``candidates()``
    gives the example pictures to choose from (read only when an editor is open)."""
    candidates = candidates()
    k = f"tpl_{template.id if template else 'new'}"
    category_ids = [c.id for c in categories]
    names = {c.id: c.name + ("" if c.active else " (inactive)") for c in categories}
    left, right = st.columns(2, gap="large")
    with left:
        category = st.selectbox("Category", category_ids, format_func=names.get, key=f"{k}_category",
                                index=category_ids.index(template.category_id) if template else 0)
        title = st.text_input("Title", value=template.title if template else "", max_chars=120,
                              key=f"{k}_title")
        pattern = st.text_area("Prompt pattern", value=template.prompt_pattern if template else "", height=90,
                               max_chars=settings.prompt_max_chars, key=f"{k}_pattern",
                               placeholder="watercolour illustration of {subject}, soft paper texture",
                               help=f"Put {SUBJECT_SLOT} where the creator's subject goes.")
        subject = st.text_input("Preview with the subject", value="a red fox in the snow", key=f"{k}_subject")
        if not pattern.strip():
            st.caption(f"Write the pattern above, with {SUBJECT_SLOT} where the subject goes, to see a preview.")
        elif SUBJECT_SLOT in pattern:
            st.caption("Preview: what the studio will put in the prompt box")
            st.code(fill_pattern(pattern, subject), language=None, wrap_lines=True)
        else:
            st.warning(f"The pattern needs a {SUBJECT_SLOT} slot.", icon=":material/warning:")
    with right:
        negative = st.text_area("Negative prompt", value=template.negative_prompt if template else "",
                                height=68, max_chars=settings.prompt_max_chars, key=f"{k}_negative")
        notes = st.text_input("Style notes (shown to creators)", value=template.style_notes if template else "",
                              max_chars=500, key=f"{k}_notes")
        tiers = list(settings.tiers)
        tier = st.selectbox("Default quality", tiers, format_func=lambda t: settings.tiers[t].label,
                            index=tiers.index(template.default_tier) if template and template.default_tier in tiers
                            else tiers.index(settings.default_tier), key=f"{k}_tier")
        examples = {None: "No example image", **{c.image_id: f"#{c.image_id} · {shorten(c.prompt, 60)}"
                                                for c in candidates}}
        current = template.example_image_id if template else None
        if current is not None and current not in examples:
            examples[current] = f"#{current} (current)"
        example = st.selectbox("Example image (one of your own images)", list(examples),
                               format_func=examples.get, index=list(examples).index(current), key=f"{k}_example")
        chosen = next((c for c in candidates if c.image_id == example), None)
        if chosen is not None and chosen.image_key:
            st.image(studio.store.thumbnail_url(chosen.image_key), width=160,
                     alt=f"Example image: {shorten(chosen.prompt, 100)}")
    fields = dict(category_id=category, title=title, prompt_pattern=pattern, negative_prompt=negative,
                  style_notes=notes, default_tier=tier, example_image_id=example)
    if template is None:
        st.button("Create template", type="primary", key=f"{k}_save", icon=":material/add:", on_click=attempt,
                  args=(catalog.create_template,), kwargs=dict(fields, done="Template created."))
    else:
        st.button("Save changes", type="primary", key=f"{k}_save", icon=":material/save:", on_click=attempt,
                  args=(catalog.update_template, template.id), kwargs=dict(fields, done="Template saved."))


def usage_text(usage: TemplateUsage) -> str:
    rate = f"{usage.success_rate:.0%} succeeded" if usage.success_rate is not None else "no result yet"
    return (f"Used {counted(usage.generations, 'time')} · {rate} · {counted(usage.publishes, 'post')} · "
            f"{counted(usage.likes, 'like')}")


TEMPLATE_COLUMNS = ["Template", "Category", "Status", "Used", "Succeeded", "Posts", "Likes"]


def templates_table(templates: list, names: dict, usage: UsageReport) -> None:
    """Every template shown, in the catalog's order, with its usage: one table (sortable by any column) rather
    than a card of buttons per template, which cost every run of this page a dozen elements a template."""
    rows = []
    for t in templates:
        used = usage.of(t.id)
        rows.append({"Template": t.title, "Category": names.get(t.category_id, ""),
                     "Status": "Active" if t.active else "Inactive", "Used": used.generations,
                     "Succeeded": None if used.success_rate is None else round(100 * used.success_rate, 1),
                     "Posts": used.publishes, "Likes": used.likes})
    table(rows, TEMPLATE_COLUMNS, hide_index=True, width="stretch", key="catalog_templates_table",
          column_config={
              # "35,583" and "91.9%": one decimal for every rate, so the column lines up
              "Used": st.column_config.NumberColumn(format="localized", help="Generations started from the template"),
              "Succeeded": st.column_config.NumberColumn(format="%.1f%%", help="Of its finished generations"),
              "Posts": st.column_config.NumberColumn(format="localized",
                                                     help="Images made with it that are shared in the Community"),
              "Likes": st.column_config.NumberColumn(format="localized", help="The likes of those posts"),
          })


def template_panel(t, siblings: list, usage: TemplateUsage, categories: list, candidates) -> None:
    """The chosen template: reorder within its category, activate / deactivate, and its editor."""
    i = [s.id for s in siblings].index(t.id)
    with st.container(border=True):
        title_row("tpl", t, t.title, move=catalog.move_template, set_active=catalog.set_template_active,
                  first=i == 0, last=i == len(siblings) - 1)
        st.caption(plain(shorten(t.prompt_pattern, 160)) + "  \n" + usage_text(usage))
        # a closed editor per template and category would otherwise cost every run its dozens of inputs
        lazy_expander("Edit", f"tpl_edit_{t.id}", lambda: template_editor(t, categories, candidates),
                      icon=":material/edit:")


def templates_tab(categories: list) -> None:
    if not categories:
        empty_state("No categories yet", "Create a category first (next tab); templates live in categories.",
                    icon=":material/category:")
        return
    usage = catalog.template_usage(admin, fresh=ss.pop("catalog_usage_fresh", False))
    candidates = functools.cache(lambda: catalog.example_candidates(admin))  # once a run, if an editor is open
    lazy_expander("New template", "tpl_new_open", lambda: template_editor(None, categories, candidates),
                  icon=":material/add:")
    names = {c.id: c.name + ("" if c.active else " (inactive)") for c in categories}
    shown = st.selectbox("Show", [None, *names], format_func=lambda c: "All categories" if c is None else names[c],
                         key="catalog_show_category")
    templates = catalog.templates(shown, include_inactive=True)  # one query, in the catalog's order
    if not templates:
        st.caption("No templates in this category yet. Create one under New template.")
        return
    templates_table(templates, names, usage)
    with st.container(horizontal=True, vertical_alignment="center", gap="small"):
        st.caption(f"Usage as of {usage.as_of:%H:%M:%S} UTC; added up again at most every "
                   f"{settings.analytics_cache_s} s.", width="content")
        st.button("Refresh", key="catalog_usage_refresh", icon=":material/refresh:", type="tertiary",
                  on_click=ss.__setitem__, args=("catalog_usage_fresh", True))
    chosen = chooser("Template to change", {t.id: t for t in templates}, "catalog_pick",
                     lambda t: f"{t.title} · {names.get(t.category_id, '')}")
    siblings = [t for t in templates if t.category_id == chosen.category_id]
    template_panel(chosen, siblings, usage.of(chosen.id), categories, candidates)


# -- categories --------------------------------------------------------------------------------------------------
def category_editor(c) -> None:
    new_name = st.text_input("Name", value=c.name, max_chars=80, key=f"cat_name_{c.id}")
    new_description = st.text_area("Description", value=c.description, max_chars=500, height=68,
                                   key=f"cat_description_{c.id}")
    st.button("Save changes", key=f"cat_save_{c.id}", on_click=attempt,
              args=(catalog.update_category, c.id, new_name, new_description), kwargs={"done": "Category saved."})


def categories_tab(categories: list) -> None:
    with st.form("category_new", border=True, clear_on_submit=True):
        st.caption("New category")
        name = st.text_input("Name", max_chars=80, key="category_new_name")
        description = st.text_area("Description", max_chars=500, height=68, key="category_new_description")
        if st.form_submit_button("Create category", icon=":material/add:"):
            attempt(catalog.create_category, name, description, done="Category created.")
            st.rerun()
    if not categories:
        empty_state("No categories yet", "Create the first one above.", icon=":material/category:")
    for i, c in enumerate(categories):
        with st.container(border=True):
            title_row("cat", c, c.name, move=catalog.move_category, set_active=catalog.set_category_active,
                      first=i == 0, last=i == len(categories) - 1)
            # a slug is [a-z0-9-] (safe as it is); the description is the admin's own text
            st.caption(c.slug + (f" · {plain(c.description)}" if c.description else ""))
            lazy_expander("Edit", f"cat_edit_{c.id}", lambda c=c: category_editor(c), icon=":material/edit:")


st.title("Catalog")
st.caption("Templates give creators a head start: a prompt pattern with a {subject} slot, a negative prompt and "
           "a default quality. Inactive items are hidden from the studio; images made with them keep their "
           "recipe.")
if error := ss.pop("catalog_error", None):
    st.error(error, icon=":material/error:")
if done := ss.pop("catalog_done", None):
    st.success(done, icon=":material/check:")
try:
    all_categories = catalog.categories(include_inactive=True)
    # Only the open tab is drawn (on_change="rerun"): each is dozens of buttons.
    lazy_tabs({"Templates": lambda: templates_tab(all_categories),
               "Categories": lambda: categories_tab(all_categories)}, key="catalog_tab")
except AccessDenied as exc:
    error_state(str(exc))
