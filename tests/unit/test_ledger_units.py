"""The ledger's pure parts: request identity, months, amount and key checks, messages (no database)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from studio_core.services.ledger import (
    MAX_AMOUNT,
    Balance,
    HistoryPage,
    IdempotencyConflict,
    InsufficientCredits,
    InvalidRequest,
    _check_amount,
    _check_key,
    _scoped,
    month_bounds,
    month_of,
    request_hash,
)


def test_request_hash_is_the_request_identity():
    base = request_hash(1, 4, "image:9", {"prompt": "a cat", "seed": 3})
    assert base == request_hash(1, 4, "image:9", {"seed": 3, "prompt": "a cat"})  # key order is irrelevant
    different = [request_hash(2, 4, "image:9", {"prompt": "a cat", "seed": 3}),
                 request_hash(1, 5, "image:9", {"prompt": "a cat", "seed": 3}),
                 request_hash(1, 4, "image:8", {"prompt": "a cat", "seed": 3}),
                 request_hash(1, 4, "image:9", {"prompt": "a dog", "seed": 3}),
                 request_hash(1, 4, "image:9", None)]
    assert base not in different and len(set(different)) == len(different)
    assert len(base) == 64


def test_months_are_utc():
    assert month_of(datetime(2025, 3, 31, 23, 30, tzinfo=UTC)) == "2025-03"
    assert month_of(datetime(2025, 4, 1, 1, 0, tzinfo=timezone(timedelta(hours=2)))) == "2025-03"
    assert month_bounds("2024-02") == (datetime(2024, 2, 1, tzinfo=UTC), datetime(2024, 3, 1, tzinfo=UTC))
    assert month_bounds("2025-12")[1] == datetime(2026, 1, 1, tzinfo=UTC)
    for bad in ("2025-13", "25-01", "", None):
        with pytest.raises(InvalidRequest):
            month_bounds(bad)


@pytest.mark.parametrize("amount,signed,ok", [
    (1, False, True), (MAX_AMOUNT, False, True), (0, False, False), (-1, False, False), (-1, True, True),
    (0, True, False), (MAX_AMOUNT + 1, False, False), (-MAX_AMOUNT - 1, True, False), (True, False, False),
    (2.0, False, False), ("2", False, False), (None, False, False)])
def test_amount_checks(amount, signed, ok):
    if ok:
        assert _check_amount(amount, signed=signed) == amount
    else:
        with pytest.raises(InvalidRequest):
            _check_amount(amount, signed=signed)


def test_key_checks():
    assert _check_key("gen:abc") == "gen:abc"
    assert _check_key("post:1") == "post:1"  # the ledger may use its own namespaces
    for minted in ("post:1", "allowance:2:2025-01", "allowance_expiry:2:2025-01"):
        with pytest.raises(InvalidRequest, match="minted by the ledger"):
            _check_key(minted, allow_system=False)
    for bad in ("", " ", None, 5, "k" * 121):
        with pytest.raises(InvalidRequest):
            _check_key(bad)


def test_messages_say_what_is_missing():
    err = InsufficientCredits(needed=4, available=1)
    assert (err.missing, str(err)) == (3, "Not enough credits: this needs 4, 1 is available (3 missing).")
    assert InsufficientCredits(needed=2, available=-5).available == 0  # never reports a negative balance
    assert "gen:1" in str(IdempotencyConflict("gen:1", "hold #3 of 2 credits"))


def test_invariant_queries_scope_to_one_account():
    sql = "FROM a WHERE 1 = 1 {user} AND x {user:h}"
    assert _scoped(sql, False) == "FROM a WHERE 1 = 1  AND x "
    assert _scoped(sql, True) == "FROM a WHERE 1 = 1 AND user_id = :uid AND x AND h.user_id = :uid"


def test_balance_and_page_arithmetic():
    bal = Balance(user_id=1, allowance=30, paid=20, reserved_allowance=4, reserved_paid=1, month="2025-03",
                  allowance_granted_this_month=30, used_this_month=2, reset_date=date(2025, 4, 1),
                  allowance_month="2025-03")
    assert (bal.reserved, bal.allowance_available, bal.paid_available, bal.available) == (5, 26, 19, 45)
    assert HistoryPage(items=[], total=0, page=1, page_size=20).pages == 1
    assert HistoryPage(items=[], total=41, page=1, page_size=20).pages == 3
