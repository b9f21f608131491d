"""My Creations: your images (finished, failed, in progress) in a searchable, filterable grid, and one image's
page with its recipe: download, remix, publish / unpublish, delete."""

import streamlit as st

from studio_core.services.community import CommunityError
from studio_core.services.gallery import SORTS, STATUS_FILTERS, GalleryError, GalleryFilter, ImageNotFound
from studio_core.ui.cards import (
    card_heading,
    counted,
    grid,
    load_page,
    pager,
    picture,
    remix_link,
    shorten,
    status_badge,
)
from studio_core.ui.generation import STATUS_LABEL, job_image, recipe_card
from studio_core.ui.remix import open_in_studio
from studio_core.ui.session import get_studio, require_user
from studio_core.ui.tracking import Event, track
from studio_core.ui.widgets import empty_state, error_state, keep_choice, lazy_expander

user = require_user()
studio = get_studio()
ss = st.session_state
PUBLISHED = {"any": "All", "yes": "Published", "no": "Not published"}


def open_image(image_id: int) -> None:
    ss.gallery_open = image_id


def close_image() -> None:
    ss.pop("gallery_open", None)


# -- one image ---------------------------------------------------------------------------------------------------
@st.dialog("Delete this image?", on_dismiss=lambda: ss.pop("gallery_delete", None))
def confirm_delete(image_id: int) -> None:
    st.write("The picture is removed for good and, if it is shared, it leaves the Community. "
             "Its recipe stays in your credit history; credits spent on it are not refunded.")
    yes, no = st.columns(2)
    if yes.button("Delete", type="primary", key="gallery_delete_yes", icon=":material/delete:",
                  width="stretch"):
        try:
            studio.gallery.delete(user.id, image_id)
        except GalleryError as exc:
            st.error(str(exc))
            return
        ss.pop("gallery_delete", None)
        close_image()
        st.toast("Image deleted.", icon=":material/delete:")
        st.rerun()
    if no.button("Keep it", key="gallery_delete_no", width="stretch"):
        ss.pop("gallery_delete", None)
        st.rerun()


def publish_panel(item) -> None:
    post = item.post
    if post is not None and post.status in ("hidden", "removed"):
        status_badge(post.status, post.status_label)
        st.caption("Moderators decide what happens to this post. You can still delete the image.")
        return
    categories = studio.catalog.categories()
    if item.is_published:
        status_badge(post.status, f"Published · {counted(post.like_count, 'like')} · "
                                  f"{counted(post.remix_count, 'remix')}")
        st.page_link("app_pages/community.py", label="See it in the Community", icon=":material/groups:",
                     query_params={"post": str(post.post_id)})
    with st.form(f"gallery_publish_{item.job.id}", border=False):
        title = st.text_input("Title", value=post.title if post else "", max_chars=120,
                              key=f"gallery_title_{item.job.id}", placeholder="Give it a name")
        options = [None, *(c.id for c in categories)]
        names = {c.id: c.name for c in categories}
        current = post.category_id if post else None
        category = st.selectbox("Category", options, index=options.index(current) if current in options else 0,
                                format_func=lambda c: "No category" if c is None else names[c],
                                key=f"gallery_category_{item.job.id}")
        label = "Update post" if item.is_published else "Publish to the Community"
        submitted = st.form_submit_button(label, type="primary", icon=":material/public:")
    if submitted:
        try:
            published = studio.community.publish(user.id, item.job.id, title, category)
        except CommunityError as exc:
            st.error(str(exc))
        else:
            if not item.is_published:
                track(Event.PUBLISH, post_id=published.id, image_id=item.job.id)
            st.toast("Published." if not item.is_published else "Post updated.", icon=":material/public:")
            st.rerun()
    if item.is_published and st.button("Unpublish", key=f"gallery_unpublish_{item.job.id}",
                                       icon=":material/public_off:"):
        try:
            studio.community.unpublish(user.id, post.post_id)
        except CommunityError as exc:
            st.error(str(exc))
        else:
            st.rerun()


def detail(image_id: int) -> None:
    try:
        item = studio.gallery.get(user.id, image_id)
    except ImageNotFound:
        close_image()
        st.rerun()
    job = item.job
    st.button("All my images", key="gallery_back", icon=":material/arrow_back:", on_click=close_image)
    picture_col, info_col = st.columns([3, 2], gap="large")
    with picture_col:
        if job.status == "succeeded":
            job_image(job, studio.gallery.image_url(item))
        elif job.is_active:
            st.info(f"{STATUS_LABEL.get(job.status, job.status)} Follow it in the Studio.",
                    icon=":material/hourglass_top:")
        else:
            job_image(job, None)  # failed / canceled: the reason, and "Not charged"
        st.caption("Prompt")
        st.text(job.final_prompt)
    with info_col:
        remix_link(item.remixed_from)
        with st.container(horizontal=True, gap="small"):  # natural widths, wrapping when narrow
            if job.status == "succeeded":
                try:
                    data = studio.gallery.image_bytes(user.id, job.id)
                except Exception:  # noqa: BLE001 - a missing file must not break the page
                    data = None
                st.download_button("Download", data=data or b"", disabled=data is None,
                                   file_name=f"studio-{job.id}-seed{job.seed}.png", mime="image/png",
                                   icon=":material/download:", key="gallery_download",
                                   on_click=track, args=(Event.DOWNLOAD,), kwargs={"job_id": job.id})
            if st.button("Remix", key="gallery_remix", icon=":material/autorenew:",
                         help="Open this recipe in the Studio, seed included, to make a variation."):
                track(Event.REMIX, source_image_id=job.id)
                open_in_studio(studio, job, remixed_from_id=job.id)
            if not job.is_active and st.button("Delete", key="gallery_delete_open", icon=":material/delete:"):
                ss.gallery_delete = job.id
        recipe_card(job)
        if job.status == "succeeded":
            with st.container(border=True):
                st.caption("Share")
                publish_panel(item)
    if ss.get("gallery_delete") == job.id:
        confirm_delete(job.id)


