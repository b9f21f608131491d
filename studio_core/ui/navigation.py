"""Which screens a user gets. Built on every run from the user's role: a page a user may not see is left out
of the list entirely (``visibility="hidden"`` would not be access control)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import streamlit as st

from studio_core.services.accounts import UserView

# Not "pages/": Streamlit treats a pages/ folder beside the entry script as legacy auto-discovered pages
# (it runs a page script directly, without the sign-in gate, for the first request of a fresh process and
# in every AppTest rerun). Every screen here is registered explicitly instead; see docs/decisions.
PAGES_DIR = Path(__file__).resolve().parents[2] / "app_pages"


def _page(file: str, title: str, icon: str, *, default: bool = False) -> st.Page:
    return st.Page(str(PAGES_DIR / file), title=title, icon=icon, default=default)


def _moderation_title(user: UserView) -> str:
    """"Moderation (3)": open reports at a glance (one indexed count per run, admins only)."""
    from studio_core.ui.session import get_studio

    try:
        waiting = get_studio().moderation.open_report_count(user)
    except Exception:  # noqa: BLE001 - a title must never break the navigation
        return "Moderation"
    return f"Moderation ({waiting})" if waiting else "Moderation"


def signed_out_pages(sign_in: Callable[[], None]) -> list[st.Page]:
    """The sign-in screen, also under every screen's address. A link opened signed out (a shared post, Stripe
    sending the buyer back to ``/wallet?session_id=...`` in a new tab) then shows the sign-in form instead of
    "Page not found", and once signed in the rerun lands on that screen with its query parameters (Streamlit
    knows a page by its URL path). Every one of them runs only the sign-in screen."""
    pages = [st.Page(sign_in, title="Sign in", icon=":material/login:", url_path="sign-in", default=True)]
    pages += [st.Page(sign_in, title="Sign in", icon=":material/login:", url_path=script.stem)
              for script in sorted(PAGES_DIR.glob("*.py"))]
    return pages


_PAGES_KEY = "navigation_pages"


def pages_for(user: UserView) -> dict[str, list[st.Page]]:
    """The user's sections of pages. Kept in the session while the role and the titles stay the same: building
    the pages costs every run a few hundred microseconds, and a session runs one script at a time."""
    moderation = _moderation_title(user) if user.is_admin else None
    kept = st.session_state.get(_PAGES_KEY)
    if kept is not None and kept[0] == (user.id, moderation):
        return dict(kept[1])
    sections = _sections(user, moderation)
    st.session_state[_PAGES_KEY] = ((user.id, moderation), sections)
    return dict(sections)


def _sections(user: UserView, moderation: str | None) -> dict[str, list[st.Page]]:
    sections: dict[str, list[st.Page]] = {
        "Create": [_page("studio.py", "Studio", ":material/palette:", default=True),
                   _page("wallet.py", "Wallet", ":material/account_balance_wallet:"),
                   _page("prompt_lab.py", "Prompt Lab", ":material/science:"),
                   _page("gallery.py", "My Creations", ":material/photo_library:"),
                   _page("community.py", "Community", ":material/groups:"),
                   _page("account.py", "Account", ":material/person:")],
    }
    if moderation is not None:
        sections["Admin"] = [_page("admin_moderation.py", moderation, ":material/gavel:"),
                             _page("admin_catalog.py", "Catalog", ":material/category:"),
                             _page("admin_users.py", "Users", ":material/group:"),
                             _page("admin_analytics.py", "Analytics", ":material/monitoring:")]
    return sections
