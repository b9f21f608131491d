"""Community: everyone's published images. New, Top (today / this week / this month / all time) and Most
remixed; category, search, your own posts. Like on the card; each post's view has its recipe, Remix and
Report."""

import streamlit as st

from studio_core.services.community import (
    REASON_LABELS,
    SORTS,
    WINDOWS,
    CommunityError,
    FeedQuery,
    PostNotFound,
)
from studio_core.ui.cards import (
    card_heading,
    counted,
    grid,
    load_page,
    meta_line,
    pager,
    picture,
    remix_link,
    status_badge,
    title_line,
)
from studio_core.ui.generation import recipe_card
from studio_core.ui.remix import open_in_studio
from studio_core.ui.session import get_studio, require_user
from studio_core.ui.tracking import Event, track
from studio_core.ui.widgets import empty_state, error_state, keep_choice

user = require_user()
studio = get_studio()
ss = st.session_state

# A link such as ?post=12 (from My Creations, or shared) opens that post once.
if (wanted := st.query_params.get("post")) and wanted.isdigit() and ss.get("community_link") != wanted:
    ss.community_link = wanted
    ss.community_open = int(wanted)


def like(post) -> None:
    try:
        if post.liked:
            studio.community.unlike(user.id, post.id)
        else:
            studio.community.like(user.id, post.id)
            track(Event.LIKE, post_id=post.id)
    except CommunityError as exc:
        ss.community_notice = str(exc)


def open_post(post_id: int) -> None:
    ss.community_open = post_id


def close_post() -> None:
    ss.pop("community_open", None)
    ss.pop("community_link", None)  # the same link may be followed again later
    st.query_params.pop("post", None)


def remix(post_id: int) -> None:
    """Script body, not a callback: switching pages ends this run."""
    try:
        start = studio.community.start_remix(user.id, post_id)
    except CommunityError as exc:
        st.error(str(exc))
        return
    track(Event.REMIX, post_id=post_id, source_image_id=start.post.image_id)
    open_in_studio(studio, start.recipe, remixed_from_id=start.post.image_id)


def like_button(post, where: str) -> None:
    st.button(f"{'Liked' if post.liked else 'Like'} · {post.like_count}", key=f"{where}_like_{post.id}",
              on_click=like, args=(post,),
              icon=":material/favorite:" if post.liked else ":material/favorite_border:",
              disabled=post.is_mine or not post.is_visible, type="primary" if post.liked else "secondary",
              help="You can't like your own post." if post.is_mine
              else ("Click to unlike" if post.liked else "Like this post"))


def post_actions(post) -> None:
    """Like, Remix and Report, in the post's view: remixing and reporting are decided with the full image and
    its recipe in front of you. They keep their natural width and wrap rather than being cut off."""
    with st.container(horizontal=True, gap="small"):
        like_button(post, "dialog")
        if st.button(f"Remix · {post.remix_count}", key=f"dialog_remix_{post.id}", icon=":material/autorenew:",
                     disabled=not post.is_visible, help="Open this recipe in your Studio to make your own version"):
            remix(post.id)
        if st.button("Reported" if post.reported else "Report", key=f"dialog_report_{post.id}",
                     icon=":material/flag:", disabled=post.is_mine or post.reported or not post.is_visible,
                     help="You reported this post." if post.reported else
                     ("You can't report your own post." if post.is_mine else "Report it to the moderators")):
            ss.community_report = post.id
            st.rerun(scope="app")  # a click in a dialog reruns only the dialog; the report dialog replaces it


def card(post) -> None:
    """A card is the picture, its title and counts, Like and View: one row of two buttons (a grid draws 16
    cards every run, and four buttons a card wrapped onto three lines). The rest is in the post's view."""
    picture(studio.community.thumbnail_url(post), alt=f"{post.title} by {post.author_name}")
    card_heading(post.title, f"by {post.author_name}", post.category_name,
                 counted(post.remix_count, "remix") if post.remix_count else None)
    if post.remixed_from is not None and post.remixed_from.post_id is not None:
        remix_link(post.remixed_from, in_card=True)
    if not post.is_visible:
        status_badge(post.status, post.status_label)
    with st.container(horizontal=True, gap="small"):
        like_button(post, "card")
        st.button("View", key=f"open_{post.id}", on_click=open_post, args=(post.id,),
                  icon=":material/open_in_full:", help="The full image, its recipe, Remix and Report")


