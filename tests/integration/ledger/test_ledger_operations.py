"""Every ledger operation, its idempotency, its refusals, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import func, select, text

from studio_core.models import CreditHold, CreditLedgerEntry, ModerationAction
from studio_core.services import ledger as ledger_module
from studio_core.services.ledger import (
    MAX_AMOUNT,
    BalanceLimit,
    EntryNotFound,
    HoldNotFound,
    HoldNotPending,
    IdempotencyConflict,
    InsufficientCredits,
    InvalidRequest,
    LedgerService,
    NotAllowed,
    RefundRefused,
    UnknownAccount,
)

from .conftest import Clock, assert_books_balance, make_user


@pytest.fixture
def user(database, ledger) -> int:
    """A user with this month's allowance (30) and 20 paid credits."""
    user_id = make_user(database)
    assert ledger.ensure_monthly_allowance(user_id) is True
    ledger.grant(user_id, "purchase", 20, f"purchase:setup-{user_id}")
    return user_id


def counts(database) -> tuple[int, int]:
    with database.read() as s:
        return (s.scalar(select(func.count()).select_from(CreditHold)),
                s.scalar(select(func.count()).select_from(CreditLedgerEntry)))


# -- reserve / post / void -----------------------------------------------------------------------------------
def test_reserve_spends_allowance_first_then_paid(ledger, user):
    first = ledger.reserve(user, 28, "gen:a")
    assert (first.amount_allowance, first.amount_paid, first.status) == (28, 0, "pending")
    split = ledger.reserve(user, 5, "gen:b")
    assert (split.amount_allowance, split.amount_paid) == (2, 3)
    paid_only = ledger.reserve(user, 4, "gen:c")
    assert (paid_only.amount_allowance, paid_only.amount_paid) == (0, 4)
    bal = ledger.balance(user)
    assert (bal.allowance, bal.paid, bal.reserved, bal.available) == (30, 20, 37, 13)


def test_post_charges_once_and_writes_one_entry_per_bucket(ledger, user, database):
    ledger.reserve(user, 28, "gen:a")
    hold = ledger.reserve(user, 5, "gen:b", reference="image:7")
    posted = ledger.post(hold.id)
    assert posted.status == "posted"
    assert ledger.post(hold.id) == posted  # posting again changes nothing
    entries = [e for e in ledger.history(user).items if e.hold_id == hold.id]
    assert sorted((e.bucket, e.amount, e.key, e.reference) for e in entries) == [
        ("allowance", -2, f"post:{hold.id}", "image:7"), ("paid", -3, f"post:{hold.id}:paid", "image:7")]
    bal = ledger.balance(user)
    assert (bal.allowance, bal.paid, bal.reserved) == (28, 17, 28)


def test_void_releases_without_charging_and_is_idempotent(ledger, user, database):
    hold = ledger.reserve(user, 6, "gen:a")
    assert ledger.void(hold.id).status == "voided"
    assert ledger.void(hold.id).status == "voided"
    assert ledger.balance(user).available == 50
    with pytest.raises(HoldNotPending, match="already voided"):
        ledger.post(hold.id)
    assert [e.kind for e in ledger.history(user).items].count("generation") == 0


def test_void_of_a_posted_hold_is_refused(ledger, user):
    hold = ledger.reserve(user, 3, "gen:a")
    ledger.post(hold.id)
    with pytest.raises(HoldNotPending, match="already posted"):
        ledger.void(hold.id)
    assert ledger.balance(user).available == 47


def test_unknown_hold(ledger):
    with pytest.raises(HoldNotFound):
        ledger.post(999)
    with pytest.raises(HoldNotFound):
        ledger.void(999)


def test_same_key_same_request_returns_the_original_hold(ledger, user, database):
    hold = ledger.reserve(user, 4, "gen:click", reference="r", request={"prompt": "a cat", "seed": 3})
    again = ledger.reserve(user, 4, "gen:click", reference="r", request={"seed": 3, "prompt": "a cat"})
    assert again == hold
    ledger.post(hold.id)
    assert ledger.reserve(user, 4, "gen:click", reference="r", request={"prompt": "a cat", "seed": 3}).status \
        == "posted"
    assert counts(database)[0] == 1
    assert ledger.balance(user).available == 46


