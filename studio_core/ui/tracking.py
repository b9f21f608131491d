"""Product events from the screens: ``track(Event.X, **properties)``.

The signed-in user and a per-browser-session id come from session state, so a call site names only what
happened. Tracking never breaks a page: AnalyticsService.track logs and swallows its own failures, and this
helper swallows a Studio that cannot even be built.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

import streamlit as st

from studio_core.services.analytics import Event
from studio_core.ui.session import USER_KEY, get_studio

log = logging.getLogger(__name__)

SESSION_KEY = "analytics_session_id"
LAST_PAGE_KEY = "analytics_last_page"

__all__ = ["Event", "session_id", "track", "track_page_view"]


def session_id() -> str:
    """One id per browser session (it changes at sign-out, which clears the session state)."""
    sid = st.session_state.get(SESSION_KEY)
    if not sid:
        sid = st.session_state[SESSION_KEY] = uuid.uuid4().hex
    return sid


def track(name: str, **properties: Any) -> bool:
    try:
        analytics = get_studio().analytics
    except Exception:  # noqa: BLE001 - the page shows its own error state; analytics stays quiet
        log.warning("analytics unavailable; %s not recorded", name, exc_info=True)
        return False
    return analytics.track(name, st.session_state.get(USER_KEY), properties, session_id=session_id())


def track_page_view(page: Any) -> None:
    """A page view when the user arrives on a page, not on every rerun while they work on it."""
    here = page.url_path or page.title
    if st.session_state.get(LAST_PAGE_KEY) == here:
        return
    st.session_state[LAST_PAGE_KEY] = here
    track(Event.PAGE_VIEW, page=page.title, path=page.url_path)