# -- the grid ----------------------------------------------------------------------------------------------------
def card(item) -> None:
    job = item.job
    if job.status == "succeeded":
        picture(studio.gallery.thumbnail_url(item), alt=f"Your image: {shorten(job.final_prompt, 120)}")
    elif job.is_active:
        picture(None, "", missing=STATUS_LABEL.get(job.status, job.status))
    else:
        st.error(shorten(job.error_message or "Did not finish. Not charged.", 120), icon=":material/error:")
    card_heading(job.final_prompt, f"{job.created_at:%d %b %Y %H:%M}",
                 studio.settings.tiers[job.tier].label if job.tier in studio.settings.tiers else job.tier,
                 "not charged" if not job.charged and not job.is_active else None, bold=False)
    if item.post is not None and item.post.status != "unpublished":
        status_badge(item.post.status, item.post.status_label)
    st.button("View", key=f"gallery_open_{job.id}", on_click=open_image, args=(job.id,), width="stretch")


FILTER_DEFAULTS = {"gallery_status": [], "gallery_tier": None, "gallery_template": None, "gallery_dates": (),
                   "gallery_published": "any"}


def filter_fields() -> None:
    """The fields inside Filters, drawn only while it is open. Their values stay while it is closed
    (``persist_state="page"``) and are read from the session state then."""
    status_col, tier_col, template_col = st.columns(3)
    status_col.multiselect("Status", list(STATUS_FILTERS), format_func=STATUS_FILTERS.get, key="gallery_status",
                           placeholder="Any status", persist_state="page")
    tiers = {None: "Any tier", **{t.name: t.label for t in studio.settings.tiers.values()}}
    tier_col.selectbox("Tier", list(tiers), format_func=tiers.get, key="gallery_tier", persist_state="page")
    templates = {None: "Any template", **{t.id: t.title for t in studio.catalog.templates(include_inactive=True)}}
    keep_choice("gallery_template", list(templates))
    template_col.selectbox("Template", list(templates), format_func=templates.get, key="gallery_template",
                           persist_state="page")
    date_col, published_col = st.columns([2, 1])
    date_col.date_input("Created between", value=(), key="gallery_dates", format="YYYY-MM-DD",
                        help="Pick a first and a last day (UTC).", persist_state="page")
    published_col.segmented_control("Shared", list(PUBLISHED), format_func=PUBLISHED.get, default="any",
                                    key="gallery_published", required=True, persist_state="page")


def filters() -> GalleryFilter:
    search_col, sort_col = st.columns([3, 1])
    text = search_col.text_input("Search your prompts", key="gallery_text", placeholder="lighthouse fog",
                                 max_chars=200, help="Finds images whose prompt contains every word.")
    sort = sort_col.selectbox("Sort", list(SORTS), format_func=SORTS.get, key="gallery_sort")
    # Drawn only while open: six inputs, each walking the session state, would cost every run of the page.
    lazy_expander("Filters", "gallery_filters_open", filter_fields, icon=":material/filter_list:")
    picked = {key: ss.get(key, default) for key, default in FILTER_DEFAULTS.items()}
    days = picked["gallery_dates"]
    days = tuple(days) if isinstance(days, list | tuple) else (days,) if days else ()
    return GalleryFilter(text=text, statuses=tuple(picked["gallery_status"] or ()), tier=picked["gallery_tier"],
                         template_id=picked["gallery_template"],
                         date_from=days[0] if days else None, date_to=days[-1] if days else None,
                         published={"any": None, "yes": True, "no": False}[picked["gallery_published"] or "any"],
                         sort=sort)


st.title("My Creations")
if ss.get("gallery_open") is not None:
    detail(ss.gallery_open)
    st.stop()

total = studio.gallery.count(user.id)
if total == 0:
    empty_state("No images yet", "Everything you generate in the Studio lands here: finished images, and failed "
                "ones with the reason (never charged).", icon=":material/photo_library:")
    st.page_link("app_pages/studio.py", label="Open the Studio", icon=":material/palette:")
    st.stop()

st.caption(f"{total} image{'s' if total != 1 else ''}")
wanted = filters()
try:
    with st.spinner("Loading your images…"):
        page = load_page("gallery", lambda cursor: studio.gallery.list(user.id, wanted, cursor), wanted)
except GalleryError as exc:
    error_state(str(exc))
    st.stop()
if page.is_empty:
    empty_state("Nothing matches", "No image matches this search and these filters. Try fewer words or clear "
                "a filter.", icon=":material/search_off:")
else:
    grid(page.items, card)
    pager("gallery", page.next_cursor)
