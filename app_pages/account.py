"""Account: who you are, your role, and your referral code."""

import streamlit as st

from studio_core.ui.session import get_studio, require_user

user = require_user()
studio = get_studio()

st.title("Account")

with st.container(border=True):
    st.header("Profile")
    left, right = st.columns(2)
    left.caption("Display name")
    left.text(user.display_name)
    right.caption("Email")
    right.text(user.email)
    left.caption("Role")
    left.text("Admin" if user.is_admin else "Creator")
    right.caption("Member since")
    right.text(user.created_at.strftime("%d %b %Y"))

with st.container(border=True):
    st.header("Invite friends")
    st.caption("Share your code or link. Friends who join with it get bonus credits, and so do you.")
    st.code(user.referral_code, language=None)
    st.code(f"{studio.settings.app_url.rstrip('/')}/?ref={user.referral_code}", language=None)
