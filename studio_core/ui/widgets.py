"""Shared widgets: empty / error states, the user menu, provider notices.

User text is only ever shown through ``st.text`` / ``st.caption(..., text)``-safe helpers here: never as
Markdown or HTML, so a prompt or a name cannot inject links, images or markup.
"""

from __future__ import annotations

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
