"""Admin · Users: everyone with an account, a page at a time in a table; promote, demote, disable."""

import streamlit as st

from studio_core.services.accounts import AccessDenied, AccountError
from studio_core.ui.cards import load_page, pager
from studio_core.ui.session import current_user, get_studio, require_admin
from studio_core.ui.widgets import chooser, empty_state, table

admin = require_admin()
studio = get_studio()

st.title("Users")
query = st.text_input("Search by email or name", key="users_query", placeholder="ada@example.com")
# A page at a time: the search finds anyone on the others.
page = load_page("users", lambda cursor: studio.accounts.users_page(admin, query=query, cursor=cursor), query)
users = page.items
if not users:
    empty_state("No users found", "Nobody matches this search." if query else "Nobody has signed up yet.")
    st.stop()

st.caption(f"{len(users)} user{'s' if len(users) != 1 else ''} shown, newest first")


def act(change, *args) -> None:
    actor = current_user()  # read again: the click comes a run later, and roles may have changed meanwhile
    try:
        if actor is None:
            raise AccessDenied("Please sign in again.")
        change(actor, *args)
    except (AccountError, AccessDenied) as exc:
        st.session_state.users_error = str(exc)


if error := st.session_state.pop("users_error", None):
    st.error(error, icon=":material/error:")
# The page's users in one table, and the one to change chosen from a list: a row of buttons per user cost every
# run of this page five elements a user. (A role menu per row would cost far more: Streamlit's input widgets
# each go through the whole session state on every run.)
table([{"Name": u.display_name, "Email": u.email, "Role": "Admin" if u.is_admin else "Creator",
        "Status": "Disabled" if u.disabled else "Active", "Joined": u.created_at.date()} for u in users],
      ["Name", "Email", "Role", "Status", "Joined"], hide_index=True, width="stretch", key="users_table",
      column_config={"Joined": st.column_config.DateColumn(format="DD MMM YYYY")})  # a date sorts as one
u = chooser("User to change", {u.id: u for u in users}, "users_pick", lambda u: f"{u.display_name} — {u.email}")
with st.container(border=True, horizontal=True, vertical_alignment="center", gap="small"):
    st.text(f"{u.display_name} — {u.email}\n{'Admin' if u.is_admin else 'Creator'} · joined "
            f"{u.created_at:%d %b %Y} · {'disabled' if u.disabled else 'active'}", width="stretch")
    if u.id == admin.id:
        # Plain text rather than dead controls: a disabled widget's faded label fails contrast, and its help
        # icon cannot be reached by keyboard.
        st.caption("You cannot change your own role or disable yourself.", width=220)
    else:
        st.button("Make creator" if u.is_admin else "Make admin", key=f"role_{u.id}",
                  icon=":material/person:" if u.is_admin else ":material/shield_person:",
                  on_click=act, args=(studio.accounts.change_role, u.id, "creator" if u.is_admin else "admin"))
        st.button("Enable" if u.disabled else "Disable", key=f"toggle_{u.id}",
                  icon=":material/check_circle:" if u.disabled else ":material/block:",
                  on_click=act, args=(studio.accounts.set_disabled, u.id, not u.disabled))

pager("users", page.next_cursor)
