"""Accounts on SQLite and PostgreSQL: sign-up rules, first admin, throttling, OIDC, admin actions."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from argon2 import PasswordHasher
from sqlalchemy import func, select

from studio_core.models import CreditAccount, User
from studio_core.services.accounts import AccessDenied, AccountError, AccountService

PASSWORD = "Correct-Horse-42"


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def accounts(database, settings, clock):
    # a cheap hash keeps the suite fast; production uses argon2's defaults
    return AccountService(database, settings, clock=clock, hasher=PasswordHasher(time_cost=1, memory_cost=64))


def test_first_account_is_admin_then_creators(accounts, database):
    first = accounts.sign_up("Ada@Example.com ", "Ada", PASSWORD)
    second = accounts.sign_up("grace@example.com", "Grace", PASSWORD)
    assert (first.role, second.role) == ("admin", "creator")
    assert first.email == "ada@example.com"
    assert first.referral_code != second.referral_code and len(first.referral_code) == 8
    with database.read() as s:
        assert s.scalar(select(func.count()).select_from(CreditAccount)) == 2


def test_concurrent_first_sign_ups_make_exactly_one_admin(accounts, database):
    barrier = threading.Barrier(6)
    errors = []

    def go(i):
        barrier.wait()
        try:
            accounts.sign_up(f"user{i}@example.com", f"U{i}", PASSWORD)
        except Exception as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=go, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert errors == []
    with database.read() as s:
        roles = list(s.scalars(select(User.role)))
    assert sorted(roles) == ["admin"] + ["creator"] * 5


@pytest.mark.parametrize("email,name,password,field", [
    ("", "Ada", PASSWORD, "email"),
    ("ada@", "Ada", PASSWORD, "email"),
    ("ada@example", "Ada", PASSWORD, "email"),
    ("ada@example.com", "  ", PASSWORD, "display_name"),
    ("ada@example.com", "Ada", "short1!", "password"),
    ("ada@example.com", "Ada", "alllowercaseletters", "password"),
    ("ada@example.com", "Ada", "password123", "password"),
])
def test_bad_sign_up_input_is_refused_and_nothing_written(accounts, database, email, name, password, field):
    with pytest.raises(AccountError) as err:
        accounts.sign_up(email, name, password)
    assert err.value.field == field
    with database.read() as s:
        assert s.scalar(select(func.count()).select_from(User)) == 0


def test_duplicate_email_any_case(accounts):
    accounts.sign_up("ada@example.com", "Ada", PASSWORD)
    with pytest.raises(AccountError, match="already exists"):
        accounts.sign_up("ADA@example.com", "Ada again", PASSWORD)


def test_referral_codes(accounts, database):
    ada = accounts.sign_up("ada@example.com", "Ada", PASSWORD)
    with pytest.raises(AccountError, match="not valid") as err:
        accounts.sign_up("bob@example.com", "Bob", PASSWORD, referral_code="NOTACODE")
    assert err.value.field == "referral_code"
    seen = []
    accounts.after_signup.append(lambda uid, ref: seen.append((uid, ref)))
    bob = accounts.sign_up("bob@example.com", "Bob", PASSWORD, referral_code=ada.referral_code.lower())
    assert seen == [(bob.id, ada.id)]
    with database.read() as s:
        assert s.get(User, bob.id).referred_by_id == ada.id


def test_sign_in_and_generic_failure_message(accounts):
    accounts.sign_up("ada@example.com", "Ada", PASSWORD)
    assert accounts.sign_in(" ADA@example.com", PASSWORD).email == "ada@example.com"
    for email in ("ada@example.com", "nobody@example.com"):
        with pytest.raises(AccountError, match="^Wrong email or password.$"):
            accounts.sign_in(email, "Wrong-Password-1")


def test_throttling_locks_after_repeated_failures_then_expires(accounts, settings, clock):
    accounts.sign_up("ada@example.com", "Ada", PASSWORD)
    for _ in range(settings.login_max_failures):
        with pytest.raises(AccountError, match="Wrong email"):
            accounts.sign_in("ada@example.com", "Wrong-Password-1")
    with pytest.raises(AccountError, match="Too many failed sign-ins"):
        accounts.sign_in("ada@example.com", PASSWORD)  # even the right password waits
    clock.now += timedelta(seconds=settings.login_lockout_s + 1)
    assert accounts.sign_in("ada@example.com", PASSWORD).email == "ada@example.com"


def test_disabled_account_cannot_sign_in(accounts):
    admin = accounts.sign_up("ada@example.com", "Ada", PASSWORD)
    bob = accounts.sign_up("bob@example.com", "Bob", PASSWORD)
    with pytest.raises(AccessDenied):
        accounts.set_disabled(bob, admin.id, True)
    with pytest.raises(AccountError, match="your own account"):
        accounts.set_disabled(admin, admin.id, True)
    accounts.set_disabled(admin, bob.id, True)
    with pytest.raises(AccountError, match="disabled"):
        accounts.sign_in("bob@example.com", PASSWORD)
    assert accounts.active_user(bob.id) is None


def test_users_come_a_page_at_a_time_newest_first(accounts, clock):
    admin = accounts.sign_up("admin@example.com", "Admin", PASSWORD)
    people = []
    for i in range(6):
        if i % 2:  # pairs share a sign-up time: the id orders them, and no page boundary loses one
            clock.now += timedelta(minutes=1)
        people.append(accounts.sign_up(f"user{i}@example.com", f"User {i}", PASSWORD))
    seen, cursor, pages = [], None, 0
    while True:
        page = accounts.users_page(admin, cursor=cursor, limit=3)
        seen += [u.email for u in page.items]
        pages += 1
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    newest_first = sorted([admin, *people], key=lambda u: (u.created_at, u.id), reverse=True)
    assert pages == 3 and seen == [u.email for u in newest_first]  # nobody twice, nobody missed
    assert seen[0] == "user5@example.com" and seen[-1] == "admin@example.com"
    assert [u.email for u in accounts.users_page(admin, query="USER5").items] == ["user5@example.com"]
    with pytest.raises(AccessDenied):
        accounts.users_page(people[0])


def test_admin_only_user_management(accounts):
    admin = accounts.sign_up("ada@example.com", "Ada", PASSWORD)
    bob = accounts.sign_up("bob@example.com", "Bob", PASSWORD)
    with pytest.raises(AccessDenied):
        accounts.users_page(bob)
    with pytest.raises(AccessDenied):
        accounts.change_role(bob, bob.id, "admin")
    assert [u.email for u in accounts.users_page(admin, query="BOB").items] == ["bob@example.com"]
    assert accounts.users_page(admin, query="%").items == []  # wildcards are literal
    accounts.change_role(admin, bob.id, "admin")
    assert accounts.get(bob.id).is_admin
    with pytest.raises(AccountError, match="own role"):
        accounts.change_role(admin, admin.id, "creator")


def test_oidc_matches_by_subject_then_verified_email(accounts):
    ada = accounts.sign_up("ada@example.com", "Ada", PASSWORD)
    with pytest.raises(AccountError, match="verified"):
        accounts.sign_in_oidc(subject="sub-1", email="ada@example.com", email_verified=False, name="Ada")
    linked = accounts.sign_in_oidc(subject="sub-1", email="ada@example.com", email_verified=True, name="Ada")
    assert linked.id == ada.id
    assert accounts.sign_in_oidc(subject="sub-1", email=None, email_verified=False, name=None).id == ada.id
    new = accounts.sign_in_oidc(subject="sub-2", email="new@example.com", email_verified=True, name="New")
    assert new.id != ada.id and new.role == "creator" and new.display_name == "New"


def test_create_admin_creates_or_promotes(accounts):
    accounts.sign_up("ada@example.com", "Ada", PASSWORD)
    bob = accounts.sign_up("bob@example.com", "Bob", PASSWORD)
    assert accounts.create_admin("bob@example.com", "Bob", "").id == bob.id
    assert accounts.get(bob.id).is_admin
    carol = accounts.create_admin("carol@example.com", "Carol", PASSWORD)
    assert carol.is_admin
