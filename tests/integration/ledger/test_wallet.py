"""Buying credit packs through the wallet: the sandbox gateway, and Stripe (the real SDK against the stand-in
server), on SQLite and PostgreSQL. Every test ends with the ledger's invariants (the ``ledger`` fixture)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import update

from studio_core.adapters.sandbox_payments import SandboxGateway
from studio_core.adapters.stripe_payments import StripeGateway
from studio_core.models import Purchase
from studio_core.ports import ErrorCode, ProviderError
from studio_core.services.wallet import (
    PaymentDeclined,
    PaymentNotCompleted,
    PurchaseRefused,
    UnknownPack,
    WalletError,
    WalletService,
    with_session_placeholder,
)
from tests.fakes.stripe_server import FakeStripe

from .conftest import make_user

RETURN = "http://localhost:8501/wallet"
CANCEL = "http://localhost:8501/wallet?canceled=1"


@pytest.fixture
def sandbox_wallet(database, settings, ledger, tmp_path: Path) -> WalletService:
    return WalletService(database, settings, ledger, SandboxGateway(tmp_path / "sandbox"))


@pytest.fixture
def stripe_server() -> Iterator[FakeStripe]:
    with FakeStripe() as server:
        yield server


@pytest.fixture
def stripe_wallet(database, settings, ledger, stripe_server) -> WalletService:
    gateway = StripeGateway(stripe_server.api_key, api_base=stripe_server.url, timeout_s=2, max_network_retries=0)
    return WalletService(database, settings, ledger, gateway)


def paid_credits(ledger, user: int) -> int:
    return ledger.balance(user).paid


# -- the sandbox -------------------------------------------------------------------------------------------------
def test_sandbox_purchase_credits_the_pack_once(sandbox_wallet, ledger, database):
    user = make_user(database)
    checkout = sandbox_wallet.start_purchase(user, "creator", RETURN, CANCEL)
    assert checkout.redirect_url is None and checkout.gateway == "sandbox"
    assert (checkout.pack.total_credits, checkout.pack.price_label) == (130, "$10.00")
    result = sandbox_wallet.pay_with_test_card(user, checkout.session_id, "4242 4242 4242 4242")
    assert (result.credits, result.newly_credited) == (130, True)
    again = sandbox_wallet.complete_purchase(user, checkout.session_id)  # a reload of the return page
    assert (again.entry_id, again.newly_credited) == (result.entry_id, False)
    assert sandbox_wallet.pay_with_test_card(user, checkout.session_id, "4242424242424242").entry_id \
        == result.entry_id
    assert paid_credits(ledger, user) == 130
    (receipt,) = sandbox_wallet.receipts(user)
    assert (receipt.pack_id, receipt.status, receipt.credits, receipt.price_cents) == ("creator", "paid", 130, 1000)
    entry = ledger.history(user).items[0]
    assert (entry.kind, entry.key, entry.amount) == ("purchase", f"purchase:{checkout.session_id}", 130)


def test_sandbox_decline_credits_nothing_and_a_good_card_then_works(sandbox_wallet, ledger, database):
    user = make_user(database)
    checkout = sandbox_wallet.start_purchase(user, "starter", RETURN, CANCEL)
    with pytest.raises(PaymentDeclined, match="declined.*Nothing was charged"):
        sandbox_wallet.pay_with_test_card(user, checkout.session_id, "4000 0000 0000 0002")
    assert paid_credits(ledger, user) == 0
    (failed,) = sandbox_wallet.receipts(user, include_unpaid=True)
    assert failed.status == "failed" and "declined" in failed.failure_reason
    assert sandbox_wallet.receipts(user) == []
    sandbox_wallet.pay_with_test_card(user, checkout.session_id, "4242 4242 4242 4242")
    assert paid_credits(ledger, user) == 50


def test_returning_before_paying_credits_nothing(sandbox_wallet, ledger, database):
    user = make_user(database)
    checkout = sandbox_wallet.start_purchase(user, "starter", RETURN, CANCEL)
    with pytest.raises(PaymentNotCompleted):
        sandbox_wallet.complete_purchase(user, checkout.session_id)
    assert sandbox_wallet.cancel_purchase(user, checkout.session_id).status == "canceled"
    assert paid_credits(ledger, user) == 0


def test_a_session_of_another_user_is_refused(sandbox_wallet, ledger, database):
    buyer, thief = make_user(database), make_user(database)
    checkout = sandbox_wallet.start_purchase(buyer, "studio", RETURN, CANCEL)
    with pytest.raises(PurchaseRefused, match="another account"):
        sandbox_wallet.pay_with_test_card(thief, checkout.session_id, "4242424242424242")
    sandbox_wallet.pay_with_test_card(buyer, checkout.session_id, "4242424242424242")
    with pytest.raises(PurchaseRefused, match="another account"):
        sandbox_wallet.complete_purchase(thief, checkout.session_id)
    assert (paid_credits(ledger, buyer), paid_credits(ledger, thief)) == (350, 0)


@pytest.mark.parametrize("session_id", ["", "sbx_" + "a" * 30, "pending:abc", "../x", "x" * 300])
def test_unknown_sessions_are_refused(sandbox_wallet, database, session_id):
    user = make_user(database)
    with pytest.raises(PurchaseRefused, match="not known"):
        sandbox_wallet.complete_purchase(user, session_id)


def test_unknown_pack_and_the_card_form_of_a_real_gateway(sandbox_wallet, stripe_wallet, database):
    user = make_user(database)
    with pytest.raises(UnknownPack):
        sandbox_wallet.start_purchase(user, "platinum", RETURN, CANCEL)
    assert sandbox_wallet.test_cards and stripe_wallet.test_cards is None
    with pytest.raises(WalletError, match="only taken by the offline sandbox"):
        stripe_wallet.pay_with_test_card(user, "cs_test_x", "4242424242424242")


def test_concurrent_returns_credit_once(sandbox_wallet, ledger, database):
    user = make_user(database)
    checkout = sandbox_wallet.start_purchase(user, "creator", RETURN, CANCEL)
    sandbox_wallet.gateway.pay_with_test_card(checkout.session_id, "4242424242424242")
    results, errors = [], []
    barrier = threading.Barrier(6)

    def complete() -> None:
        barrier.wait()
        try:
            results.append(sandbox_wallet.complete_purchase(user, checkout.session_id))
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=complete) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors and len(results) == 6
    assert len({r.entry_id for r in results}) == 1 and sum(r.newly_credited for r in results) == 1
    assert paid_credits(ledger, user) == 130


def test_success_url_gets_the_session_placeholder():
    assert with_session_placeholder("http://a/wallet") == "http://a/wallet?session_id={CHECKOUT_SESSION_ID}"
    assert with_session_placeholder("http://a/w?x=1") == "http://a/w?x=1&session_id={CHECKOUT_SESSION_ID}"
    assert with_session_placeholder("http://a/w?s={CHECKOUT_SESSION_ID}") == "http://a/w?s={CHECKOUT_SESSION_ID}"


# -- Stripe ------------------------------------------------------------------------------------------------------
def test_stripe_purchase_is_verified_server_side_and_credited_once(stripe_wallet, stripe_server, ledger,
                                                                   database):
    user = make_user(database)
    checkout = stripe_wallet.start_purchase(user, "starter", RETURN, CANCEL)
    assert checkout.redirect_url == f"{stripe_server.url}/c/pay/{checkout.session_id}"
    sent = stripe_server.sessions[checkout.session_id]
    assert sent["client_reference_id"] == f"u{user}-p{checkout.purchase_id}"
    assert sent["success_url"] == RETURN + "?session_id={CHECKOUT_SESSION_ID}"
    with pytest.raises(PaymentNotCompleted):
        stripe_wallet.complete_purchase(user, checkout.session_id)  # back without paying
    stripe_server.pay(checkout.session_id)
    first = stripe_wallet.complete_purchase(user, checkout.session_id)
    second = stripe_wallet.complete_purchase(user, checkout.session_id)  # the replayed return
    assert (first.newly_credited, second.newly_credited, first.entry_id) == (True, False, second.entry_id)
    assert paid_credits(ledger, user) == 50
    retrieves = stripe_server.requests_to("GET", r"^/v1/checkout/sessions/")
    assert len(retrieves) == 2  # the replay was answered from our own books


def test_stripe_session_of_another_user_is_refused(stripe_wallet, stripe_server, ledger, database):
    buyer, thief = make_user(database), make_user(database)
    checkout = stripe_wallet.start_purchase(buyer, "starter", RETURN, CANCEL)
    stripe_server.pay(checkout.session_id)
    with pytest.raises(PurchaseRefused, match="another account"):
        stripe_wallet.complete_purchase(thief, checkout.session_id)
    assert paid_credits(ledger, thief) == 0
    assert stripe_wallet.complete_purchase(buyer, checkout.session_id).credits == 50


@pytest.mark.parametrize("tampered,problem", [
    (dict(amount_total=1), "amount"), (dict(currency="eur"), "amount"),
    (dict(client_reference_id="u999-p1"), "account"), (dict(metadata={"pack_id": "studio"}), "pack")])
def test_stripe_session_that_does_not_match_the_pack_is_refused(stripe_wallet, stripe_server, ledger, database,
                                                                tampered, problem):
    user = make_user(database)
    checkout = stripe_wallet.start_purchase(user, "starter", RETURN, CANCEL)
    stripe_server.pay(checkout.session_id)
    stripe_server.tamper(checkout.session_id, **tampered)
    with pytest.raises(PurchaseRefused, match=f"does not match.*{problem}"):
        stripe_wallet.complete_purchase(user, checkout.session_id)
    assert paid_credits(ledger, user) == 0


def test_stripe_session_unknown_to_stripe_and_to_us_is_refused(stripe_wallet, database):
    with pytest.raises(PurchaseRefused, match="not known"):
        stripe_wallet.complete_purchase(make_user(database), "cs_test_doesnotexist")


def test_a_session_whose_id_was_never_recorded_is_adopted_by_its_purchase(stripe_wallet, stripe_server, ledger,
                                                                          database):
    user = make_user(database)
    checkout = stripe_wallet.start_purchase(user, "starter", RETURN, CANCEL)
    with database.write() as s:  # as if the process died between opening the session and recording its id
        s.execute(update(Purchase).where(Purchase.id == checkout.purchase_id)
                  .values(gateway_session_id="pending:lost"))
    stripe_server.pay(checkout.session_id)
    other = make_user(database)
    with pytest.raises(PurchaseRefused):
        stripe_wallet.complete_purchase(other, checkout.session_id)
    assert stripe_wallet.complete_purchase(user, checkout.session_id).credits == 50
    assert stripe_wallet.receipts(user)[0].session_id == checkout.session_id


def test_stripe_outage_at_checkout_marks_the_purchase_failed(stripe_wallet, stripe_server, ledger, database):
    user = make_user(database)
    stripe_server.fail(status=503, times=None)
    with pytest.raises(ProviderError) as err:
        stripe_wallet.start_purchase(user, "starter", RETURN, CANCEL)
    assert err.value.code == ErrorCode.PROVIDER_UNAVAILABLE
    (receipt,) = stripe_wallet.receipts(user, include_unpaid=True)
    assert receipt.status == "failed" and "provider_unavailable" in receipt.failure_reason
    assert paid_credits(ledger, user) == 0


def test_stripe_outage_at_return_keeps_the_purchase_open(stripe_wallet, stripe_server, ledger, database):
    user = make_user(database)
    checkout = stripe_wallet.start_purchase(user, "starter", RETURN, CANCEL)
    stripe_server.pay(checkout.session_id)
    stripe_server.fail(status=500, method="GET")
    with pytest.raises(ProviderError):
        stripe_wallet.complete_purchase(user, checkout.session_id)
    assert stripe_wallet.complete_purchase(user, checkout.session_id).newly_credited is True
