"""Studio: the entry point. Settings, database up to date, sign-in gate, role-based navigation, sidebar."""

import streamlit as st

from studio_core.config import ConfigError
from studio_core.db import DatabaseUnavailable
from studio_core.migrate import SchemaError
from studio_core.ui.auth import sign_in_page
from studio_core.ui.navigation import pages_for, signed_out_pages
from studio_core.ui.outage import database_guard
from studio_core.ui.session import app_run, current_user, get_studio, sign_out_session
from studio_core.ui.tracking import track_page_view
from studio_core.ui.wallet_bar import ensure_allowance, wallet_bar
from studio_core.ui.widgets import error_state, provider_notices, user_menu

st.set_page_config(page_title="Studio", page_icon=":material/palette:", layout="wide")

try:
    studio = get_studio()
except (ConfigError, DatabaseUnavailable, SchemaError) as exc:
    error_state("Studio cannot start: " + str(exc),
                detail="Fix the setting named above (environment variable, .env or .streamlit/secrets.toml) "
                       "and reload. See the README's Troubleshooting section.")
    st.stop()

# A database outage mid-session shows a plain message and a Try again button, never a traceback.
with database_guard(), app_run(studio):
    user = current_user()
    if user is None:
        st.navigation(signed_out_pages(sign_in_page), position="hidden").run()
        st.stop()

    page = st.navigation(pages_for(user))
    track_page_view(page)
    if user_menu(user):
        sign_out_session()
        if getattr(st.user, "is_logged_in", False):
            st.logout()
        st.rerun()
    provider_notices(studio.notices)
    ensure_allowance(studio.ledger, user.id)
    bar = st.sidebar.empty()
    if st.session_state.pop("welcome", False):
        st.success(f"Welcome to Studio, {user.display_name}! Your account is ready"
                   f"{' and, as the first account, you are the admin' if user.is_admin else ''}.",
                   icon=":material/celebration:")
    try:
        page.run()
    finally:
        # Drawn after the page (in its place in the sidebar), so it shows the credits as the page left them:
        # a job that ended while the page ran, a pack the page just credited.
        with bar.container():
            wallet_bar(studio.ledger.balance(user.id))