def test_a_retry_after_the_money_ran_out_still_gets_its_hold(ledger, user):
    hold = ledger.reserve(user, 50, "gen:all")
    ledger.post(hold.id)
    assert ledger.reserve(user, 50, "gen:all").id == hold.id


@pytest.mark.parametrize("change", [dict(amount=5), dict(reference="other"), dict(request={"seed": 4})])
def test_same_key_different_request_is_a_conflict(ledger, user, database, change):
    ledger.reserve(user, 4, "gen:click", reference="r", request={"seed": 3})
    args = dict(amount=4, reference="r", request={"seed": 3}) | change
    with pytest.raises(IdempotencyConflict, match="gen:click.*different request"):
        ledger.reserve(user, args["amount"], "gen:click", reference=args["reference"], request=args["request"])
    assert counts(database)[0] == 1
    assert ledger.balance(user).reserved == 4


def test_a_key_of_another_account_is_a_conflict(ledger, user, database):
    other = make_user(database)
    ledger.grant(other, "purchase", 10, "purchase:other")
    ledger.reserve(user, 4, "gen:shared")
    with pytest.raises(IdempotencyConflict, match="another account"):
        ledger.reserve(other, 4, "gen:shared")
    assert ledger.balance(other).reserved == 0


def test_insufficient_credits_says_how_many_are_missing(ledger, user, database):
    ledger.reserve(user, 45, "gen:a")
    with pytest.raises(InsufficientCredits) as err:
        ledger.reserve(user, 8, "gen:b")
    assert (err.value.needed, err.value.available, err.value.missing) == (8, 5, 3)
    assert "needs 8" in str(err.value) and "3 missing" in str(err.value)
    assert counts(database)[0] == 1


@pytest.mark.parametrize("amount", [0, -1, 1.5, True, "3", MAX_AMOUNT + 1])
def test_bad_amounts_are_refused_without_writing(ledger, user, database, amount):
    before = counts(database)
    with pytest.raises(InvalidRequest):
        ledger.reserve(user, amount, "gen:bad")
    with pytest.raises(InvalidRequest):
        ledger.grant(user, "purchase", amount, "purchase:bad")
    assert counts(database) == before


@pytest.mark.parametrize("key", ["", "   ", "k" * 121, None])
def test_bad_keys_are_refused(ledger, user, key):
    with pytest.raises(InvalidRequest):
        ledger.reserve(user, 1, key)


def test_unknown_user_is_refused_without_writing(ledger, database):
    before = counts(database)
    with pytest.raises(UnknownAccount):
        ledger.reserve(4242, 1, "gen:x")
    with pytest.raises(UnknownAccount):
        ledger.grant(4242, "purchase", 5, "purchase:x")
    with pytest.raises(UnknownAccount):
        ledger.balance(4242)
    with pytest.raises(UnknownAccount):
        ledger.ensure_monthly_allowance(4242)
    assert counts(database) == before


def test_huge_balances_are_refused_instead_of_overflowing(ledger, database, monkeypatch):
    user = make_user(database)
    for i in range(3):
        ledger.grant(user, "purchase", MAX_AMOUNT, f"purchase:big{i}")
    assert ledger.balance(user).paid == 3 * MAX_AMOUNT
    with pytest.raises(InvalidRequest):
        ledger.reserve(user, MAX_AMOUNT * 2, "gen:huge")
    monkeypatch.setattr(ledger_module, "MAX_BALANCE", 3 * MAX_AMOUNT + 10)
    ledger.grant(user, "purchase", 10, "purchase:fits")
    with pytest.raises(BalanceLimit):
        ledger.grant(user, "purchase", 1, "purchase:overflow")
    assert ledger.balance(user).paid == 3 * MAX_AMOUNT + 10


