"""The Studio object and the signed-in user, as every page gets them.

Pages call ``get_studio()`` for services and ``require_user()`` / ``require_admin()`` for the user. Only the
user's id lives in session state; the user row is read again on every run, so a disabled account or a changed
role takes effect on the next click. Once a run: the entry script opens ``app_run()`` around everything it
does, and inside it the Studio and the user it found are handed to whatever asks again (the page, the page
view tracker, the navigation), so a run reads the settings' sources and the user row once.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager

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


_settings_memo: tuple[tuple, Settings] | None = None


def _settings_fingerprint(secrets: dict) -> tuple:
    """Everything Settings is built from: the STUDIO_* environment, the .env file in the working directory
    (which also anchors the default data directory) and the secrets. Cheap to take, unlike Settings itself."""
    cwd = os.getcwd()
    try:
        env_file = os.stat(os.path.join(cwd, ".env"))
        dotenv = (env_file.st_mtime_ns, env_file.st_size, env_file.st_ino)
    except OSError:
        dotenv = None
    environ = tuple(sorted((k, v) for k, v in os.environ.items() if k.upper().startswith("STUDIO_")))
    return cwd, dotenv, environ, json.dumps(secrets, sort_keys=True, default=str)


def get_settings() -> Settings:
    # Validating Settings (pydantic-settings, ~50 fields) costs milliseconds and the shell and the page ask for
    # them several times a run; it is built again only when one of its sources changed.
    global _settings_memo
    secrets = _secrets_mapping()
    key = _settings_fingerprint(secrets)
    memo = _settings_memo
    if memo is not None and memo[0] == key:
        return memo[1]
    settings = load_settings(secrets)
    _settings_memo = (key, settings)
    return settings


# What the entry script found at the top of this run. Each session's script runs on its own thread, and a
# run's callbacks are called before its app_run() opens, so they read afresh.
_run = threading.local()


@contextmanager
def app_run(studio: Studio) -> Iterator[None]:
    """One run of the entry script: get_studio() and current_user() inside it answer from this run."""
    _run.studio, _run.user = studio, None
    try:
        yield
    finally:
        _run.studio = _run.user = None


def get_studio() -> Studio:
    studio = getattr(_run, "studio", None)
    if studio is not None:
        return studio
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
    known = getattr(_run, "user", None)
    if known is not None and known.id == user_id:
        return known
    user = get_studio().accounts.active_user(user_id)
    if user is None:  # deleted or disabled since sign-in
        st.session_state.pop(USER_KEY, None)
    elif getattr(_run, "studio", None) is not None:
        _run.user = user
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
