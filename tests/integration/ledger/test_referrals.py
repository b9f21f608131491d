"""Referrals through real sign-ups (AccountService and its after_signup hook), on SQLite and PostgreSQL."""

from __future__ import annotations

import threading

import pytest
from argon2 import PasswordHasher
from sqlalchemy import func, select, update

from studio_core.models import ReferralEvent, User
from studio_core.services.accounts import AccountError, AccountService
from studio_core.services.referrals import ReferralService

from .conftest import make_user

PASSWORD = "Correct-Horse-42"


@pytest.fixture
def accounts(database, settings) -> AccountService:
    # A cheap hasher: these tests are about credits, not password hashing.
    return AccountService(database, settings, hasher=PasswordHasher(time_cost=1, memory_cost=8, parallelism=1))


def wire(accounts: AccountService, ledger, referrals: ReferralService) -> None:
    accounts.after_signup.append(ledger.on_signup)
    accounts.after_signup.append(referrals.on_signup)


def events(database) -> int:
    with database.read() as s:
        return s.scalar(select(func.count()).select_from(ReferralEvent))


def test_a_referred_signup_pays_both_bonuses_once(database, settings, ledger, accounts):
    referrals = ReferralService(database, settings, ledger)
    wire(accounts, ledger, referrals)
    ada = accounts.sign_up("ada@example.com", "Ada", PASSWORD)
    bob = accounts.sign_up("bob@example.com", "Bob", PASSWORD, referral_code=ada.referral_code.lower())
    assert ledger.balance(bob.id).paid == settings.signup_bonus
    assert ledger.balance(bob.id).allowance == settings.monthly_allowance
    assert ledger.balance(ada.id).paid == settings.referral_bonus
    # the hooks may run again (a retried request): nothing more is paid
    assert referrals.on_signup(bob.id, ada.id).signup_bonus == settings.signup_bonus
    assert referrals.on_first_generation_succeeded(bob.id).status == "none"
    assert (ledger.balance(bob.id).paid, ledger.balance(ada.id).paid) == (10, 20)
    keys = {e.key for e in ledger.history(bob.id).items} | {e.key for e in ledger.history(ada.id).items}
    assert {f"signup:{bob.id}", f"referral:{bob.id}"} <= keys
    summary = referrals.summary(ada.id)
    assert (summary.code, summary.joined, summary.rewarded, summary.pending, summary.credits_earned) == \
        (ada.referral_code, 1, 1, 0, 20)
    assert summary.link == f"{settings.app_url}/?ref={ada.referral_code}"


def test_the_referrer_is_rewarded_at_the_first_successful_generation(database, settings, ledger, accounts):
    referrals = ReferralService(database, settings, ledger, reward_referrer_at_signup=False)
    wire(accounts, ledger, referrals)
    ada = accounts.sign_up("ada@example.com", "Ada", PASSWORD)
    bob = accounts.sign_up("bob@example.com", "Bob", PASSWORD, referral_code=ada.referral_code)
    assert ledger.balance(ada.id).paid == 0
    assert referrals.summary(ada.id).pending == 1
    assert referrals.on_first_generation_succeeded(bob.id).referrer_bonus == 20
    assert referrals.on_first_generation_succeeded(bob.id).status == "none"
    assert ledger.balance(ada.id).paid == 20
    assert referrals.summary(ada.id).rewarded == 1


def test_concurrent_first_successes_reward_once(database, settings, ledger):
    referrals = ReferralService(database, settings, ledger, reward_referrer_at_signup=False)
    ada = make_user(database)
    bob = make_user(database, referred_by=ada)
    referrals.on_signup(bob, ada)
    barrier = threading.Barrier(5)
    errors: list[BaseException] = []

    def succeed() -> None:
        barrier.wait()
        try:
            referrals.on_first_generation_succeeded(bob)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=succeed) for _ in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors
    assert ledger.balance(ada).paid == 20


def test_self_referral_is_refused(database, settings, ledger):
    referrals = ReferralService(database, settings, ledger)
    ada = make_user(database)
    outcome = referrals.on_signup(ada, ada)
    assert outcome.status == "refused" and "yourself" in outcome.detail
    assert events(database) == 0 and ledger.balance(ada).paid == 0


def test_an_unknown_code_is_explained_and_creates_nothing(database, settings, ledger, accounts):
    referrals = ReferralService(database, settings, ledger)
    wire(accounts, ledger, referrals)
    with pytest.raises(AccountError, match="referral code 'NOPE1234' is not valid") as err:
        accounts.sign_up("bob@example.com", "Bob", PASSWORD, referral_code="nope1234")
    assert err.value.field == "referral_code"
    assert accounts.count() == 0 and events(database) == 0
    assert referrals.referrer_for_code("nope1234") is None and referrals.referrer_for_code("  ") is None
    bob = make_user(database)
    assert referrals.on_signup(bob, 98765).status == "refused"
    assert events(database) == 0 and ledger.balance(bob).paid == 0


def test_a_user_referred_by_someone_else_cannot_be_claimed(database, settings, ledger):
    referrals = ReferralService(database, settings, ledger)
    ada, eve = make_user(database), make_user(database)
    bob = make_user(database, referred_by=ada)
    assert referrals.on_signup(bob, eve).status == "refused"
    assert referrals.on_signup(bob, ada).status == "rewarded"
    assert (ledger.balance(ada).paid, ledger.balance(eve).paid) == (20, 0)


def test_a_disabled_referrer_earns_nothing(database, settings, ledger):
    referrals = ReferralService(database, settings, ledger, reward_referrer_at_signup=False)
    ada = make_user(database)
    bob = make_user(database, referred_by=ada)
    code = referrals.summary(ada).code
    assert referrals.referrer_for_code(code.lower()) == ada
    referrals.on_signup(bob, ada)
    with database.write() as s:
        s.execute(update(User).where(User.id == ada).values(disabled=True))
    assert referrals.on_first_generation_succeeded(bob).status == "refused"
    assert ledger.balance(ada).paid == 0 and ledger.balance(bob).paid == 10
    assert referrals.referrer_for_code(code) is None


def test_zero_bonuses_book_nothing(database, settings, ledger):
    referrals = ReferralService(database, settings.model_copy(update={"signup_bonus": 0, "referral_bonus": 0}),
                                ledger)
    ada = make_user(database)
    bob = make_user(database, referred_by=ada)
    assert referrals.on_signup(bob, ada).status == "rewarded"
    assert ledger.history(ada).total == 0 and ledger.history(bob).total == 0
