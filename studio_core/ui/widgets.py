"""Shared widgets: empty / error states, tables, the user menu, provider notices.

User text is only ever shown through ``st.text`` / ``st.caption(..., text)``-safe helpers here: never as
Markdown or HTML, so a prompt or a name cannot inject links, images or markup.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping, Sequence
from typing import Any, TypeVar

import pyarrow as pa
import streamlit as st

from studio_core.services.accounts import UserView


def plain(text: str) -> str:
    """Escape Markdown so user text renders literally inside st.caption / st.markdown labels."""
    specials = "\\`*_{}[]()#+-.!|<>~$:"
    return "".join("\\" + ch if ch in specials else ch for ch in text)


def empty_state(title: str, message: str, *, icon: str = ":material/inbox:") -> None:
    with st.container(border=True):
        # Bold text, not a heading: an empty state is a message, and a heading here would skip levels
        # wherever it sits (right under a page title or a section header).
        st.markdown(f"**{icon} {title}**")
        st.caption(message)


def table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str], **dataframe_args: Any) -> None:
    """``st.dataframe`` of plain rows (dicts with these ``columns``), handed over as an Arrow table. Streamlit
    sends a dataframe as Arrow anyway: building a pandas frame first costs a 12-row table about 3 ms a run, the
    Arrow table about 0.5 ms (``benchmarks/elements.py``). Every cell shows as plain text, never Markdown, so
    user text (a memo, a title, a note) cannot become a link or markup."""
    if rows:
        data = pa.Table.from_pylist([{c: row.get(c) for c in columns} for row in rows])
    else:
        data = pa.table({c: pa.array([], pa.string()) for c in columns})
    st.dataframe(data, **dataframe_args)


def lazy_tabs(sections: Mapping[str, Callable[[], None]], key: str) -> None:
    """Tabs of which only the open one is drawn: a click on a tab reruns the page (``on_change="rerun"``) and
    ``.open`` says which one is open, so the others cost a run nothing. ``sections``: label -> what it draws."""
    for tab, draw in zip(st.tabs(list(sections), key=key, on_change="rerun"), sections.values(), strict=True):
        with tab:
            if tab.open:
                draw()


def lazy_expander(label: str, key: str, draw: Callable[[], None], *, icon: str | None = None) -> None:
    """An expander whose contents are drawn only while it is open, as ``lazy_tabs`` draws tabs: opening or
    closing it reruns the page, so a closed editor, table or recipe costs a run nothing. Inputs inside that must
    keep their values while it is closed use ``persist_state="page"``."""
    shelf = st.expander(label, icon=icon, key=key, on_change="rerun")
    with shelf:
        if shelf.open:
            draw()


def keep_choice(key: str, options: Sequence[Any], ident: Callable[[Any], Hashable] = lambda option: option) -> None:
    """Call before drawing the select box ``key`` over ``options``. The browser knows a select box's choice by
    its label, so once the chosen option is renamed (an admin renames a template or a category, perhaps in
    another session) the next click would fall back to the first option. Setting the choice again, as the
    option with the same ``ident`` now is, keeps it; a choice no longer offered is let go (the box shows its
    default)."""
    ss = st.session_state
    if key not in ss:
        return
    chosen = ss[key]
    if chosen is None and None in options:  # "All categories", "Any template": nothing to rename
        return
    offered = {ident(option): option for option in options if option is not None}
    wanted = None if chosen is None else ident(chosen)
    if wanted in offered:
        ss[key] = offered[wanted]
    else:
        del ss[key]


T = TypeVar("T")


def chooser(label: str, items: Mapping[Hashable, T], key: str, describe: Callable[[T], str]) -> T:
    """The one of ``items`` (by id, in their order; not empty) to work on, as a select box: the admin lists'
    "Template to change", "User to change", "Post to review". A choice that is no longer among them (decided on,
    on another page of the list, in another category) falls back to the first."""
    keep_choice(key, list(items))
    chosen = st.selectbox(label, list(items), key=key, format_func=lambda item_id: describe(items[item_id]))
    return items[chosen]


def error_state(message: str, *, detail: str | None = None) -> None:
    st.error(message, icon=":material/error:")
    if detail:
        with st.expander("Details"):
            st.code(detail, language=None)


def user_menu(user: UserView) -> bool:
    """Sidebar identity block; returns True when the user clicked Sign out."""
    with st.sidebar:
        st.text(f"{user.display_name}\n{user.email}\n{'Admin' if user.is_admin else 'Creator'}")
        return st.button("Sign out", key="sign_out", icon=":material/logout:", width="stretch")


def provider_notices(notices: list[str]) -> None:
    for notice in notices:
        st.sidebar.warning(notice, icon=":material/cloud_off:")
