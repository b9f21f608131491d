"""Credit packs and purchases: checkout through the payment gateway port, credits granted exactly once.

Flow: ``start_purchase`` records a Purchase and opens a gateway checkout session. The browser pays there (or,
with the sandbox, in the app's own test-card form: ``pay_with_test_card``) and comes back with the session id.
``complete_purchase`` then asks the gateway, server side, whether that session is paid, for this user, for the
amount and currency of the pack, and books the credits under the key ``purchase:<gateway session>`` -- so a
page reload, a second return, or two replicas completing at once credit the pack once.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from uuid import uuid4

from sqlalchemy import false, select, update

from studio_core.config import CreditPack, Settings
from studio_core.db import Database
from studio_core.models import Purchase, User, utcnow
from studio_core.ports import ErrorCode, PaymentGateway, PaymentStatus, ProviderError, SandboxCheckout
from studio_core.services.ledger import LedgerService

_PLACEHOLDER = "{CHECKOUT_SESSION_ID}"
_PENDING_PREFIX = "pending:"  # gateway_session_id of a purchase whose session is being created
_REFERENCE = re.compile(r"u(?P<user>\d+)-p(?P<purchase>\d+)")
_purchases = Purchase.__table__


class WalletError(Exception):
    """A purchase step was refused; ``str(err)`` is safe to show the user."""


class UnknownPack(WalletError):
    pass


class PurchaseRefused(WalletError):
    """The session is unknown, belongs to someone else, or does not match what was bought."""


class PaymentNotCompleted(WalletError):
    pass


class PaymentDeclined(WalletError):
    pass


@dataclass(frozen=True)
class PackView:
    id: str
    name: str
    credits: int
    bonus: int
    price_cents: int
    currency: str

    @property
    def total_credits(self) -> int:
        return self.credits + self.bonus

    @property
    def price_label(self) -> str:
        symbol = {"usd": "$", "eur": "€", "gbp": "£"}.get(self.currency.lower())
        amount = f"{self.price_cents / 100:,.2f}"
        return f"{symbol}{amount}" if symbol else f"{amount} {self.currency.upper()}"


@dataclass(frozen=True)
class Checkout:
    purchase_id: int
    session_id: str
    redirect_url: str | None  # None: the gateway is the sandbox -- show the test-card form
    gateway: str
    pack: PackView


@dataclass(frozen=True)
class PurchaseResult:
    purchase_id: int
    session_id: str
    credits: int
    entry_id: int
    newly_credited: bool  # False when this session had been credited before (reload, second return)


@dataclass(frozen=True)
class Receipt:
    purchase_id: int
    pack_id: str
    credits: int
    price_cents: int
    currency: str
    gateway: str
    session_id: str
    status: str  # created / paid / failed / canceled
    failure_reason: str | None
    created_at: datetime
    completed_at: datetime | None


def _pack_view(pack: CreditPack) -> PackView:
    return PackView(id=pack.id, name=pack.name, credits=pack.credits, bonus=pack.bonus,
                    price_cents=pack.price_cents, currency=pack.currency.lower())


def _receipt(row: Purchase) -> Receipt:
    return Receipt(purchase_id=row.id, pack_id=row.pack_id, credits=row.credits, price_cents=row.price_cents,
                   currency=row.currency, gateway=row.gateway, session_id=row.gateway_session_id,
                   status=row.status, failure_reason=row.failure_reason, created_at=row.created_at,
                   completed_at=row.completed_at)


def with_session_placeholder(url: str) -> str:
    """The success URL with ``{CHECKOUT_SESSION_ID}`` in it (gateways fill it in on the way back)."""
    if _PLACEHOLDER in url:
        return url
    return f"{url}{'&' if '?' in url else '?'}session_id={_PLACEHOLDER}"


class WalletService:
    def __init__(self, db: Database, settings: Settings, ledger: LedgerService, gateway: PaymentGateway, *,
                 clock: Callable[[], datetime] = utcnow) -> None:
        self.db = db
        self.settings = settings
        self.ledger = ledger
        self.gateway = gateway
        self.clock = clock

    @property
    def gateway_name(self) -> str:
        return self.gateway.name

    @property
    def test_cards(self) -> dict[str, str] | None:
        """Card number -> outcome, when the gateway is the sandbox (the UI shows them); None otherwise."""
        return dict(self.gateway.test_cards) if isinstance(self.gateway, SandboxCheckout) else None

    def packs(self) -> list[PackView]:
        return [_pack_view(p) for p in self.settings.credit_packs]

    # -- buying ------------------------------------------------------------------------------------------------
    def start_purchase(self, user_id: int, pack_id: str, success_url: str, cancel_url: str) -> Checkout:
        try:
            pack = self.settings.pack(pack_id)
        except KeyError:
            raise UnknownPack(f"There is no credit pack {pack_id!r}.") from None
        with self.db.write() as s:
            if s.scalar(select(User.id).where(User.id == user_id, User.disabled == false())) is None:
                raise PurchaseRefused("This account cannot buy credits.")
            # The row exists before the session does, so the gateway can carry our purchase id; its session id
            # is a unique placeholder until the gateway has answered.
            purchase = Purchase(user_id=user_id, pack_id=pack.id, credits=pack.total_credits,
                                price_cents=pack.price_cents, currency=pack.currency.lower(),
                                gateway=self.gateway.name, gateway_session_id=f"{_PENDING_PREFIX}{uuid4().hex}",
                                status="created", created_at=self.clock())
            s.add(purchase)
            s.flush()
            purchase_id = purchase.id
        try:
            session = self.gateway.create_checkout(
                pack_id=pack.id, pack_name=pack.name, credits=pack.total_credits, amount_cents=pack.price_cents,
                currency=pack.currency.lower(), client_reference=f"u{user_id}-p{purchase_id}",
                success_url=with_session_placeholder(success_url), cancel_url=cancel_url)
        except ProviderError as exc:
            self._mark(purchase_id, "failed", f"checkout could not be opened: {exc.code.value}")
            raise
        with self.db.write() as s:
            s.execute(update(_purchases).where(_purchases.c.id == purchase_id)
                      .values(gateway_session_id=session.session_id))
        return Checkout(purchase_id=purchase_id, session_id=session.session_id,
                        redirect_url=session.redirect_url, gateway=self.gateway.name, pack=_pack_view(pack))

    def pay_with_test_card(self, user_id: int, session_id: str, card_number: str) -> PurchaseResult:
        """The sandbox's card form: pay the session with a test card, then complete the purchase."""
        if not isinstance(self.gateway, SandboxCheckout):
            raise WalletError("Card numbers are only taken by the offline sandbox; this gateway has its own page.")
        purchase = self._own_purchase(user_id, session_id)
        if purchase.status != "paid":
            try:
                self.gateway.pay_with_test_card(session_id, card_number)
            except ProviderError as exc:
                if exc.code != ErrorCode.PAYMENT_DECLINED:
                    raise
                self._mark(purchase.id, "failed", exc.detail or "declined")
                raise PaymentDeclined(f"{exc.detail or 'The card was declined.'} Nothing was charged; try "
                                      "another card.") from exc
        return self.complete_purchase(user_id, session_id)

    def complete_purchase(self, user_id: int, session_id: str) -> PurchaseResult:
        """Credit a paid checkout session, exactly once. Safe to call on every return and every reload."""
        if not isinstance(session_id, str) or not session_id or len(session_id) > 200 \
                or session_id.startswith(_PENDING_PREFIX):
            raise PurchaseRefused("That checkout session is not known.")
        purchase = self._purchase_by_session(session_id)
        if purchase is not None and purchase.user_id != user_id:
            raise PurchaseRefused("That checkout session belongs to another account.")
        if purchase is not None and purchase.status == "paid" and purchase.credited_entry_id is not None:
            return PurchaseResult(purchase.id, session_id, purchase.credits, purchase.credited_entry_id, False)
        try:
            status = self.gateway.retrieve(session_id)
        except ProviderError as exc:
            if exc.code == ErrorCode.BAD_REQUEST:
                raise PurchaseRefused("That checkout session is not known.") from exc
            raise
        if purchase is None:
            purchase = self._adopt(user_id, session_id, status)
        self._verify(purchase, status)
        if not status.paid:
            raise PaymentNotCompleted("The payment has not been completed, so no credits were added. If you "
                                      "paid, wait a moment and reload this page.")
        return self._credit(purchase, session_id)

    def cancel_purchase(self, user_id: int, session_id: str) -> Receipt:
        """The browser came back through the cancel URL: an unpaid purchase is marked canceled."""
        purchase = self._own_purchase(user_id, session_id)
        if purchase.status in ("created", "failed"):
            self._mark(purchase.id, "canceled", None)
        return self.receipt(user_id, purchase.id)

    # -- reading -----------------------------------------------------------------------------------------------
    def receipts(self, user_id: int, *, include_unpaid: bool = False) -> list[Receipt]:
        with self.db.read() as s:
            q = select(Purchase).where(Purchase.user_id == user_id)
            if not include_unpaid:
                q = q.where(Purchase.status == "paid")
            return [_receipt(p) for p in s.scalars(q.order_by(Purchase.id.desc()))]

    def receipt(self, user_id: int, purchase_id: int) -> Receipt:
        with self.db.read() as s:
            row = s.get(Purchase, purchase_id)
            if row is None or row.user_id != user_id:
                raise PurchaseRefused("There is no such purchase on this account.")
            return _receipt(row)

    # -- internals ---------------------------------------------------------------------------------------------
    def _purchase_by_session(self, session_id: str) -> Purchase | None:
        with self.db.read() as s:
            return s.scalar(select(Purchase).where(Purchase.gateway_session_id == session_id))

    def _own_purchase(self, user_id: int, session_id: str) -> Purchase:
        purchase = self._purchase_by_session(session_id) if isinstance(session_id, str) else None
        if purchase is None:
            raise PurchaseRefused("That checkout session is not known.")
        if purchase.user_id != user_id:
            raise PurchaseRefused("That checkout session belongs to another account.")
        return purchase

    def _adopt(self, user_id: int, session_id: str, status: PaymentStatus) -> Purchase:
        """A session we have no row for: start_purchase stopped between opening it and recording its id.
        The gateway echoes our purchase reference; a placeholder row of this user is adopted, nothing else."""
        m = _REFERENCE.fullmatch(status.client_reference or "")
        if m is None or int(m["user"]) != user_id:
            raise PurchaseRefused("That checkout session is not known.")
        with self.db.write() as s:
            adopted = s.execute(
                update(_purchases)
                .where(_purchases.c.id == int(m["purchase"]), _purchases.c.user_id == user_id,
                       _purchases.c.gateway_session_id.startswith(_PENDING_PREFIX))
                .values(gateway_session_id=session_id)).rowcount
        purchase = self._purchase_by_session(session_id)
        if not adopted and purchase is None:
            raise PurchaseRefused("That checkout session is not known.")
        assert purchase is not None
        return purchase

    @staticmethod
    def _verify(purchase: Purchase, status: PaymentStatus) -> None:
        expected_reference = f"u{purchase.user_id}-p{purchase.id}"
        problems = []
        if status.session_id != purchase.gateway_session_id:
            problems.append("session")
        if status.client_reference != expected_reference:
            problems.append("account")
        if status.amount_cents != purchase.price_cents or status.currency.lower() != purchase.currency.lower():
            problems.append("amount")
        if status.metadata.get("pack_id", purchase.pack_id) != purchase.pack_id:
            problems.append("pack")
        if problems:
            raise PurchaseRefused("That checkout session does not match this purchase "
                                  f"({', '.join(problems)}); no credits were added.")

    def _credit(self, purchase: Purchase, session_id: str) -> PurchaseResult:
        now = self.clock()
        with self.db.write() as s:
            # The purchase row is locked first (the only path that writes both a purchase and an account, so
            # the order is always purchase, then account): concurrent completions queue here.
            row = s.execute(select(_purchases.c.status, _purchases.c.credited_entry_id)
                            .where(_purchases.c.id == purchase.id).with_for_update(key_share=True)).one()
            if row.status == "paid" and row.credited_entry_id is not None:
                return PurchaseResult(purchase.id, session_id, purchase.credits, row.credited_entry_id, False)
            entry = self.ledger.grant_in(s, user_id=purchase.user_id, kind="purchase", amount=purchase.credits,
                                         key=f"purchase:{session_id}", reference=f"purchase:{purchase.id}",
                                         memo=f"{purchase.pack_id} pack")
            s.execute(update(_purchases).where(_purchases.c.id == purchase.id)
                      .values(status="paid", credited_entry_id=entry.id, completed_at=now, failure_reason=None))
        return PurchaseResult(purchase.id, session_id, purchase.credits, entry.id, True)

    def _mark(self, purchase_id: int, status: str, reason: str | None) -> None:
        with self.db.write() as s:
            s.execute(update(_purchases).where(_purchases.c.id == purchase_id, _purchases.c.status != "paid")
                      .values(status=status, failure_reason=reason, completed_at=self.clock()))
