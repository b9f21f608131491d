"""Admin · Users: everyone with an account; promote, demote, disable."""

import streamlit as st

from studio_core.services.accounts import AccountError
from studio_core.ui.session import get_studio, require_admin
from studio_core.ui.widgets import empty_state

admin = require_admin()
studio = get_studio()

st.title("Users")
query = st.text_input("Search by email or name", key="users_query", placeholder="ada@example.com")
users = studio.accounts.list_users(admin, query=query, limit=200)
if not users:
    empty_state("No users found", "Nobody matches this search." if query else "Nobody has signed up yet.")
    st.stop()

st.caption(f"{len(users)} user{'s' if len(users) != 1 else ''} shown")
for u in users:
    with st.container(border=True):
        info, role_col, state_col = st.columns([3, 1, 1])
        info.text(f"{u.display_name} — {u.email}")
        info.caption(f"Joined {u.created_at:%d %b %Y} · {'disabled' if u.disabled else 'active'}")
        is_self = u.id == admin.id
        new_role = role_col.selectbox("Role", ["creator", "admin"], index=1 if u.is_admin else 0,
                                      key=f"role_{u.id}", disabled=is_self,
                                      help="You cannot change your own role." if is_self else None)
        if new_role != u.role:
            studio.accounts.change_role(admin, u.id, new_role)
            st.rerun()
        label = "Enable" if u.disabled else "Disable"
        if state_col.button(label, key=f"toggle_{u.id}", disabled=is_self, use_container_width=True):
            try:
                studio.accounts.set_disabled(admin, u.id, not u.disabled)
            except AccountError as exc:
                st.error(str(exc))
            else:
                st.rerun()
