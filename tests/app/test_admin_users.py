"""Admin · Users under AppTest: a page of accounts at a time, newest first, with the search over all of them."""

from __future__ import annotations

from studio_core.services.accounts import USERS_PAGE_SIZE
from tests.app import _community as c
from tests.app.conftest import new_app, run, sign_up, texts


def _rows(at) -> list[str]:
    return [t.value.split(" — ")[1] for t in at.main.text if " — " in t.value]


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
    assert len([s for s in at.selectbox if s.key.startswith("role_")]) == USERS_PAGE_SIZE  # one page's controls
    at.button(key="users_next").click()
    run(at)
    rest = _rows(at)
    assert len(rest) == 5 and not set(rest) & set(first) and rest[-1] == "admin@example.com"
    assert "Page 2" in texts(at)

    at.text_input(key="users_query").input("user03")
    run(at)
    assert _rows(at) == ["user03@example.com"]  # a search starts again from its first page