# -- expiry ----------------------------------------------------------------------------------------------------
def test_stale_holds_expire_and_cannot_be_posted(ledger, user, clock: Clock):
    hold = ledger.reserve(user, 5, "gen:slow", ttl_s=60)
    fresh = ledger.reserve(user, 2, "gen:fresh")
    clock.advance(seconds=61)
    assert ledger.expire_stale_holds() == 1
    assert ledger.expire_stale_holds() == 0
    assert ledger.get_hold(hold.id).status == "expired"
    with pytest.raises(HoldNotPending, match="expired"):
        ledger.post(hold.id)
    assert ledger.void(hold.id).status == "expired"
    assert ledger.post(fresh.id).status == "posted"
    assert ledger.balance(user).available == 48


def test_posting_after_the_deadline_expires_instead_of_charging(ledger, user, clock: Clock):
    hold = ledger.reserve(user, 5, "gen:late", ttl_s=60)
    clock.advance(seconds=60)
    with pytest.raises(HoldNotPending, match="expired"):
        ledger.post(hold.id)
    assert ledger.get_hold(hold.id).status == "expired"
    assert ledger.balance(user).available == 50


# -- grants, adjustments, refunds ---------------------------------------------------------------------------
def test_grant_is_idempotent_and_conflicts_on_a_different_grant(ledger, user, database):
    entry = ledger.grant(user, "referral_bonus", 20, "referral:99")
    assert ledger.grant(user, "referral_bonus", 20, "referral:99") == entry
    with pytest.raises(IdempotencyConflict):
        ledger.grant(user, "referral_bonus", 25, "referral:99")
    with pytest.raises(IdempotencyConflict):
        ledger.grant(user, "signup_bonus", 20, "referral:99")
    assert ledger.balance(user).paid == 40


@pytest.mark.parametrize("kind,bucket", [("purchase", "allowance"), ("allowance_grant", "paid"),
                                         ("generation", None), ("refund", None), ("bogus", None)])
def test_grant_refuses_wrong_kinds_and_buckets(ledger, user, kind, bucket):
    with pytest.raises(InvalidRequest):
        ledger.grant(user, kind, 5, "k:1", bucket=bucket)


@pytest.mark.parametrize("key", ["post:1", "allowance:1:2025-03", "allowance_expiry:1:2025-03"])
def test_grant_refuses_keys_the_ledger_mints(ledger, user, key):
    with pytest.raises(InvalidRequest, match="minted by the ledger"):
        ledger.grant(user, "purchase", 5, key)


def test_admin_adjustment_needs_an_admin_and_a_reason_and_is_audited(ledger, user, database):
    admin = make_user(database, role="admin")
    with pytest.raises(InvalidRequest, match="reason"):
        ledger.grant(user, "admin_adjustment", 5, "adj:1", actor=admin)
    with pytest.raises(InvalidRequest, match="acting admin"):
        ledger.grant(user, "admin_adjustment", 5, "adj:1", memo="goodwill")
    with pytest.raises(NotAllowed):
        ledger.grant(user, "admin_adjustment", 5, "adj:1", memo="goodwill", actor=user)
    plus = ledger.grant(user, "admin_adjustment", 5, "adj:1", memo="goodwill", actor=admin)
    minus = ledger.grant(user, "admin_adjustment", -3, "adj:2", bucket="allowance", memo="abuse", actor=admin)
    assert (plus.bucket, plus.amount, minus.bucket, minus.amount) == ("paid", 5, "allowance", -3)
    with pytest.raises(InsufficientCredits):
        ledger.grant(user, "admin_adjustment", -26, "adj:3", memo="too much", actor=admin)
    with database.read() as s:
        audit = s.scalars(select(ModerationAction).order_by(ModerationAction.id)).all()
    assert [(a.action, a.actor_id, a.target_user_id) for a in audit] == [("credit_adjustment", admin, user)] * 2
    assert "goodwill" in audit[0].note and "-3" in audit[1].note
    assert ledger.balance(user).available == 52


def test_a_negative_adjustment_cannot_take_reserved_credits(ledger, user, database):
    admin = make_user(database, role="admin")
    ledger.reserve(user, 18, "gen:a", ttl_s=60)
    ledger.reserve(user, 10, "gen:b")  # allowance free: 2
    with pytest.raises(InsufficientCredits, match="2 are available"):
        ledger.grant(user, "admin_adjustment", -3, "adj:x", bucket="allowance", memo="x", actor=admin)