@st.dialog("Post", width="large", on_dismiss=close_post)
def post_dialog(post_id: int) -> None:
    try:
        post = studio.community.get_post(user.id, post_id)
        recipe = studio.community.recipe(user.id, post_id)
    except PostNotFound as exc:
        st.warning(str(exc), icon=":material/visibility_off:")
        return
    picture_col, info_col = st.columns([3, 2])
    with picture_col:
        picture(studio.community.image_url(post), alt=f"{post.title} by {post.author_name}")
    with info_col:
        title_line(post.title)
        meta_line(f"by {post.author_name}", post.category_name, f"{post.created_at:%d %b %Y}",
                  counted(post.like_count, "like"), counted(post.remix_count, "remix"))
        if not post.is_visible:
            status_badge(post.status, post.status_label)
        remix_link(post.remixed_from)
        post_actions(post)
        recipe_card(recipe)


@st.dialog("Report this post", on_dismiss=lambda: ss.pop("community_report", None))
def report_dialog(post_id: int) -> None:
    st.caption("Moderators review every report. A post reported by several people is hidden until they do.")
    reason = st.radio("Reason", list(REASON_LABELS), format_func=REASON_LABELS.get, key="report_reason")
    details = st.text_area("Details", key="report_details", max_chars=1000,
                           placeholder="What is wrong? (required for “something else”)")
    send, cancel = st.columns(2)
    if send.button("Send report", type="primary", key="report_send", width="stretch"):
        try:
            result = studio.community.report(user.id, post_id, reason, details)
        except CommunityError as exc:
            st.error(str(exc))
            return
        track(Event.REPORT, post_id=post_id, reason=reason)
        ss.pop("community_report", None)
        ss.pop("report_details", None)
        st.toast("Thank you. The moderators will look at it." + (" It is hidden until they do."
                                                                   if result.hidden_now else ""),
                 icon=":material/flag:")
        st.rerun()
    if cancel.button("Cancel", key="report_cancel", width="stretch"):
        ss.pop("community_report", None)
        st.rerun()


# -- the page ----------------------------------------------------------------------------------------------------
st.title("Community")
if notice := ss.pop("community_notice", None):
    st.warning(notice, icon=":material/info:")

sort_col, window_col, search_col = st.columns([2, 2, 3], vertical_alignment="bottom")
sort = sort_col.segmented_control("Sort", list(SORTS), format_func=SORTS.get, default="new", required=True,
                                  key="community_sort")
window = "week"
if sort == "top":
    window = window_col.selectbox("Period", list(WINDOWS), format_func=WINDOWS.get, index=1,
                                  key="community_window")
text = search_col.text_input("Search", key="community_text", placeholder="titles and prompts", max_chars=200)
category_col, mine_col = st.columns([2, 5], vertical_alignment="bottom")
categories = {None: "All categories", **{c.id: c.name for c in studio.catalog.categories(include_inactive=True)}}
keep_choice("community_category", list(categories))
category = category_col.selectbox("Category", list(categories), format_func=categories.get,
                                  key="community_category")
mine = mine_col.toggle("Only my posts", key="community_mine",
                       help="Your own posts, including any hidden or removed by moderators.")

query = FeedQuery(sort=sort or "new", window=window, category_id=category, text=text, mine=mine)
try:
    with st.spinner("Loading the feed…"):
        page = load_page("community", lambda cursor: studio.community.feed(user.id, query, cursor), query)
except CommunityError as exc:
    error_state(str(exc))
    st.stop()

if page.is_empty:
    if text.strip() or category is not None or mine or sort == "top":
        empty_state("Nothing here", "No post matches. Try other words, another period or another category.",
                    icon=":material/search_off:")
    else:
        empty_state("No posts yet", "Nobody has shared an image yet. Publish one of yours from My Creations.",
                    icon=":material/groups:")
        st.page_link("app_pages/gallery.py", label="Go to My Creations", icon=":material/photo_library:")
else:
    grid(page.items, card)
    pager("community", page.next_cursor)

if ss.get("community_report") is not None:
    report_dialog(ss.community_report)
elif ss.get("community_open") is not None:
    post_dialog(ss.community_open)
