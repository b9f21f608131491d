"""The credit ledger: two-phase holds (reserve -> post | void | expire), grants, refunds, the monthly allowance,
and the invariants that prove the books balance. The contract is written down in docs/credit-ledger.md.

Shape of the data:

* ``credit_ledger`` is append-only: signed entries, one bucket each, every one with a unique idempotency key.
* ``credit_accounts`` is a projection: ``<bucket>_balance`` equals the sum of that bucket's entries and
  ``reserved_<bucket>`` equals the sum of the pending holds' share of that bucket. Every statement that moves
  money updates the projection and writes the entry (or the hold) in the same transaction.
* ``credit_holds`` are reservations. A pending hold is money set aside but not yet spent; posting it writes the
  debit entries, voiding or expiring it only releases the reservation.

Concurrency: every write runs in ``Database.write()`` (``BEGIN IMMEDIATE`` on SQLite, so one writer at a time;
READ COMMITTED on PostgreSQL). Admission is a conditional UPDATE, so two requests can never both spend the same
credit. On PostgreSQL all transactions take row locks in one order -- the hold first (reserve inserts its own,
post/void/expire update theirs), then the account, then plain inserts -- so they cannot deadlock one another
(the concurrency tests hammer exactly this).
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, NamedTuple

from sqlalchemy import (
    Connection,
    Integer,
    Row,
    String,
    and_,
    bindparam,
    case,
    cast,
    exists,
    false,
    func,
    insert,
    literal,
    literal_column,
    null,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from studio_core.config import Settings
from studio_core.db import Database, RawTransaction
from studio_core.models import (
    LEDGER_KINDS,
    CreditAccount,
    CreditHold,
    CreditLedgerEntry,
    ModerationAction,
    User,
    UTCDateTime,
    utcnow,
)

# A single operation may move at most this many credits, and no balance may grow past MAX_BALANCE: both stay
# far inside the 32-bit INTEGER columns, so an absurd request is refused with a message instead of overflowing.
MAX_AMOUNT = 1_000_000
MAX_BALANCE = 1_000_000_000
MAX_KEY_LENGTH = 120  # credit_holds.idempotency_key is VARCHAR(120); entry keys derived from it add a suffix
MAX_REFERENCE_LENGTH = 200
# Keys the ledger mints for itself. A caller-supplied key in these namespaces could collide with (and so block)
# a later system entry, e.g. grant(key="post:7") would make posting hold 7 fail.
SYSTEM_KEY_PREFIXES = ("post:", "allowance:", "allowance_expiry:")
# Bounds the admission loop; only a PostgreSQL writer racing on the same account between our statements can
# make an attempt miss, and each miss means someone else's write succeeded.
MAX_ADMISSION_ATTEMPTS = 16

ALLOWANCE, PAID = "allowance", "paid"
BUCKETS = (ALLOWANCE, PAID)
# Kinds that grant() may book, with the bucket each must use (None: the caller picks).
GRANT_KINDS: dict[str, str | None] = {
    "allowance_grant": ALLOWANCE,
    "signup_bonus": PAID,
    "referral_bonus": PAID,
    "purchase": PAID,
    "admin_adjustment": None,
}
CREDIT_KINDS = ("allowance_grant", "purchase", "referral_bonus", "signup_bonus", "refund")
DEBIT_KINDS = ("allowance_expiry", "generation")
SPEND_KINDS = ("generation", "refund")

Writer = Connection | RawTransaction  # the ledger's statements run on either (see Database.run_raw)
_acct = CreditAccount.__table__
_holds = CreditHold.__table__
_entries = CreditLedgerEntry.__table__
_users = User.__table__


# -- errors --------------------------------------------------------------------------------------------------
class LedgerError(Exception):
    """A ledger operation was refused; ``str(err)`` is written for the person who asked."""


class InvalidRequest(LedgerError, ValueError):
    """Bad input (amount, key, kind, bucket, ...); nothing was written."""


class UnknownAccount(LedgerError, LookupError):
    def __init__(self, user_id: int) -> None:
        super().__init__(f"There is no credit account for user {user_id}.")
        self.user_id = user_id


class InsufficientCredits(LedgerError):
    def __init__(self, needed: int, available: int) -> None:
        self.needed = needed
        self.available = max(available, 0)
        self.missing = needed - self.available
        super().__init__(f"Not enough credits: this needs {needed}, {self.available} "
                         f"{'is' if self.available == 1 else 'are'} available ({self.missing} missing).")


class IdempotencyConflict(LedgerError):
    def __init__(self, key: str, detail: str) -> None:
        super().__init__(f"The idempotency key {key!r} was already used for a different request ({detail}). "
                         "A new request needs a new key.")
        self.key = key


class HoldNotFound(LedgerError, LookupError):
    def __init__(self, hold_id: int) -> None:
        super().__init__(f"There is no credit hold #{hold_id}.")
        self.hold_id = hold_id


class HoldNotPending(LedgerError):
    """The hold was already resolved in a way that makes this operation impossible."""

    def __init__(self, hold: HoldView, wanted: str) -> None:
        super().__init__(f"Credit hold #{hold.id} cannot be {wanted}: it is already {hold.status}.")
        self.hold = hold


class EntryNotFound(LedgerError, LookupError):
    def __init__(self, entry_id: int) -> None:
        super().__init__(f"There is no ledger entry #{entry_id}.")
        self.entry_id = entry_id


class RefundRefused(LedgerError):
    pass


class BalanceLimit(LedgerError):
    pass


class NotAllowed(LedgerError, PermissionError):
    """The acting user may not do this (checked here again, not only by hiding a page)."""


# -- results (plain data, never ORM objects) -----------------------------------------------------------------
@dataclass(frozen=True)
class HoldView:
    id: int
    user_id: int
    amount_allowance: int
    amount_paid: int
    key: str
    status: str  # pending / posted / voided / expired
    reference: str
    created_at: datetime
    expires_at: datetime
    resolved_at: datetime | None

    @property
    def amount(self) -> int:
        return self.amount_allowance + self.amount_paid


@dataclass(frozen=True)
class EntryView:
    id: int
    user_id: int
    bucket: str
    amount: int  # signed: credits are positive, debits negative
    kind: str
    key: str
    hold_id: int | None
    refund_of_id: int | None
    reference: str
    memo: str
    actor_id: int | None
    created_at: datetime
    balance_after: int | None = None  # both buckets, after this entry (set by history())


@dataclass(frozen=True)
class Balance:
    user_id: int
    allowance: int  # allowance bucket, including its reserved part
    paid: int  # paid bucket (packs, bonuses), including its reserved part
    reserved_allowance: int
    reserved_paid: int
    month: str  # YYYY-MM the figures below refer to
    allowance_granted_this_month: int
    used_this_month: int  # generation charges this month, net of refunds booked this month
    reset_date: date  # when unused allowance expires and the next allowance is granted
    allowance_month: str | None  # the month of the allowance currently held (stale until the next activity)

    @property
    def reserved(self) -> int:
        return self.reserved_allowance + self.reserved_paid

    @property
    def allowance_available(self) -> int:
        return self.allowance - self.reserved_allowance

    @property
    def paid_available(self) -> int:
        return self.paid - self.reserved_paid

    @property
    def available(self) -> int:
        return self.allowance_available + self.paid_available


@dataclass(frozen=True)
class HistoryPage:
    items: list[EntryView]
    total: int
    page: int
    page_size: int

    @property
    def pages(self) -> int:
        return max(1, math.ceil(self.total / self.page_size))


@dataclass(frozen=True)
class DailySpend:
    day: date
    spent: int


@dataclass(frozen=True)
class SweepReport:
    expired_holds: int
    allowances_renewed: int


class InvariantResult(NamedTuple):
    name: str
    ok: bool
    detail: str


# -- small pure helpers --------------------------------------------------------------------------------------
def month_of(moment: datetime) -> str:
    moment = moment.astimezone(UTC)
    return f"{moment.year:04d}-{moment.month:02d}"


def month_bounds(month: str) -> tuple[datetime, datetime]:
    """[first instant, first instant of the next month) of a ``YYYY-MM`` month, in UTC."""
    try:
        start = datetime.strptime(month, "%Y-%m").replace(tzinfo=UTC)
    except (TypeError, ValueError):
        raise InvalidRequest(f"Month must look like 2025-07, not {month!r}.") from None
    nxt = (start + timedelta(days=32)).replace(day=1)
    return start, nxt


def request_hash(user_id: int, amount: int, reference: str, request: Mapping[str, Any] | None) -> str:
    """What makes two reserve calls "the same request": user, amount, reference and the caller's request."""
    payload = json.dumps({"user": user_id, "amount": amount, "reference": reference, "request": request},
                         sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(payload.encode()).hexdigest()


def _check_amount(amount: Any, *, signed: bool = False) -> int:
    if isinstance(amount, bool) or not isinstance(amount, int):
        raise InvalidRequest(f"Credit amounts are whole numbers, not {amount!r}.")
    if amount == 0 or (amount < 0 and not signed):
        raise InvalidRequest(f"The amount must be {'non-zero' if signed else 'positive'}, not {amount}.")
    if abs(amount) > MAX_AMOUNT:
        raise InvalidRequest(f"At most {MAX_AMOUNT:,} credits can move in one operation, not {amount:,}.")
    return amount


def _check_key(key: Any, *, allow_system: bool = True) -> str:
    if not isinstance(key, str) or not key.strip():
        raise InvalidRequest("An idempotency key is required.")
    if len(key) > MAX_KEY_LENGTH:
        raise InvalidRequest(f"Idempotency keys are at most {MAX_KEY_LENGTH} characters.")
    if not allow_system and key.startswith(SYSTEM_KEY_PREFIXES):
        raise InvalidRequest(f"Keys starting with {', '.join(SYSTEM_KEY_PREFIXES)} are minted by the ledger.")
    return key


def _check_reference(reference: Any) -> str:
    if not isinstance(reference, str) or len(reference) > MAX_REFERENCE_LENGTH:
        raise InvalidRequest(f"A reference is a string of at most {MAX_REFERENCE_LENGTH} characters.")
    return reference


def _hold_view(row: Row) -> HoldView:
    return HoldView(id=row.id, user_id=row.user_id, amount_allowance=row.amount_allowance,
                    amount_paid=row.amount_paid, key=row.idempotency_key, status=row.status,
                    reference=row.reference, created_at=row.created_at, expires_at=row.expires_at,
                    resolved_at=row.resolved_at)


def _entry_view(row: Row, balance_after: int | None = None) -> EntryView:
    return EntryView(id=row.id, user_id=row.user_id, bucket=row.bucket, amount=row.amount, kind=row.kind,
                     key=row.idempotency_key, hold_id=row.hold_id, refund_of_id=row.refund_of_id,
                     reference=row.reference, memo=row.memo, actor_id=row.actor_id, created_at=row.created_at,
                     balance_after=balance_after)


def _balance_cols(bucket: str):
    if bucket == ALLOWANCE:
        return _acct.c.allowance_balance, _acct.c.reserved_allowance
    return _acct.c.paid_balance, _acct.c.reserved_paid


_FREE_ALLOWANCE = _acct.c.allowance_balance - _acct.c.reserved_allowance
_FREE_PAID = _acct.c.paid_balance - _acct.c.reserved_paid


# -- the hot path's statements, built once: reserve and post run them thousands of times a minute, and building
# SQL expressions per call costs more Python time than the database spends executing them.
def _p(name: str, type_: Any = None) -> Any:
    return bindparam(name, type_=type_ or Integer())


_P_USER, _P_AMOUNT, _P_HOLD = _p("p_user"), _p("p_amount"), _p("p_hold")
_P_ALLOWANCE, _P_PAID = _p("p_allowance"), _p("p_paid")
_P_NOW, _P_MONTH, _P_KEY = _p("p_now", UTCDateTime()), _p("p_month", String()), _p("p_key", String())
_ALLOWANCE_PAYS = _FREE_ALLOWANCE > _P_AMOUNT
# The two common admissions in one conditional UPDATE: the allowance covers the amount with some to spare, or
# the allowance is used up and paid credits cover it. SET expressions see the row before the update, RETURNING
# the row after it, so "allowance still free afterwards" > 0 tells exactly which branch applied. The rest
# (allowance covers exactly or partly, stale allowance month, not enough credits) goes to LedgerService._admit.
_ADMIT_COMMON = (
    update(_acct)
    .where(_acct.c.user_id == _P_USER,
           _acct.c.allowance_month >= _P_MONTH,  # the allowance must be this month's (NULL never matches)
           _FREE_ALLOWANCE + _FREE_PAID >= _P_AMOUNT,
           or_(_ALLOWANCE_PAYS, and_(_FREE_ALLOWANCE == 0, _FREE_PAID >= _P_AMOUNT)))
    .values({_acct.c.reserved_allowance: _acct.c.reserved_allowance + case((_ALLOWANCE_PAYS, _P_AMOUNT), else_=0),
             _acct.c.reserved_paid: _acct.c.reserved_paid + case((_ALLOWANCE_PAYS, 0), else_=_P_AMOUNT),
             _acct.c.updated_at: _P_NOW})
    .returning(_FREE_ALLOWANCE.label("free_allowance_after")))
# Allowance first: the guessed share is min(free allowance, amount) of the account's last committed state.
_GUESS_ALLOWANCE = case((_FREE_ALLOWANCE >= _P_AMOUNT, _P_AMOUNT), (_FREE_ALLOWANCE > 0, _FREE_ALLOWANCE), else_=0)
_HOLD_VALUES = ["user_id", "amount_allowance", "amount_paid", "idempotency_key", "request_hash", "status",
                "reference", "created_at", "expires_at"]
_P_HASH, _P_REF, _P_EXPIRES = _p("p_hash", String()), _p("p_ref", String()), _p("p_expires", UTCDateTime())
_INSERT_HOLD = (
    insert(_holds)
    .from_select(_HOLD_VALUES, select(_acct.c.user_id, _GUESS_ALLOWANCE, _P_AMOUNT - _GUESS_ALLOWANCE, _P_KEY,
                                      _P_HASH, literal("pending"), _P_REF, _P_NOW, _P_EXPIRES)
                 .where(_acct.c.user_id == _P_USER))
    .returning(_holds.c.id, _holds.c.amount_allowance, _holds.c.amount_paid))
_SET_HOLD_SPLIT = (update(_holds).where(_holds.c.id == _P_HOLD)
                   .values({_holds.c.amount_allowance: _P_ALLOWANCE, _holds.c.amount_paid: _P_PAID}))
_HOLD_BY_KEY = select(_holds).where(_holds.c.idempotency_key == _P_KEY)
_ENTRY_BY_KEY = select(_entries).where(_entries.c.idempotency_key == _P_KEY)
_ENTRY_VALUES = ("user_id", "bucket", "amount", "kind", "idempotency_key", "hold_id", "refund_of_id", "reference",
                 "memo", "actor_id", "created_at")
# Explicit binds ("e_<column>": insert() reserves the bare column names) so the compiled INSERT names exactly
# these columns whatever runs it; the id comes from the database.
_INSERT_ENTRY = insert(_entries).values({c: bindparam(f"e_{c}", type_=_entries.c[c].type) for c in _ENTRY_VALUES})
_INSERT_ENTRY_RETURNING_ID = _INSERT_ENTRY.returning(_entries.c.id)
# balance(): the account, and this month's grant and spending
_ACCOUNT = select(_acct).where(_acct.c.user_id == bindparam("p_user"))
_MONTH_SUMS = (select(_entries.c.kind, func.sum(_entries.c.amount))
               .where(_entries.c.user_id == bindparam("p_user"), _entries.c.created_at >= bindparam("p_start"),
                      _entries.c.created_at < bindparam("p_end"),
                      _entries.c.kind.in_(("allowance_grant", *SPEND_KINDS)))
               .group_by(_entries.c.kind))


def _entry_params(**values: Any) -> dict[str, Any]:
    return {f"e_{c}": values[c] for c in _ENTRY_VALUES}


def _resolve_hold(status: str, *conditions: Any) -> Any:
    return (update(_holds).where(_holds.c.id == _P_HOLD, _holds.c.status == "pending", *conditions)
            .values(status=status, resolved_at=_P_NOW).returning(*_holds.c))


_POST_HOLD = _resolve_hold("posted", _holds.c.expires_at > _P_NOW)
_VOID_HOLD = _resolve_hold("voided")
_EXPIRE_HOLD = _resolve_hold("expired", _holds.c.expires_at <= _P_NOW)
_POST_ACCOUNT = update(_acct).where(_acct.c.user_id == _P_USER).values({
    _acct.c.allowance_balance: _acct.c.allowance_balance - _P_ALLOWANCE,
    _acct.c.reserved_allowance: _acct.c.reserved_allowance - _P_ALLOWANCE,
    _acct.c.paid_balance: _acct.c.paid_balance - _P_PAID,
    _acct.c.reserved_paid: _acct.c.reserved_paid - _P_PAID,
    _acct.c.updated_at: _P_NOW})
_ADMIT_READ = select(_acct.c.allowance_month, _FREE_ALLOWANCE.label("free_allowance"),
                     _FREE_PAID.label("free_paid")).where(_acct.c.user_id == _P_USER)
def _admit_split(allowance: Any, paid: Any) -> Any:
    """Admit exactly the split (allowance, paid): an allowance-only split needs that much free allowance, a split
    that also takes paid credits needs the allowance free to be exactly its share."""
    return (update(_acct)
            .where(_acct.c.user_id == _P_USER,
                   _acct.c.allowance_month >= _P_MONTH,
                   _FREE_ALLOWANCE >= allowance,
                   or_(paid == 0, _FREE_ALLOWANCE == allowance),
                   _FREE_PAID >= paid)
            .values({_acct.c.reserved_allowance: _acct.c.reserved_allowance + allowance,
                     _acct.c.reserved_paid: _acct.c.reserved_paid + paid,
                     _acct.c.updated_at: _P_NOW}))


_ADMIT_SPLIT = _admit_split(_P_ALLOWANCE, _P_PAID)  # the split chosen from _ADMIT_READ
_CLAIM_MONTH = (
    update(_acct)
    .where(_acct.c.user_id == _P_USER, or_(_acct.c.allowance_month.is_(None), _acct.c.allowance_month < _P_MONTH))
    .values({_acct.c.allowance_month: _P_MONTH, _acct.c.updated_at: _P_NOW})
    .returning(_acct.c.allowance_balance, _acct.c.reserved_allowance))
_LOCK_ACCOUNT = select(_acct.c.user_id).where(_acct.c.user_id == _P_USER).with_for_update(key_share=True)


def _move_balance(bucket: str, debit: bool) -> Any:
    # A debit may only take what is free (balance minus reserved); a credit may not pass MAX_BALANCE.
    balance, reserved = _balance_cols(bucket)
    guard = balance - reserved >= -_P_AMOUNT if debit else balance + _P_AMOUNT <= _p("p_max")
    return (update(_acct).where(_acct.c.user_id == _P_USER, guard)
            .values({balance: balance + _P_AMOUNT, _acct.c.updated_at: _P_NOW}))


_MOVE_BALANCE = {(bucket, debit): _move_balance(bucket, debit) for bucket in BUCKETS for debit in (False, True)}
_FREE_IN = {bucket: select(_balance_cols(bucket)[0] - _balance_cols(bucket)[1]).where(_acct.c.user_id == _P_USER)
            for bucket in BUCKETS}
_RELEASE_ACCOUNT = (update(_acct).where(_acct.c.user_id == _P_USER)
                    .values({_acct.c.reserved_allowance: _acct.c.reserved_allowance - _P_ALLOWANCE,
                             _acct.c.reserved_paid: _acct.c.reserved_paid - _P_PAID,
                             _acct.c.updated_at: _P_NOW})
                    .returning(_acct.c.allowance_month))



# -- PostgreSQL: the same steps as one statement each (data-modifying CTEs), each its own transaction, so the
# common reserve and every post is one round trip. SQLite has no DML in CTEs and no round trips to save; it
# runs the steps one by one (LedgerService._reserve_in / _post_pending).
def _fast_reserve_statement_pg() -> Any:
    """The common admissions of _ADMIT_COMMON and the hold they pay for, in one statement: no row when they do
    not apply (the allowance covers only part, a new month, too few credits, an unknown account) or when the key
    is already taken, and the caller goes the general way (_reserve_in).

    The account row is locked before the hold's key is claimed -- the opposite of _reserve_in's order -- which is
    safe because a key that already has a hold stops here before any lock (NOT EXISTS): the deadlock that order
    invites, a retried reserve waiting on a post of its own key's hold, needs that hold to be there already.
    Two reserves of one new key at once serialise on the account row; the second then fails on the unique key.
    """
    admitted = (
        _ADMIT_COMMON.where(~exists(select(_holds.c.id).where(_holds.c.idempotency_key == _P_KEY)))
        .returning(_acct.c.user_id).cte("admitted"))
    from_allowance = case((admitted.c.free_allowance_after > 0, _P_AMOUNT), else_=0)
    return (insert(_holds)
            .from_select(_HOLD_VALUES, select(admitted.c.user_id, from_allowance, _P_AMOUNT - from_allowance,
                                              _P_KEY, _P_HASH, literal("pending"), _P_REF, _P_NOW, _P_EXPIRES))
            .returning(_holds.c.id, _holds.c.amount_allowance, _holds.c.amount_paid))


def _reserve_statement_pg() -> Any:
    """_INSERT_HOLD, then the admission of exactly its guessed split (the hold row first: the same lock order
    as post/void/expire). "admitted" is false when the guess no longer holds; the caller then settles the split
    inside the same transaction."""
    hold = _INSERT_HOLD.cte("new_hold")
    admitted = (_admit_split(hold.c.amount_allowance, hold.c.amount_paid)
                .returning(_acct.c.user_id).cte("admitted"))
    return select(hold.c.id, hold.c.amount_allowance, hold.c.amount_paid,
                  exists(select(admitted.c.user_id)).label("admitted"))


def _post_statement_pg() -> Any:
    """_POST_HOLD, the account's debit and the debit entries (keys as in post()), returning the posted hold."""
    posted = _POST_HOLD.cte("posted")
    debited = (update(_acct).where(_acct.c.user_id == posted.c.user_id)
               .values({_acct.c.allowance_balance: _acct.c.allowance_balance - posted.c.amount_allowance,
                        _acct.c.reserved_allowance: _acct.c.reserved_allowance - posted.c.amount_allowance,
                        _acct.c.paid_balance: _acct.c.paid_balance - posted.c.amount_paid,
                        _acct.c.reserved_paid: _acct.c.reserved_paid - posted.c.amount_paid,
                        _acct.c.updated_at: _P_NOW})
               .cte("debited"))
    first_key = literal("post:") + cast(posted.c.id, String)

    def leg(order: int, bucket: str, part: Any, key: Any) -> Any:
        values = {"user_id": posted.c.user_id, "bucket": literal(bucket), "amount": -part,
                  "kind": literal("generation"), "idempotency_key": key, "hold_id": posted.c.id,
                  "refund_of_id": cast(null(), Integer), "reference": posted.c.reference, "memo": literal(""),
                  "actor_id": cast(null(), Integer),
                  "created_at": _P_NOW}
        return select(literal(order).label("leg"), *(values[c].label(c) for c in _ENTRY_VALUES)).where(part > 0)

    legs = leg(0, ALLOWANCE, posted.c.amount_allowance, first_key).union_all(
        leg(1, PAID, posted.c.amount_paid,
            case((posted.c.amount_allowance > 0, first_key + literal(f":{PAID}")), else_=first_key))).subquery()
    # one INSERT, legs in order: the allowance entry gets the lower id, as on SQLite
    entries = (insert(_entries).from_select(_ENTRY_VALUES, select(*(legs.c[c] for c in _ENTRY_VALUES))
                                            .order_by(legs.c.leg))
               .cte("entries"))
    return select(posted).add_cte(debited, entries)


_FAST_RESERVE_PG = _fast_reserve_statement_pg()
_RESERVE_PG = _reserve_statement_pg()
_POST_PG = _post_statement_pg()


class LedgerService:
    def __init__(self, db: Database, settings: Settings, clock: Callable[[], datetime] = utcnow) -> None:
        self.db = db
        self.settings = settings
        self.clock = clock

    # == holds ===============================================================================================
    def reserve(self, user_id: int, amount: int, key: str, reference: str = "",
                request: Mapping[str, Any] | None = None, *, ttl_s: int | None = None) -> HoldView:
        """Set ``amount`` credits aside under ``key`` (allowance first, then paid credits).

        Same key + same request returns the original hold, whatever its status now; same key + a different
        request (amount, reference, ``request`` mapping, or user) raises IdempotencyConflict.
        """
        amount = _check_amount(amount)
        key = _check_key(key)
        reference = _check_reference(reference)
        ttl = self.settings.hold_ttl_s if ttl_s is None else ttl_s
        if ttl <= 0:
            raise InvalidRequest("A hold needs a positive time to live.")
        digest = request_hash(user_id, amount, reference, request)
        now = self.clock()
        expires_at = now + timedelta(seconds=ttl)
        params = {"p_user": user_id, "p_amount": amount, "p_key": key, "p_hash": digest, "p_ref": reference,
                  "p_now": now, "p_expires": expires_at, "p_month": month_of(now)}
        try:
            fast = None if self.db.is_sqlite else self.db.run_raw(
                lambda conn: conn.execute(_FAST_RESERVE_PG, params).first(), one_statement=True)
            if fast is not None:
                hold_id, split = fast.id, (fast.amount_allowance, fast.amount_paid)
            else:
                hold_id, split = self.db.run_raw(lambda conn: self._reserve_in(conn, params))
        except IntegrityError:
            # The key is taken (a retry, a double click, or a twin that committed first); nothing was written.
            # The hold under that key is the answer -- even when the credits it spent leave too little now.
            existing = self._hold_row_by_key(key)
            if existing is None:
                raise
            return self._same_hold(existing, user_id, digest)
        return HoldView(id=hold_id, user_id=user_id, amount_allowance=split[0], amount_paid=split[1], key=key,
                        status="pending", reference=reference, created_at=now, expires_at=expires_at,
                        resolved_at=None)

    def _reserve_in(self, conn: Writer, params: dict[str, Any]) -> tuple[int, tuple[int, int]]:
        """reserve() the general way, in one transaction: (hold id, (from allowance, from paid)).

        The hold row goes in first: its unique key claims the request before any credit moves, so a retry or a
        double click stops here without touching the account, and the locks come in the same order as
        post/void/expire (hold, then account) -- on PostgreSQL the opposite order deadlocks against a post of the
        same key's hold. Its split is a guess from the account as last committed, settled below once admission
        has decided; nobody sees the row before commit.
        """
        user_id, amount, now = params["p_user"], params["p_amount"], params["p_now"]
        if self.db.is_sqlite:
            inserted = conn.execute(_INSERT_HOLD, params).first()
            if inserted is None:
                raise UnknownAccount(user_id)
            admitted = conn.execute(_ADMIT_COMMON, params).first()
            # Something stays free in the allowance only when the allowance paid (see _ADMIT_COMMON).
            split = None if admitted is None else (amount, 0) if admitted.free_allowance_after > 0 else (0, amount)
        else:
            inserted = conn.execute(_RESERVE_PG, params).first()
            if inserted is None:
                raise UnknownAccount(user_id)
            split = (inserted.amount_allowance, inserted.amount_paid) if inserted.admitted else None
        if split is None:
            split = self._admit(conn, user_id, amount, now)
        if split != (inserted.amount_allowance, inserted.amount_paid):
            conn.execute(_SET_HOLD_SPLIT, {"p_hold": inserted.id, "p_allowance": split[0], "p_paid": split[1]})
        return inserted.id, split

    @staticmethod
    def _same_hold(row: Row, user_id: int, digest: str) -> HoldView:
        if row.user_id != user_id:
            raise IdempotencyConflict(row.idempotency_key, "it belongs to another account")
        if row.request_hash != digest:
            raise IdempotencyConflict(row.idempotency_key,
                                      f"hold #{row.id} of {row.amount_allowance + row.amount_paid} credits")
        return _hold_view(row)

    def _admit(self, conn: Writer, user_id: int, amount: int, now: datetime) -> tuple[int, int]:
        """The admission cases _ADMIT_COMMON leaves out: a stale allowance month, an allowance that covers
        only part of the amount (or exactly all of it), and not enough credits. Returns (allowance, paid).

        Every attempt is again one conditional UPDATE whose WHERE clause both admits and pins the split
        ("exactly this much allowance is free"), so the split recorded on the hold is the one applied. The read
        in between only chooses the next attempt or says how much is missing; it never decides to spend.
        """
        month = month_of(now)
        for _ in range(MAX_ADMISSION_ATTEMPTS):
            row = conn.execute(_ADMIT_READ, {"p_user": user_id}).first()
            if row is None:
                raise UnknownAccount(user_id)
            if row.allowance_month is None or row.allowance_month < month:
                # First activity this month: expire last month's allowance, grant this month's, then retry.
                self._rollover(conn, user_id, month, now)
                continue
            if row.free_allowance + row.free_paid < amount:
                raise InsufficientCredits(amount, row.free_allowance + row.free_paid)
            from_allowance = min(max(row.free_allowance, 0), amount)
            from_paid = amount - from_allowance
            result = conn.execute(_ADMIT_SPLIT, {"p_user": user_id, "p_month": month, "p_now": now,
                                                 "p_allowance": from_allowance, "p_paid": from_paid})
            if result.rowcount == 1:
                return from_allowance, from_paid
        raise LedgerError("The account is too busy right now; please try again.")  # pragma: no cover

    def post(self, hold_id: int) -> HoldView:
        """Charge a pending hold: write its debit entries (key ``post:<hold>``; a hold split over both buckets
        gets a second entry ``post:<hold>:paid``). Posting a posted hold returns it unchanged. A hold past its
        expiry is expired instead and HoldNotPending is raised, so an expired reservation never charges."""
        now = self.clock()
        row = self._post_pending(hold_id, now)
        if row is not None:
            return _hold_view(row)
        hold = self._require_hold(hold_id)
        if hold.status == "posted":
            return hold
        if hold.status == "pending":  # pending but past its expiry
            self._expire_hold(hold_id, now)
            hold = self._require_hold(hold_id)
        raise HoldNotPending(hold, "charged")

    def _post_pending(self, hold_id: int, now: datetime) -> Row | None:
        """Post the hold if it is pending and unexpired; the posted hold's row, or None when it was not."""
        if not self.db.is_sqlite:
            return self.db.run_raw(lambda conn: conn.execute(_POST_PG, {"p_hold": hold_id, "p_now": now}).first(),
                                   one_statement=True)
        return self.db.run_raw(lambda conn: self._post_in(conn, hold_id, now))

    @staticmethod
    def _post_in(conn: Writer, hold_id: int, now: datetime) -> Row | None:
        row = conn.execute(_POST_HOLD, {"p_hold": hold_id, "p_now": now}).first()
        if row is not None:
            part_a, part_p = row.amount_allowance, row.amount_paid
            conn.execute(_POST_ACCOUNT, {"p_user": row.user_id, "p_allowance": part_a, "p_paid": part_p,
                                         "p_now": now})
            legs = [(bucket, part) for bucket, part in ((ALLOWANCE, part_a), (PAID, part_p)) if part]
            for i, (bucket, part) in enumerate(legs):
                conn.execute(_INSERT_ENTRY, _entry_params(
                    user_id=row.user_id, bucket=bucket, amount=-part, kind="generation",
                    idempotency_key=f"post:{hold_id}" if i == 0 else f"post:{hold_id}:{bucket}",
                    hold_id=hold_id, refund_of_id=None, reference=row.reference, memo="", actor_id=None,
                    created_at=now))
        return row

    def void(self, hold_id: int) -> HoldView:
        """Release a pending hold without charging (key ``void:<hold>``: the hold's own status change is the
        record, so voiding twice is harmless). Voiding an expired or voided hold returns it; voiding a posted
        hold raises HoldNotPending -- a charge is undone by refund(), never by void()."""
        now = self.clock()
        row = self.db.run_raw(lambda conn: self._resolve_in(conn, _VOID_HOLD, hold_id, now))
        if row is not None:
            return _hold_view(row)
        hold = self._require_hold(hold_id)
        if hold.status in ("voided", "expired"):
            return hold
        raise HoldNotPending(hold, "voided")

    def expire_stale_holds(self, now: datetime | None = None) -> int:
        """Expire every pending hold whose time is up (one short transaction per hold); return how many."""
        now = now or self.clock()
        expired = 0
        while True:
            with self.db.read() as s:
                # the literal (not a bound 'pending') lets both databases use the partial index
                ids = list(s.scalars(select(_holds.c.id)
                                     .where(_holds.c.status == literal_column("'pending'"),
                                            _holds.c.expires_at <= now)
                                     .order_by(_holds.c.expires_at, _holds.c.id).limit(500)))
            # Each id is either expired now or was resolved by someone else meanwhile: no id comes back twice.
            expired += sum(self._expire_hold(hold_id, now) for hold_id in ids)
            if len(ids) < 500:
                return expired

    def _expire_hold(self, hold_id: int, now: datetime) -> bool:
        return self.db.run_raw(lambda conn: self._resolve_in(conn, _EXPIRE_HOLD, hold_id, now)) is not None

    def _resolve_in(self, conn: Writer, statement: Any, hold_id: int, now: datetime) -> Row | None:
        """Void or expire the hold if it is pending (and, for expiry, due) and release its reservation."""
        row = conn.execute(statement, {"p_hold": hold_id, "p_now": now}).first()
        if row is not None:
            self._release(conn, row, now)
        return row

    def _release(self, conn: Writer, hold: Row, now: datetime) -> None:
        """Give a voided/expired hold's reservation back. Allowance reserved in an earlier allowance month
        than the account's current one has already missed its month's expiry, so it expires now."""
        month = conn.execute(_RELEASE_ACCOUNT, {"p_user": hold.user_id, "p_allowance": hold.amount_allowance,
                                                "p_paid": hold.amount_paid, "p_now": now}).scalar_one()
        if hold.amount_allowance and month is not None and month > month_of(hold.created_at):
            self._book(conn, user_id=hold.user_id, bucket=ALLOWANCE, amount=-hold.amount_allowance,
                       kind="allowance_expiry", key=f"allowance_expiry:hold:{hold.id}", now=now,
                       memo=f"allowance of {month_of(hold.created_at)} released by hold #{hold.id} after "
                            "its month ended")

    def get_hold(self, hold_id: int) -> HoldView | None:
        with self.db.read() as s:
            row = s.execute(select(_holds).where(_holds.c.id == hold_id)).first()
        return _hold_view(row) if row else None

    def hold_by_key(self, key: str) -> HoldView | None:
        row = self._hold_row_by_key(key)
        return _hold_view(row) if row else None

    def _hold_row_by_key(self, key: str) -> Row | None:
        with self.db.read() as s:
            return s.connection().execute(_HOLD_BY_KEY, {"p_key": key}).first()

    def _require_hold(self, hold_id: int) -> HoldView:
        hold = self.get_hold(hold_id)
        if hold is None:
            raise HoldNotFound(hold_id)
        return hold

    # == grants, adjustments, refunds ========================================================================
    def grant(self, user_id: int, kind: str, amount: int, key: str, bucket: str | None = None,
              memo: str = "", actor: int | None = None, reference: str = "") -> EntryView:
        """Book a credit (allowance grant, signup/referral bonus, purchase) or an admin adjustment.

        ``admin_adjustment`` may be negative, needs ``memo`` (the reason) and ``actor`` (an admin's user id),
        and leaves a ``credit_adjustment`` row in moderation_actions. Same key + same grant returns the original
        entry; same key + anything different raises IdempotencyConflict.
        """
        with self.db.write() as s:
            return self.grant_in(s, user_id=user_id, kind=kind, amount=amount, key=key, bucket=bucket,
                                 memo=memo, actor=actor, reference=reference)

    def grant_in(self, s: Session, *, user_id: int, kind: str, amount: int, key: str, bucket: str | None = None,
                 memo: str = "", actor: int | None = None, reference: str = "") -> EntryView:
        """grant() inside the caller's write transaction, for services that must commit a grant together with
        their own rows (a purchase marked paid, a referral marked rewarded)."""
        if kind not in GRANT_KINDS:
            raise InvalidRequest(f"grant() books {', '.join(GRANT_KINDS)}; {kind!r} is not one of them.")
        required = GRANT_KINDS[kind]
        bucket = bucket or required or PAID
        if bucket not in BUCKETS or (required and bucket != required):
            raise InvalidRequest(f"{kind} credits go to the {required or 'allowance or paid'} bucket, "
                                 f"not {bucket!r}.")
        is_adjustment = kind == "admin_adjustment"
        amount = _check_amount(amount, signed=is_adjustment)
        key = _check_key(key, allow_system=False)
        reference = _check_reference(reference)
        memo = (memo or "").strip()
        if is_adjustment:
            if not memo:
                raise InvalidRequest("An admin adjustment needs a reason.")
            if actor is None:
                raise InvalidRequest("An admin adjustment needs the acting admin.")
        conn = s.connection()
        if actor is not None and is_adjustment:
            role = conn.scalar(select(_users.c.role).where(_users.c.id == actor))
            if role != "admin":
                raise NotAllowed("Only admins can adjust credit balances.")
        now = self.clock()
        self._lock_account(conn, user_id)
        existing = self._entry_by_key(conn, key)
        if existing is not None:
            same = (existing.user_id, existing.kind, existing.bucket, existing.amount) == \
                (user_id, kind, bucket, amount)
            if not same:
                raise IdempotencyConflict(key, f"entry #{existing.id}: {existing.kind} of {existing.amount} "
                                               f"{existing.bucket} credits")
            return _entry_view(existing)
        entry = self._book(conn, user_id=user_id, bucket=bucket, amount=amount, kind=kind, key=key, now=now,
                           reference=reference, memo=memo, actor_id=actor)
        if is_adjustment:
            conn.execute(insert(ModerationAction.__table__).values(
                actor_id=actor, action="credit_adjustment", post_id=None, report_id=None,
                target_user_id=user_id, created_at=now,
                note=f"{amount:+d} {bucket} credits (ledger entry #{entry.id}): {memo}"))
        return entry

    def refund(self, entry_id: int, key: str, reason: str, actor: int | None = None) -> EntryView:
        """Give a generation charge back: a new ``refund`` entry in the same bucket pointing at the original.
        An entry is refunded at most once; the same key returns the same refund."""
        key = _check_key(key, allow_system=False)
        reason = (reason or "").strip()
        if not reason:
            raise InvalidRequest("A refund needs a reason.")
        with self.db.write() as s:
            conn = s.connection()
            original = conn.execute(select(_entries).where(_entries.c.id == entry_id)).first()
            if original is None:
                raise EntryNotFound(entry_id)
            self._lock_account(conn, original.user_id)
            existing = self._entry_by_key(conn, key)
            if existing is not None:
                if existing.refund_of_id != entry_id:
                    raise IdempotencyConflict(key, f"entry #{existing.id} is a {existing.kind}")
                return _entry_view(existing)
            if original.kind != "generation" or original.amount >= 0:
                raise RefundRefused(f"Only generation charges can be refunded; entry #{entry_id} is a "
                                    f"{original.kind}.")
            earlier = conn.scalar(select(_entries.c.id).where(_entries.c.refund_of_id == entry_id))
            if earlier is not None:
                raise RefundRefused(f"Entry #{entry_id} was already refunded by entry #{earlier}.")
            return self._book(conn, user_id=original.user_id, bucket=original.bucket, amount=-original.amount,
                              kind="refund", key=key, now=self.clock(), refund_of_id=entry_id,
                              reference=original.reference, memo=reason, actor_id=actor)

    # == the monthly allowance ===============================================================================
    def ensure_monthly_allowance(self, user_id: int, now: datetime | None = None) -> bool:
        """On the first activity of a month: expire the unused allowance of the previous one (an explicit
        ``allowance_expiry`` entry), then grant this month's (key ``allowance:<user>:<YYYY-MM>``).
        Returns True when this call did it, False when it was already done. Safe to call on every page."""
        now = now or self.clock()
        month = month_of(now)
        with self.db.read() as s:
            current = s.execute(select(_acct.c.allowance_month).where(_acct.c.user_id == user_id)).first()
        if current is None:
            raise UnknownAccount(user_id)
        if current.allowance_month is not None and current.allowance_month >= month:
            return False
        with self.db.write() as s:
            return self._rollover(s.connection(), user_id, month, now)

    def on_signup(self, user_id: int, referrer_id: int | None = None) -> None:
        """AccountService.after_signup hook: a new account starts with this month's allowance."""
        self.ensure_monthly_allowance(user_id)

    def _rollover(self, conn: Writer, user_id: int, month: str, now: datetime) -> bool:
        claimed = conn.execute(_CLAIM_MONTH, {"p_user": user_id, "p_month": month, "p_now": now}).first()
        if claimed is None:  # another transaction renewed it first
            return False
        # Allowance still reserved by pending holds stays until they resolve (see _release).
        unused = claimed.allowance_balance - claimed.reserved_allowance
        if unused > 0:
            self._book(conn, user_id=user_id, bucket=ALLOWANCE, amount=-unused, kind="allowance_expiry",
                            key=f"allowance_expiry:{user_id}:{month}", now=now,
                            memo=f"unused allowance expired at the start of {month}")
        if self.settings.monthly_allowance > 0:
            self._book(conn, user_id=user_id, bucket=ALLOWANCE, amount=self.settings.monthly_allowance,
                            kind="allowance_grant", key=f"allowance:{user_id}:{month}", now=now,
                            memo=f"monthly allowance for {month}")
        return True

    def sweep(self, now: datetime | None = None, *, active_within_days: int = 35) -> SweepReport:
        """Expire stale holds, and renew the allowance of every account that was active recently (signed in,
        signed up or reserved credits within ``active_within_days``). Dormant accounts are left alone: their
        old allowance is expired the moment they become active again, before anything can spend it."""
        now = now or self.clock()
        expired = self.expire_stale_holds(now)
        month = month_of(now)
        cutoff = now - timedelta(days=active_within_days)
        recent_hold = select(_holds.c.id).where(_holds.c.user_id == _acct.c.user_id,
                                                _holds.c.created_at >= cutoff).exists()
        with self.db.read() as s:
            due = list(s.scalars(
                select(_acct.c.user_id).join(_users, _users.c.id == _acct.c.user_id)
                .where(or_(_acct.c.allowance_month.is_(None), _acct.c.allowance_month < month),
                       _users.c.disabled == false(),
                       or_(_users.c.last_login_at >= cutoff, _users.c.created_at >= cutoff, recent_hold))
                .order_by(_acct.c.user_id)))
        renewed = sum(self.ensure_monthly_allowance(user_id, now) for user_id in due)
        return SweepReport(expired_holds=expired, allowances_renewed=renewed)

    # == booking primitives ==================================================================================
    @staticmethod
    def _lock_account(conn: Writer, user_id: int) -> None:
        # FOR NO KEY UPDATE serialises writers of one account on PostgreSQL (the same lock an UPDATE takes, so
        # inserts whose foreign keys point at the account are not blocked), and the key look-up that follows
        # sees every committed entry. SQLite ignores it and needs nothing: db.write() began BEGIN IMMEDIATE.
        if conn.scalar(_LOCK_ACCOUNT, {"p_user": user_id}) is None:
            raise UnknownAccount(user_id)

    @staticmethod
    def _entry_by_key(conn: Writer, key: str) -> Row | None:
        return conn.execute(_ENTRY_BY_KEY, {"p_key": key}).first()

    def _book(self, conn: Writer, *, user_id: int, bucket: str, amount: int, kind: str, key: str, now: datetime,
              hold_id: int | None = None, refund_of_id: int | None = None, reference: str = "",
              memo: str = "", actor_id: int | None = None) -> EntryView:
        """Move one bucket's balance and append the entry that explains it, in the caller's transaction.
        A debit may only take what is free (balance minus reserved); a credit may not pass MAX_BALANCE."""
        moved = conn.execute(_MOVE_BALANCE[bucket, amount < 0], {"p_user": user_id, "p_amount": amount,
                                                                  "p_max": MAX_BALANCE, "p_now": now})
        if moved.rowcount != 1:
            free = conn.scalar(_FREE_IN[bucket], {"p_user": user_id})
            if free is None:
                raise UnknownAccount(user_id)
            if amount < 0:
                raise InsufficientCredits(-amount, free)
            raise BalanceLimit(f"A balance cannot exceed {MAX_BALANCE:,} credits.")
        values = dict(user_id=user_id, bucket=bucket, amount=amount, kind=kind, idempotency_key=key,
                      hold_id=hold_id, refund_of_id=refund_of_id, reference=reference, memo=memo,
                      actor_id=actor_id, created_at=now)
        entry_id = conn.execute(_INSERT_ENTRY_RETURNING_ID, _entry_params(**values)).scalar_one()
        return EntryView(id=entry_id, user_id=user_id, bucket=bucket, amount=amount, kind=kind, key=key,
                         hold_id=hold_id, refund_of_id=refund_of_id, reference=reference, memo=memo,
                         actor_id=actor_id, created_at=now)

    # == reading =============================================================================================
    def balance(self, user_id: int, now: datetime | None = None) -> Balance:
        now = now or self.clock()
        month = month_of(now)
        start, end = month_bounds(month)
        params = {"p_user": user_id, "p_start": start, "p_end": end}
        with self.db.connection() as conn:  # the wallet bar reads it on every run of every page
            acct = conn.execute(_ACCOUNT, params).first()
            if acct is None:
                raise UnknownAccount(user_id)
            sums = dict(conn.execute(_MONTH_SUMS, params).all())
        used = -(sums.get("generation", 0) + sums.get("refund", 0))
        return Balance(user_id=user_id, allowance=acct.allowance_balance, paid=acct.paid_balance,
                       reserved_allowance=acct.reserved_allowance, reserved_paid=acct.reserved_paid,
                       month=month, allowance_granted_this_month=sums.get("allowance_grant", 0),
                       used_this_month=max(used, 0), reset_date=end.date(),
                       allowance_month=acct.allowance_month)

    def history(self, user_id: int, kinds: Iterable[str] | None = None, start: datetime | None = None,
                end: datetime | None = None, page: int = 1, page_size: int = 25) -> HistoryPage:
        """Entries newest first, each with the balance (both buckets) right after it; ``end`` is exclusive."""
        kinds = tuple(kinds) if kinds is not None else None
        unknown = set(kinds or ()) - set(LEDGER_KINDS)
        if unknown:
            raise InvalidRequest(f"Unknown entry kinds: {', '.join(sorted(unknown))}.")
        if page < 1 or not 1 <= page_size <= 500:
            raise InvalidRequest("Pages start at 1 and hold 1 to 500 entries.")
        mine = _entries.c.user_id == user_id
        where = [mine]
        if kinds is not None:
            where.append(_entries.c.kind.in_(kinds))
        if start is not None:
            where.append(_entries.c.created_at >= start)
        if end is not None:
            where.append(_entries.c.created_at < end)
        with self.db.read() as s:
            total = s.scalar(select(func.count()).select_from(_entries).where(*where)) or 0
            rows = s.execute(select(_entries).where(*where).order_by(_entries.c.id.desc())
                             .offset((page - 1) * page_size).limit(page_size)).all()
            # The balance after each shown entry: the sum of the account's entries up to the page's oldest, then
            # the account's every entry (shown or filtered out) from there up to the page's newest -- rather than
            # a running sum over the whole history, twice, for every page.
            after: dict[int, int] = {}
            if rows:
                low, high = rows[-1].id, rows[0].id
                running = s.scalar(select(func.coalesce(func.sum(_entries.c.amount), 0))
                                   .where(mine, _entries.c.id < low)) or 0
                for entry_id, amount in s.execute(select(_entries.c.id, _entries.c.amount)
                                                  .where(mine, _entries.c.id.between(low, high))
                                                  .order_by(_entries.c.id)):
                    running += amount
                    after[entry_id] = running
        return HistoryPage(items=[_entry_view(r, after[r.id]) for r in rows], total=total, page=page,
                           page_size=page_size)

    def daily_spend(self, user_id: int, month: str | None = None) -> list[DailySpend]:
        """Credits spent per day of ``month`` (YYYY-MM; default this month): charges net of refunds,
        one row for every day so a chart needs no gap filling."""
        month = month or month_of(self.clock())
        start, end = month_bounds(month)
        with self.db.read() as s:
            rows = s.execute(select(_entries.c.created_at, _entries.c.amount)
                             .where(_entries.c.user_id == user_id, _entries.c.kind.in_(SPEND_KINDS),
                                    _entries.c.created_at >= start, _entries.c.created_at < end)).all()
        per_day: dict[date, int] = {}
        for created_at, amount in rows:
            per_day[created_at.date()] = per_day.get(created_at.date(), 0) - amount
        days = (end - start).days
        return [DailySpend(day=d, spent=per_day.get(d, 0))
                for d in (start.date() + timedelta(days=i) for i in range(days))]

    # == invariants ==========================================================================================
    def check_invariants(self, user_id: int | None = None) -> list[InvariantResult]:
        """Every invariant of the ledger's contract (docs/credit-ledger.md), for one account or all."""
        params = {"uid": user_id}
        results = []
        with self.db.read() as s:
            for name, sql, describe in _INVARIANTS:
                rows = s.execute(text(_scoped(sql, user_id is not None)), params).all()
                bad = [describe(r) for r in rows[:_SHOWN]]
                if len(rows) > _SHOWN:
                    bad.append(f"... and more (showing the first {_SHOWN})")
                results.append(InvariantResult(name, not rows, "; ".join(bad) if rows else "ok"))
        return results


# Each invariant is a query returning the violating rows (at most _SHOWN + 1) and a way to describe one.
# "{user}" / "{user:alias}" become "AND [alias.]user_id = :uid" when a single account is checked.
_SHOWN = 10
_USER_FILTER = re.compile(r"\{user(?::(\w+))?\}")


def _scoped(sql: str, one_user: bool) -> str:
    return _USER_FILTER.sub(
        lambda m: f"AND {m.group(1) + '.' if m.group(1) else ''}user_id = :uid" if one_user else "", sql)


_LIMIT = f"LIMIT {_SHOWN + 1}"
_INVARIANTS: Sequence[tuple[str, str, Callable[[Row], str]]] = (
    ("account_equals_entries", f"""
        SELECT a.user_id, a.allowance_balance, a.paid_balance,
               COALESCE(e.allowance, 0) AS e_allowance, COALESCE(e.paid, 0) AS e_paid
        FROM credit_accounts a
        LEFT JOIN (SELECT user_id,
                          SUM(CASE WHEN bucket = 'allowance' THEN amount ELSE 0 END) AS allowance,
                          SUM(CASE WHEN bucket = 'paid' THEN amount ELSE 0 END) AS paid
                   FROM credit_ledger WHERE 1 = 1 {{user}} GROUP BY user_id) e ON e.user_id = a.user_id
        WHERE (a.allowance_balance <> COALESCE(e.allowance, 0) OR a.paid_balance <> COALESCE(e.paid, 0))
              {{user:a}}
        ORDER BY a.user_id {_LIMIT}""",
     lambda r: f"user {r.user_id}: account allowance={r.allowance_balance} paid={r.paid_balance}, entries "
               f"allowance={r.e_allowance} paid={r.e_paid}"),
    ("reserved_equals_pending_holds", f"""
        SELECT a.user_id, a.reserved_allowance, a.reserved_paid,
               COALESCE(h.allowance, 0) AS h_allowance, COALESCE(h.paid, 0) AS h_paid
        FROM credit_accounts a
        LEFT JOIN (SELECT user_id, SUM(amount_allowance) AS allowance, SUM(amount_paid) AS paid
                   FROM credit_holds WHERE status = 'pending' {{user}} GROUP BY user_id) h
               ON h.user_id = a.user_id
        WHERE (a.reserved_allowance <> COALESCE(h.allowance, 0) OR a.reserved_paid <> COALESCE(h.paid, 0))
              {{user:a}}
        ORDER BY a.user_id {_LIMIT}""",
     lambda r: f"user {r.user_id}: reserved allowance={r.reserved_allowance} paid={r.reserved_paid}, pending "
               f"holds allowance={r.h_allowance} paid={r.h_paid}"),
    ("nothing_negative", f"""
        SELECT user_id, allowance_balance, paid_balance, reserved_allowance, reserved_paid
        FROM credit_accounts
        WHERE (allowance_balance < 0 OR paid_balance < 0 OR reserved_allowance < 0 OR reserved_paid < 0
               OR reserved_allowance > allowance_balance OR reserved_paid > paid_balance) {{user}}
        ORDER BY user_id {_LIMIT}""",
     lambda r: f"user {r.user_id}: allowance={r.allowance_balance} (reserved {r.reserved_allowance}), "
               f"paid={r.paid_balance} (reserved {r.reserved_paid})"),
    ("entry_signs_match_kinds", f"""
        SELECT id, kind, amount FROM credit_ledger
        WHERE ((kind IN ({", ".join(repr(k) for k in CREDIT_KINDS)}) AND amount <= 0)
               OR (kind IN ({", ".join(repr(k) for k in DEBIT_KINDS)}) AND amount >= 0)) {{user}}
        ORDER BY id {_LIMIT}""",
     lambda r: f"entry #{r.id}: {r.kind} of {r.amount}"),
    ("posted_holds_debited_once", f"""
        SELECT h.id, h.amount_allowance, h.amount_paid,
               COALESCE(e.n_allowance, 0) AS n_allowance, COALESCE(e.s_allowance, 0) AS s_allowance,
               COALESCE(e.n_paid, 0) AS n_paid, COALESCE(e.s_paid, 0) AS s_paid
        FROM credit_holds h
        LEFT JOIN (SELECT hold_id,
                          SUM(CASE WHEN bucket = 'allowance' THEN 1 ELSE 0 END) AS n_allowance,
                          SUM(CASE WHEN bucket = 'allowance' THEN amount ELSE 0 END) AS s_allowance,
                          SUM(CASE WHEN bucket = 'paid' THEN 1 ELSE 0 END) AS n_paid,
                          SUM(CASE WHEN bucket = 'paid' THEN amount ELSE 0 END) AS s_paid
                   FROM credit_ledger WHERE hold_id IS NOT NULL {{user}} GROUP BY hold_id) e ON e.hold_id = h.id
        WHERE h.status = 'posted' {{user:h}}
          AND NOT (COALESCE(e.n_allowance, 0) = CASE WHEN h.amount_allowance > 0 THEN 1 ELSE 0 END
                   AND COALESCE(e.s_allowance, 0) = -h.amount_allowance
                   AND COALESCE(e.n_paid, 0) = CASE WHEN h.amount_paid > 0 THEN 1 ELSE 0 END
                   AND COALESCE(e.s_paid, 0) = -h.amount_paid)
        ORDER BY h.id {_LIMIT}""",
     lambda r: f"hold #{r.id} of {r.amount_allowance}+{r.amount_paid}: {r.n_allowance} allowance entries "
               f"({r.s_allowance}), {r.n_paid} paid entries ({r.s_paid})"),
    ("hold_entries_belong_to_posted_holds", f"""
        SELECT e.id, e.kind, e.hold_id, h.status, e.user_id, h.user_id AS hold_user
        FROM credit_ledger e JOIN credit_holds h ON h.id = e.hold_id
        WHERE (h.status <> 'posted' OR e.kind <> 'generation' OR e.user_id <> h.user_id) {{user:e}}
        ORDER BY e.id {_LIMIT}""",
     lambda r: f"entry #{r.id} ({r.kind}, user {r.user_id}) points at hold #{r.hold_id} "
               f"({r.status}, user {r.hold_user})"),
    ("generation_entries_have_holds", f"""
        SELECT id, amount FROM credit_ledger WHERE kind = 'generation' AND hold_id IS NULL {{user}}
        ORDER BY id {_LIMIT}""",
     lambda r: f"entry #{r.id} charges {r.amount} without a hold"),
    ("keys_used_once", f"""
        SELECT 'credit_ledger' AS tbl, idempotency_key AS k, COUNT(*) AS n FROM credit_ledger
        WHERE 1 = 1 {{user}} GROUP BY idempotency_key HAVING COUNT(*) > 1
        UNION ALL
        SELECT 'credit_holds', idempotency_key, COUNT(*) FROM credit_holds
        WHERE 1 = 1 {{user}} GROUP BY idempotency_key HAVING COUNT(*) > 1
        {_LIMIT}""",
     lambda r: f"{r.tbl} key {r.k!r} used {r.n} times"),
    ("refunds_match_charges", f"""
        SELECT r.id, r.refund_of_id, r.kind, o.kind AS o_kind, r.amount, o.amount AS o_amount
        FROM credit_ledger r
        LEFT JOIN credit_ledger o ON o.id = r.refund_of_id
        LEFT JOIN (SELECT refund_of_id, COUNT(*) AS n FROM credit_ledger
                   WHERE refund_of_id IS NOT NULL {{user}} GROUP BY refund_of_id) c
               ON c.refund_of_id = r.refund_of_id
        WHERE (r.kind = 'refund' OR r.refund_of_id IS NOT NULL) {{user:r}}
          AND (r.kind <> 'refund' OR o.id IS NULL OR o.kind <> 'generation' OR o.user_id <> r.user_id
               OR o.bucket <> r.bucket OR o.amount <> -r.amount OR c.n > 1)
        ORDER BY r.id {_LIMIT}""",
     lambda r: f"entry #{r.id} ({r.kind} of {r.amount}) refunds entry #{r.refund_of_id} "
               f"({r.o_kind} of {r.o_amount}) or is not the only refund of it"),
    ("purchases_credited_once", f"""
        SELECT p.id, p.status, p.credits, p.credited_entry_id, e.kind, e.amount, e.user_id AS e_user
        FROM purchases p LEFT JOIN credit_ledger e ON e.id = p.credited_entry_id
        WHERE 1 = 1 {{user:p}}
          AND ((p.status = 'paid' AND (e.id IS NULL OR e.kind <> 'purchase' OR e.amount <> p.credits
                                       OR e.user_id <> p.user_id
                                       OR e.idempotency_key <> 'purchase:' || p.gateway_session_id))
               OR (p.status <> 'paid' AND p.credited_entry_id IS NOT NULL)
               OR (SELECT COUNT(*) FROM credit_ledger x
                   WHERE x.idempotency_key = 'purchase:' || p.gateway_session_id) > 1)
        ORDER BY p.id {_LIMIT}""",
     lambda r: f"purchase #{r.id} ({r.status}, {r.credits} credits) credited by entry "
               f"#{r.credited_entry_id} ({r.kind} of {r.amount})"),
)
