"""Admin · Users under AppTest: a page of accounts at a time, newest first, with the search over all of them."""

from __future__ import annotations

from studio_core.services.accounts import USERS_PAGE_SIZE
from tests.app import _community as c
from tests.app.conftest import new_app, run, sign_up, texts


def _rows(at) -> list[str]:
    return list(at.dataframe[0].value["Email"])


def _row(at, email: str) -> dict:
    table = at.dataframe[0].value
    return table[table["Email"] == email].iloc[0].to_dict()


def test_users_come_a_page_at_a_time(app_env):
    at = run(new_app())
    sign_up(at, "admin@example.com", "Admin")
    studio = c.backend()
    for i in range(USERS_PAGE_SIZE + 4):
        c.user(studio, f"user{i:02d}@example.com", f"User {i:02d}")
    at.switch_page("app_pages/admin_users.py")
    run(at)
    first = _rows(at)
    assert len(first) == USERS_PAGE_SIZE and f"{USERS_PAGE_SIZE} users shown, newest first" in texts(at)
    assert len(at.selectbox(key="users_pick").options) == USERS_PAGE_SIZE  # the page's users to choose from
    at.button(key="users_next").click()
    run(at)
    rest = _rows(at)
    assert len(rest) == 5 and not set(rest) & set(first) and rest[-1] == "admin@example.com"
    assert "Page 2" in texts(at)

    at.text_input(key="users_query").input("user03")
    run(at)
    assert _rows(at) == ["user03@example.com"]  # a search starts again from its first page


def test_admin_promotes_demotes_disables_and_enables_from_the_list(app_env):
    at = run(new_app())
    sign_up(at, "admin@example.com", "Admin")
    studio = c.backend()
    grace = c.user(studio, "grace@example.com", "Grace").id
    at.switch_page("app_pages/admin_users.py")
    run(at)
    assert _row(at, "grace@example.com") | {"Joined": ""} == {
        "Name": "Grace", "Email": "grace@example.com", "Role": "Creator", "Status": "Active", "Joined": ""}
    me = studio.accounts.by_email("admin@example.com").id
    at.selectbox(key="users_pick").set_value(me)
    run(at)
    assert not [b for b in at.button if b.key == f"role_{me}"]  # not yourself
    assert "You cannot change your own role or disable yourself." in texts(at)

    at.selectbox(key="users_pick").set_value(grace)
    run(at)
    assert at.button(key=f"role_{grace}").label == "Make admin"
    at.button(key=f"role_{grace}").click()
    run(at)
    assert studio.accounts.get(grace).is_admin and at.button(key=f"role_{grace}").label == "Make creator"
    assert _row(at, "grace@example.com")["Role"] == "Admin"
    at.button(key=f"toggle_{grace}").click()
    run(at)
    assert studio.accounts.get(grace).disabled and at.button(key=f"toggle_{grace}").label == "Enable"
    assert _row(at, "grace@example.com")["Status"] == "Disabled"
    assert "· disabled" in next(t.value for t in at.main.text if "grace@example.com" in t.value)
    at.button(key=f"role_{grace}").click()
    run(at)
    at.button(key=f"toggle_{grace}").click()
    run(at)
    grace_now = studio.accounts.get(grace)
    assert not grace_now.is_admin and not grace_now.disabled and not at.error