def test_refund_gives_a_charge_back_once(ledger, user):
    ledger.reserve(user, 28, "gen:a")
    hold = ledger.reserve(user, 5, "gen:b")
    ledger.post(hold.id)
    legs = {e.bucket: e for e in ledger.history(user).items if e.hold_id == hold.id}
    refund = ledger.refund(legs["paid"].id, "refund:b", "image was blank")
    assert (refund.kind, refund.bucket, refund.amount, refund.refund_of_id) == ("refund", "paid", 3,
                                                                               legs["paid"].id)
    assert ledger.refund(legs["paid"].id, "refund:b", "image was blank") == refund
    with pytest.raises(RefundRefused, match="already refunded"):
        ledger.refund(legs["paid"].id, "refund:b2", "again")
    with pytest.raises(IdempotencyConflict):
        ledger.refund(legs["allowance"].id, "refund:b", "reused key")
    assert ledger.balance(user).paid == 20


def test_refund_refuses_what_is_not_a_charge(ledger, user):
    grant = ledger.history(user, kinds=["purchase"]).items[0]
    with pytest.raises(RefundRefused):
        ledger.refund(grant.id, "refund:g", "nope")
    with pytest.raises(EntryNotFound):
        ledger.refund(12345, "refund:none", "nope")
    with pytest.raises(InvalidRequest, match="reason"):
        ledger.refund(grant.id, "refund:g", "  ")


# -- the monthly allowance ----------------------------------------------------------------------------------
def test_first_activity_in_a_month_expires_the_old_allowance_and_grants_the_new(ledger, user, clock: Clock):
    ledger.post(ledger.reserve(user, 12, "gen:march").id)
    clock.now = datetime(2025, 4, 2, 9, tzinfo=UTC)
    assert ledger.balance(user).allowance == 18  # nothing happens until the account is active again
    hold = ledger.reserve(user, 3, "gen:april")
    assert hold.amount_allowance == 3
    april = ledger.history(user, start=datetime(2025, 4, 1, tzinfo=UTC)).items
    assert [(e.kind, e.amount, e.key) for e in reversed(april)] == [
        ("allowance_expiry", -18, f"allowance_expiry:{user}:2025-04"),
        ("allowance_grant", 30, f"allowance:{user}:2025-04")]
    assert ledger.ensure_monthly_allowance(user) is False
    bal = ledger.balance(user)
    assert (bal.allowance, bal.paid, bal.allowance_granted_this_month, bal.reset_date) == \
        (30, 20, 30, date(2025, 5, 1))


def test_a_failed_reserve_does_not_renew_the_month(ledger, user, clock: Clock):
    clock.now = datetime(2025, 4, 2, tzinfo=UTC)
    with pytest.raises(InsufficientCredits, match="50 are available"):
        ledger.reserve(user, 60, "gen:too-much")
    assert ledger.balance(user).allowance_month == "2025-03"
    assert ledger.ensure_monthly_allowance(user) is True


def test_allowance_held_across_the_month_end_expires_when_released(ledger, user, clock: Clock):
    ledger.reserve(user, 10, "gen:straddle", ttl_s=40 * 86400)
    clock.now = datetime(2025, 3, 31, 23, 30, tzinfo=UTC)
    hold = ledger.reserve(user, 4, "gen:late-march", ttl_s=7200)
    clock.now = datetime(2025, 4, 1, 0, 10, tzinfo=UTC)
    ledger.ensure_monthly_allowance(user)
    bal = ledger.balance(user)
    assert (bal.allowance, bal.reserved_allowance) == (30 + 14, 14)  # the held 14 wait for their holds
    ledger.void(hold.id)
    assert ledger.balance(user).allowance == 40  # March allowance released in April expires at once
    expiry = ledger.history(user, kinds=["allowance_expiry"]).items[0]
    assert (expiry.amount, expiry.key) == (-4, f"allowance_expiry:hold:{hold.id}")
    first = ledger.hold_by_key("gen:straddle")
    ledger.post(first.id)  # posting March allowance in April charges it normally
    assert ledger.balance(user).allowance == 30


