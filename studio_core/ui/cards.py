"""Shared pieces of the image grids (My Creations, Community, Moderation): keyset pager, image cells, badges.

User text (titles, prompts, names) only ever goes through ``plain()`` into captions or through ``st.text``.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable

import streamlit as st

from studio_core.services.community import RemixOrigin
from studio_core.services.paging import BadCursor
from studio_core.ui.widgets import plain

GRID_COLUMNS = 4
STATUS_COLORS = {"visible": "green", "hidden": "orange", "removed": "red", "unpublished": "gray"}


def shorten(text: str, limit: int = 90) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


# -- keyset paging ---------------------------------------------------------------------------------------------
def page_cursor(key: str, signature: Hashable) -> str | None:
    """The cursor of the page to show. The stack of cursors lives in session state and starts over whenever
    ``signature`` (the filters and sort) changes, so a cursor is never used with another ordering."""
    ss = st.session_state
    if ss.get(f"{key}_signature") != signature:
        ss[f"{key}_signature"] = signature
        ss[f"{key}_cursors"] = [None]
    return ss[f"{key}_cursors"][-1]


def restart_paging(key: str) -> None:
    st.session_state[f"{key}_cursors"] = [None]


def load_page(key: str, fetch: Callable[[str | None], object], signature: Hashable):
    """fetch(cursor) for the current page; a stale cursor (BadCursor) quietly restarts from page 1."""
    try:
        return fetch(page_cursor(key, signature))
    except BadCursor:
        restart_paging(key)
        return fetch(None)


def pager(key: str, next_cursor: str | None) -> None:
    """Previous / Page n / Next under a grid (hidden when everything fits on one page)."""
    cursors: list = st.session_state[f"{key}_cursors"]
    if len(cursors) == 1 and next_cursor is None:
        return
    back, where, forward = st.columns([1, 2, 1], vertical_alignment="center")
    back.button("Previous", key=f"{key}_previous", icon=":material/chevron_left:", disabled=len(cursors) == 1,
                on_click=cursors.pop, use_container_width=True)
    where.caption(f"Page {len(cursors)}")
    forward.button("Next", key=f"{key}_next", icon=":material/chevron_right:", disabled=next_cursor is None,
                   on_click=cursors.append, args=(next_cursor,), use_container_width=True)


# -- cells -----------------------------------------------------------------------------------------------------
def grid(items: list, render: Callable[[object], None], columns: int = GRID_COLUMNS) -> None:
    """Items in rows of ``columns`` bordered cards (rows keep their cards aligned when captions differ)."""
    for start in range(0, len(items), columns):
        cols = st.columns(columns)
        for col, item in zip(cols, items[start:start + columns], strict=False):
            with col, st.container(border=True):
                render(item)


def picture(url: str | None, alt: str, *, missing: str = "No picture") -> None:
    if url:
        st.image(url, width="stretch", alt=alt)
    else:
        with st.container(border=True, height=120, vertical_alignment="center", horizontal_alignment="center"):
            st.caption(missing)


def status_badge(status: str, label: str) -> None:
    st.badge(label, color=STATUS_COLORS.get(status, "gray"))


def title_line(title: str) -> None:
    st.markdown(f"**{plain(shorten(title, 60))}**")


def meta_line(*parts: str | None) -> None:
    st.caption(" · ".join(plain(p) for p in parts if p))


def remix_link(origin: RemixOrigin | None) -> None:
    """"Remixed from “Title” by Ada": a link to the source post when the viewer may open it, else plain text."""
    if origin is None:
        return
    if origin.post_id is not None:
        st.page_link("app_pages/community.py", label=plain(origin.label), icon=":material/autorenew:",
                     query_params={"post": str(origin.post_id)})
    else:
        st.caption(plain(origin.label))
