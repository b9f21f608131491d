"""Which screens a user gets. Built on every run from the user's role: a page a user may not see is left out
of the list entirely (``visibility="hidden"`` would not be access control)."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from studio_core.services.accounts import UserView

# Not "pages/": Streamlit treats a pages/ folder beside the entry script as legacy auto-discovered pages
# (it runs a page script directly, without the sign-in gate, for the first request of a fresh process and
# in every AppTest rerun). Every screen here is registered explicitly instead; see docs/decisions.
PAGES_DIR = Path(__file__).resolve().parents[2] / "app_pages"


def _page(file: str, title: str, icon: str, *, default: bool = False) -> st.Page:
    return st.Page(str(PAGES_DIR / file), title=title, icon=icon, default=default)


def pages_for(user: UserView) -> dict[str, list[st.Page]]:
    sections: dict[str, list[st.Page]] = {
        "Create": [_page("studio.py", "Studio", ":material/palette:", default=True),
                   _page("prompt_lab.py", "Prompt Lab", ":material/science:"),
                   _page("account.py", "Account", ":material/person:")],
    }
    if user.is_admin:
        sections["Admin"] = [_page("admin_users.py", "Users", ":material/group:"),
                             _page("admin_analytics.py", "Analytics", ":material/monitoring:")]
    return sections