def test_sweep_renews_active_accounts_and_expires_holds(ledger, user, database, clock: Clock):
    dormant = make_user(database)
    with database.write() as s:
        s.execute(text("UPDATE users SET created_at = :t WHERE id = :u"),
                  {"t": datetime(2024, 1, 1), "u": dormant})
    ledger.reserve(user, 2, "gen:stale", ttl_s=60)
    clock.now = datetime(2025, 4, 3, tzinfo=UTC)
    report = ledger.sweep()
    assert (report.expired_holds, report.allowances_renewed) == (1, 1)
    assert ledger.balance(user).allowance_month == "2025-04"
    assert ledger.balance(dormant).allowance_month is None
    assert ledger.sweep() == type(report)(expired_holds=0, allowances_renewed=0)


def test_monthly_allowance_of_zero_still_expires(database, settings, clock):
    ledger = LedgerService(database, settings.model_copy(update={"monthly_allowance": 0}), clock=clock)
    user = make_user(database)
    admin = make_user(database, role="admin")
    assert ledger.ensure_monthly_allowance(user) is True
    ledger.grant(user, "admin_adjustment", 7, "adj:a", bucket="allowance", memo="x", actor=admin)
    clock.now = datetime(2025, 4, 1, tzinfo=UTC)
    assert ledger.ensure_monthly_allowance(user) is True
    assert ledger.balance(user).allowance == 0
    assert_books_balance(ledger)


# -- reading ---------------------------------------------------------------------------------------------------
def test_balance_reports_this_months_use(ledger, user, clock: Clock):
    a = ledger.reserve(user, 7, "gen:a")
    ledger.post(a.id)
    ledger.post(ledger.reserve(user, 4, "gen:b").id)
    ledger.reserve(user, 2, "gen:pending")
    charge = ledger.history(user, kinds=["generation"]).items[-1]
    ledger.refund(charge.id, "refund:a", "glitch")
    bal = ledger.balance(user)
    assert (bal.used_this_month, bal.reserved, bal.available, bal.month) == (4, 2, 44, "2025-03")


def test_history_pages_filters_and_running_balance(ledger, user, clock: Clock):
    for i in range(5):
        clock.advance(minutes=1)
        ledger.post(ledger.reserve(user, 1 + i, f"gen:{i}").id)
    page = ledger.history(user, page=1, page_size=3)
    assert page.total == 7 and page.pages == 3 and len(page.items) == 3
    assert [e.amount for e in page.items] == [-5, -4, -3]
    assert [e.balance_after for e in page.items] == [35, 40, 44]
    last = ledger.history(user, page=3, page_size=3)
    assert [e.kind for e in last.items] == ["allowance_grant"]
    only = ledger.history(user, kinds=["purchase", "allowance_grant"])
    assert only.total == 2 and {e.kind for e in only.items} == {"purchase", "allowance_grant"}
    window = ledger.history(user, start=at_minute(2), end=at_minute(4))
    assert [e.amount for e in window.items] == [-3, -2]
    with pytest.raises(InvalidRequest):
        ledger.history(user, kinds=["nope"])
    with pytest.raises(InvalidRequest):
        ledger.history(user, page=0)


