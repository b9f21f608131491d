"""The sign-in gate: built-in accounts (sign in / create account) and, when ``[auth]`` is configured in
secrets, single sign-on through ``st.login`` (OIDC)."""

from __future__ import annotations

import streamlit as st

from studio_core.bootstrap import Studio
from studio_core.services.accounts import AccountError
from studio_core.ui.session import sign_in_session
from studio_core.ui.tracking import Event, track


def oidc_configured() -> bool:
    try:
        return "auth" in st.secrets
    except Exception:  # no secrets file at all
        return False


def complete_oidc_sign_in(studio: Studio) -> bool:
    """If the identity provider has signed someone in, match or create their account. True on success."""
    if not oidc_configured() or not getattr(st.user, "is_logged_in", False):
        return False
    try:
        user = studio.accounts.sign_in_oidc(subject=str(st.user.get("sub") or ""),
                                            email=st.user.get("email"),
                                            email_verified=bool(st.user.get("email_verified", False)),
                                            name=st.user.get("name"))
    except AccountError as exc:
        st.error(str(exc))
        if st.button("Sign out of the identity provider"):
            st.logout()
        return False
    sign_in_session(user)
    track(Event.SIGN_IN, method="oidc")
    return True


def sign_in_page() -> None:
    from studio_core.ui.session import get_studio

    studio = get_studio()
    if complete_oidc_sign_in(studio):
        st.rerun()
    left, middle, right = st.columns([1, 2, 1])
    with middle:
        st.title("Studio")
        st.caption("Write a prompt, let AI polish it, and turn it into an image. Sign in to start creating.")
        referral = st.query_params.get("ref", "")
        sign_in_tab, sign_up_tab = st.tabs(["Sign in", "Create account"])
        with sign_in_tab:
            _sign_in_form(studio)
        with sign_up_tab:
            if referral:
                st.info("You were invited: your referral code is filled in below.", icon=":material/redeem:")
            _sign_up_form(studio, referral)
        if oidc_configured():
            st.divider()
            if st.button("Sign in with single sign-on", icon=":material/key:", width="stretch"):
                st.login()


def _sign_in_form(studio: Studio) -> None:
    with st.form("sign_in", border=False):
        email = st.text_input("Email", key="sign_in_email", autocomplete="email")
        password = st.text_input("Password", type="password", key="sign_in_password",
                                 autocomplete="current-password")
        submitted = st.form_submit_button("Sign in", type="primary", width="stretch",
                                          key="sign_in_submit")
    if submitted:
        try:
            user = studio.accounts.sign_in(email, password)
        except AccountError as exc:
            st.error(str(exc), icon=":material/error:")
            return
        sign_in_session(user)
        track(Event.SIGN_IN, method="password")
        st.rerun()


def _sign_up_form(studio: Studio, referral: str) -> None:
    with st.form("sign_up", border=False):
        email = st.text_input("Email", key="sign_up_email", autocomplete="email")
        name = st.text_input("Display name", key="sign_up_name", max_chars=80,
                             help="Shown next to images you publish.")
        password = st.text_input("Password", type="password", key="sign_up_password",
                                 autocomplete="new-password",
                                 help=f"At least {studio.settings.password_min_length} characters, "
                                      "mixing letters with digits or symbols.")
        confirm = st.text_input("Repeat password", type="password", key="sign_up_confirm",
                                autocomplete="new-password")
        code = st.text_input("Referral code (optional)", value=referral, key="sign_up_referral",
                             max_chars=16)
        submitted = st.form_submit_button("Create account", type="primary", width="stretch",
                                          key="sign_up_submit")
    if submitted:
        if password != confirm:
            st.error("The two passwords differ.", icon=":material/error:")
            return
        try:
            user = studio.accounts.sign_up(email, name, password, referral_code=code or None)
        except AccountError as exc:
            st.error(str(exc), icon=":material/error:")
            return
        sign_in_session(user)
        track(Event.SIGN_UP, method="password", referred=bool(code))
        if code:
            track(Event.REFERRAL_JOINED, referral_code=code.strip().upper())
        st.session_state["welcome"] = True
        st.rerun()
