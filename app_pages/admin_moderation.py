"""Admin · Moderation: reported posts, worst first, with the reports' reasons and reporters; Hide, Restore,
Remove or Dismiss, each with a note; and the history of every decision."""

import streamlit as st

from studio_core.services.accounts import AccessDenied
from studio_core.services.community import REASON_LABELS, CommunityError
from studio_core.services.moderation import ACTIONS
from studio_core.ui.cards import card_heading, counted, load_page, pager, picture, status_badge
from studio_core.ui.session import get_studio, require_admin
from studio_core.ui.widgets import chooser, empty_state, error_state, lazy_tabs, table

admin = require_admin()
studio = get_studio()
ss = st.session_state
# The queue is a table of the worst posts (one element, however long) and one post under review at a time, the
# worst unless another is chosen: each decision takes the post out of the queue and the next one moves up.
# (Every post under review is a picture, its reports, a note field and four buttons; drawing a queue of them on
# every click would make each click slow.)
QUEUE_LISTED = 25
ICONS = {"hide": ":material/visibility_off:", "restore": ":material/visibility:", "remove": ":material/delete:",
         "dismiss": ":material/done_all:"}


def act(post_id: int, action: str) -> None:
    note = ss.get(f"mod_note_{post_id}", "")
    try:
        status = studio.moderation.act(admin, post_id, action, note)
    except (CommunityError, AccessDenied) as exc:
        ss[f"mod_error_{post_id}"] = str(exc)
        return
    ss.pop(f"mod_note_{post_id}", None)
    ss.mod_done = f"{ACTIONS[action]}: done. The post is now {status}."


def queue_item(item) -> None:
    with st.container(border=True):
        picture_col, info_col = st.columns([1, 3], gap="medium")
        with picture_col:
            picture(studio.moderation.thumbnail_url(item), alt=f"Reported image: {item.title}",
                    missing="Image deleted by its author")
        with info_col:
            card_heading(item.title, f"by {item.author_name}", item.category_name, f"posted {item.created_at:%d %b %Y}")
            status_badge(item.status, item.status_label)
            st.caption(f"{len(item.reports)} open report{'s' if len(item.reports) != 1 else ''}: " + ", ".join(
                f"{REASON_LABELS[r]} ×{n}" for r, n in item.reason_counts.items()))
            with st.expander("Reports and prompt", expanded=len(item.reports) <= 3):
                st.text("\n\n".join(  # one block of text, however many reports
                    f"{report.created_at:%d %b %H:%M} · {report.reporter_name} · {REASON_LABELS[report.reason]}"
                    + (f"\n{report.details}" if report.details else "") for report in item.reports))
                st.caption("Prompt")
                st.text(item.prompt)
            st.text_input("Note (kept in the history)", key=f"mod_note_{item.post_id}", max_chars=1000,
                          placeholder="Why you decided this")
            if error := ss.pop(f"mod_error_{item.post_id}", None):
                st.error(error)
            with st.container(horizontal=True, gap="small"):  # natural widths, wrapping when narrow
                for action in ACTIONS:
                    disabled = (action == "hide" and item.status == "hidden") or (
                        action == "restore" and item.status in ("visible", "unpublished")) or (
                        action == "remove" and item.status == "removed")
                    st.button(ACTIONS[action], key=f"mod_{action}_{item.post_id}", icon=ICONS[action],
                              on_click=act, args=(item.post_id, action), disabled=disabled,
                              type="primary" if action == "hide" else "secondary")


def queue_view() -> None:
    listed = studio.moderation.queue(admin, limit=QUEUE_LISTED)
    queue, waiting = listed.items, listed.waiting_posts
    if not queue:
        empty_state("No open reports", "Nothing is waiting for review. Reported posts appear here, the most "
                    "reported first.", icon=":material/task_alt:")
        return
    # the navigation and the tab count reports; say how many posts they fall on, so the two figures agree
    shown = f"{counted(open_reports, 'open report')} on {counted(waiting, 'post')}, most reported first" + (
        "" if waiting == len(queue) else
        f"; the {len(queue)} most reported are listed (decide on these and the next ones move up)")
    st.caption(f"{shown}. Hide and Remove take a post out of the feed; Restore brings it back; Dismiss keeps it "
               "as it is.")
    chosen = queue[0]
    if len(queue) > 1:
        table([{"Post": item.title, "Author": item.author_name, "Reports": len(item.reports),
                "Reasons": ", ".join(f"{REASON_LABELS[r]} ×{n}" for r, n in item.reason_counts.items()),
                "Status": item.status_label, "Posted": item.created_at.date()} for item in queue],
              ["Post", "Author", "Reports", "Reasons", "Status", "Posted"], hide_index=True, width="stretch",
              key="mod_queue_table", column_config={"Post": st.column_config.TextColumn(width="medium"),
                                                    "Reasons": st.column_config.TextColumn(width="medium"),
                                                    "Posted": st.column_config.DateColumn(format="DD MMM YYYY")})
        # a post decided on leaves the queue and the worst one is under review again
        chosen = chooser("Post to review", {item.post_id: item for item in queue}, "mod_pick",
                         lambda item: f"{item.title} — by {item.author_name}")
    queue_item(chosen)


def history_view() -> None:
    page = load_page("mod_history", lambda cursor: studio.moderation.history(admin, cursor), "history")
    if page.is_empty:
        empty_state("No decisions yet", "Every moderation action, with its note, is listed here.",
                    icon=":material/history:")
        return
    # A table shows user text literally (no Markdown), which is what notes and titles need.
    table([{
        "When": a.created_at.strftime("%Y-%m-%d %H:%M"), "Action": a.label,
        "Post": a.post_title or "", "Author": a.target_name or "",
        "By": ("report by " + a.actor_name) if a.action == "auto_hide" else a.actor_name, "Note": a.note,
    } for a in page.items], ["When", "Action", "Post", "Author", "By", "Note"], hide_index=True, width="stretch")
    pager("mod_history", page.next_cursor)


st.title("Moderation")
if done := ss.pop("mod_done", None):
    st.success(done, icon=":material/gavel:")
try:
    open_reports = studio.moderation.open_report_count(admin)
    # Only the open tab is drawn (on_change="rerun"): a decision need not rebuild the history's table.
    lazy_tabs({f"Queue ({open_reports})": queue_view, "History": history_view}, key="mod_tab")
except AccessDenied as exc:
    error_state(str(exc))
