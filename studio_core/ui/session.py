"""The Studio object and the signed-in user, as every page gets them.

Pages call ``get_studio()`` for services and ``require_user()`` / ``require_admin()`` for the user. Only the
user's id lives in session state; the user row is read again on every run, so a disabled account or a changed
role takes effect on the next click.
"""

from __future__ import annotations

import streamlit as st

from studio_core.bootstrap import Studio, build_studio
from studio_core.config import Settings, load_settings
from studio_core.services.accounts import UserView

USER_KEY = "studio_user_id"


def _secrets_mapping() -> dict:
    try:
        return st.secrets.to_dict()
    except Exception:  # no secrets.toml is the normal zero-configuration case
        return {}


@st.cache_resource(show_spinner="Starting Studio…")
def _build(database_url: str, _settings: Settings) -> Studio:
    # keyed by the database URL: one engine per database per process
    return build_studio(_settings, start_workers=True)


def get_settings() -> Settings:
    return load_settings(_secrets_mapping())


def get_studio() -> Studio:
    settings = get_settings()
    return _build(settings.resolved_database_url, settings)


def sign_in_session(user: UserView) -> None:
    st.session_state[USER_KEY] = user.id


def sign_out_session() -> None:
    for key in list(st.session_state.keys()):
        del st.session_state[key]


def current_user() -> UserView | None:
    user_id = st.session_state.get(USER_KEY)
    if user_id is None:
        return None
    user = get_studio().accounts.active_user(user_id)
    if user is None:  # deleted or disabled since sign-in
        st.session_state.pop(USER_KEY, None)
    return user


def require_user() -> UserView:
    user = current_user()
    if user is None:
        st.warning("Please sign in.")
        st.stop()
    return user


def require_admin() -> UserView:
    user = require_user()
    if not user.is_admin:  # pages are not even registered for creators; this is defence in depth
        st.error("This page is for admins.")
        st.stop()
    return user