def test_every_history_page_shows_the_balance_right_after_each_entry(ledger, user, database, clock: Clock):
    """Whatever the filters and the page: an entry's balance_after is the sum of the account's entries (filtered
    out or not, other pages or not) up to and including it."""
    other = make_user(database)
    ledger.ensure_monthly_allowance(other)
    for i in range(14):
        clock.advance(minutes=1)
        hold = ledger.reserve(user, 1 + i % 4, f"gen:{i}")
        if i % 5 == 4:
            ledger.void(hold.id)
        else:
            ledger.post(hold.id)
            if i % 3 == 0:
                charge = ledger.history(user, kinds=["generation"], page_size=1).items[0]
                ledger.refund(charge.id, f"refund:{i}", "glitch")
        ledger.post(ledger.reserve(other, 1, f"other:{i}").id)  # another account's entries in between
    with database.read() as s:
        amounts = s.execute(select(CreditLedgerEntry.id, CreditLedgerEntry.amount)
                            .where(CreditLedgerEntry.user_id == user).order_by(CreditLedgerEntry.id)).all()
    expected, running = {}, 0
    for entry_id, amount in amounts:
        running += amount
        expected[entry_id] = running
    for kinds, start in ((None, None), (["generation"], None), (["refund", "allowance_grant"], None),
                         (None, at_minute(5))):
        seen = []
        for page in range(1, 8):
            items = ledger.history(user, kinds=kinds, start=start, page=page, page_size=3).items
            seen += items
            assert all(e.balance_after == expected[e.id] for e in items), (kinds, start, page)
        assert len(seen) == ledger.history(user, kinds=kinds, start=start).total > 0


def at_minute(minutes: int) -> datetime:
    return datetime(2025, 3, 14, 12, minutes, tzinfo=UTC)


def test_daily_spend_has_every_day_of_the_month(ledger, user, clock: Clock):
    ledger.post(ledger.reserve(user, 3, "gen:a").id)
    clock.advance(days=2)
    ledger.post(ledger.reserve(user, 4, "gen:b").id)
    ledger.post(ledger.reserve(user, 1, "gen:c").id)
    days = ledger.daily_spend(user, "2025-03")
    assert len(days) == 31 and days[0].day == date(2025, 3, 1)
    assert {d.day.day: d.spent for d in days if d.spent} == {14: 3, 16: 5}
    assert len(ledger.daily_spend(user, "2024-02")) == 29
    with pytest.raises(InvalidRequest):
        ledger.daily_spend(user, "March")


# -- the invariant check can fail ---------------------------------------------------------------------------
@pytest.mark.corrupts_ledger
@pytest.mark.parametrize("tamper,broken", [
    ("UPDATE credit_accounts SET paid_balance = paid_balance + 1 WHERE user_id = :u", "account_equals_entries"),
    ("UPDATE credit_accounts SET reserved_paid = 1, paid_balance = paid_balance WHERE user_id = :u",
     "reserved_equals_pending_holds"),
    ("UPDATE credit_holds SET status = 'voided' WHERE user_id = :u", "hold_entries_belong_to_posted_holds"),
    ("DELETE FROM credit_ledger WHERE kind = 'generation' AND user_id = :u", "posted_holds_debited_once"),
    ("UPDATE credit_ledger SET amount = 1 WHERE kind = 'generation' AND user_id = :u", "entry_signs_match_kinds"),
])
def test_check_invariants_reports_a_broken_book(ledger, user, database, tamper, broken):
    ledger.post(ledger.reserve(user, 3, "gen:a").id)
    with database.write() as s:
        s.execute(text(tamper), {"u": user})
    results = {name: (ok, detail) for name, ok, detail in ledger.check_invariants()}
    assert results[broken][0] is False, results
    assert "user" in results[broken][1] or "#" in results[broken][1]
    assert {name for name, ok, _ in ledger.check_invariants(user) if not ok} >= {broken}


def test_check_invariants_is_clean_and_complete(ledger, user):
    names = [name for name, _, _ in ledger.check_invariants()]
    assert names == ["account_equals_entries", "reserved_equals_pending_holds", "nothing_negative",
                     "entry_signs_match_kinds", "posted_holds_debited_once", "hold_entries_belong_to_posted_holds",
                     "generation_entries_have_holds", "keys_used_once", "refunds_match_charges",
                     "purchases_credited_once"]
    assert all(ok for _, ok, _ in ledger.check_invariants(user))


def test_results_are_plain_data(ledger, user):
    hold = ledger.reserve(user, 1, "gen:plain")
    for value in (hold, ledger.balance(user), ledger.history(user).items[0], ledger.daily_spend(user)[0]):
        assert type(value).__module__ == "studio_core.services.ledger"
    assert hold.expires_at - hold.created_at == timedelta(seconds=900)
