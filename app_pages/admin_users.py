"""Admin · Users: everyone with an account; promote, demote, disable."""

import streamlit as st

from studio_core.services.accounts import AccountError
from studio_core.ui.cards import load_page, pager
from studio_core.ui.session import get_studio, require_admin
from studio_core.ui.widgets import empty_state

admin = require_admin()
studio = get_studio()

st.title("Users")
query = st.text_input("Search by email or name", key="users_query", placeholder="ada@example.com")
# A page at a time (each row is a role menu and a button): the search finds anyone on the others.
page = load_page("users", lambda cursor: studio.accounts.users_page(admin, query=query, cursor=cursor), query)
users = page.items
if not users:
    empty_state("No users found", "Nobody matches this search." if query else "Nobody has signed up yet.")
    st.stop()

st.caption(f"{len(users)} user{'s' if len(users) != 1 else ''} shown, newest first")
for u in users:
    with st.container(border=True):
        info, role_col, state_col = st.columns([3, 1, 1])
        info.text(f"{u.display_name} — {u.email}")
        info.caption(f"Joined {u.created_at:%d %b %Y} · {'disabled' if u.disabled else 'active'}")
        if u.id == admin.id:
            # Plain text rather than dead controls: a disabled widget's faded label fails contrast, and its
            # help icon cannot be reached by keyboard.
            role_col.caption("Role")
            role_col.text("Admin (you)")
            state_col.caption("You cannot change your own role or disable yourself.")
            continue
        new_role = role_col.selectbox("Role", ["creator", "admin"], index=1 if u.is_admin else 0,
                                      key=f"role_{u.id}")
        if new_role != u.role:
            studio.accounts.change_role(admin, u.id, new_role)
            st.rerun()
        label = "Enable" if u.disabled else "Disable"
        if state_col.button(label, key=f"toggle_{u.id}", width="stretch"):
            try:
                studio.accounts.set_disabled(admin, u.id, not u.disabled)
            except AccountError as exc:
                st.error(str(exc))
            else:
                st.rerun()

pager("users", page.next_cursor)
