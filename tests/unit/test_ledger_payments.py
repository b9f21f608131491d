"""Payment gateways: one contract every gateway passes, then each one's own behaviour.

The Stripe gateway runs the real ``stripe`` SDK against the stand-in server in tests/fakes/stripe_server.py.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from studio_core.adapters.payments import build_payment_gateway
from studio_core.adapters.sandbox_payments import SUCCESS, TEST_CARDS, SandboxGateway
from studio_core.adapters.stripe_payments import StripeGateway
from studio_core.config import ConfigError, ProviderChoice, load_settings
from studio_core.ports import ErrorCode, PaymentGateway, ProviderError, SandboxCheckout
from tests.fakes.stripe_server import FakeStripe, decode_form

TIMEOUT_S = 0.5
CHECKOUT = dict(pack_id="starter", pack_name="Starter", credits=50, amount_cents=500, currency="usd",
                client_reference="u7-p3", success_url="http://app/wallet?session_id={CHECKOUT_SESSION_ID}",
                cancel_url="http://app/wallet?canceled=1")


@pytest.fixture
def stripe_server() -> Iterator[FakeStripe]:
    with FakeStripe() as server:
        yield server


def stripe_gateway(server: FakeStripe, *, retries: int = 0, key: str | None = None) -> StripeGateway:
    return StripeGateway(key or server.api_key, api_base=server.url, timeout_s=TIMEOUT_S,
                         max_network_retries=retries)


# -- the contract ----------------------------------------------------------------------------------------------
class Customer:
    """Plays the person at the checkout page of either gateway."""

    def __init__(self, gateway: PaymentGateway, server: FakeStripe | None) -> None:
        self.gateway, self.server = gateway, server

    def pay(self, session_id: str) -> None:
        if self.server is not None:
            self.server.pay(session_id)
        else:
            assert isinstance(self.gateway, SandboxCheckout)
            self.gateway.pay_with_test_card(session_id, "4242 4242 4242 4242")


@pytest.fixture(params=["sandbox", "stripe"])
def customer(request, tmp_path: Path, stripe_server: FakeStripe) -> Customer:
    if request.param == "sandbox":
        return Customer(SandboxGateway(tmp_path / "sandbox"), None)
    return Customer(stripe_gateway(stripe_server), stripe_server)


def test_contract_a_session_is_unpaid_until_paid(customer: Customer):
    gw = customer.gateway
    assert isinstance(gw, PaymentGateway) and gw.name in ("sandbox", "stripe")
    session = gw.create_checkout(**CHECKOUT)
    status = gw.retrieve(session.session_id)
    assert (status.session_id, status.paid, status.amount_cents, status.currency, status.client_reference) == \
        (session.session_id, False, 500, "usd", "u7-p3")
    assert status.metadata["pack_id"] == "starter" and status.metadata["credits"] == "50"
    customer.pay(session.session_id)
    assert gw.retrieve(session.session_id).paid is True


def test_contract_sessions_are_distinct_per_purchase(customer: Customer):
    first = customer.gateway.create_checkout(**CHECKOUT)
    second = customer.gateway.create_checkout(**(CHECKOUT | {"client_reference": "u7-p4"}))
    assert first.session_id != second.session_id
    customer.pay(first.session_id)
    assert customer.gateway.retrieve(second.session_id).paid is False


@pytest.mark.parametrize("session_id", ["cs_test_nope", "../../etc/passwd", "sbx_" + "x" * 30])
def test_contract_an_unknown_session_is_a_bad_request(customer: Customer, session_id: str):
    with pytest.raises(ProviderError) as err:
        customer.gateway.retrieve(session_id)
    assert err.value.code == ErrorCode.BAD_REQUEST


# -- Stripe ------------------------------------------------------------------------------------------------------
def test_stripe_creates_a_checkout_session_with_price_data(stripe_server: FakeStripe):
    session = stripe_gateway(stripe_server).create_checkout(**CHECKOUT)
    assert session.session_id.startswith("cs_test_")
    assert session.redirect_url == f"{stripe_server.url}/c/pay/{session.session_id}"
    (rec,) = stripe_server.requests_to("POST", r"^/v1/checkout/sessions$")
    form = decode_form(rec.body)
    assert form["mode"] == "payment" and form["client_reference_id"] == "u7-p3"
    assert form["line_items"] == [{"quantity": "1", "price_data": {
        "currency": "usd", "unit_amount": "500", "product_data": {"name": "Starter: 50 credits"}}}]
    assert form["metadata"] == {"pack_id": "starter", "credits": "50", "client_reference": "u7-p3"}
    assert form["success_url"] == "http://app/wallet?session_id={CHECKOUT_SESSION_ID}"
    assert rec.headers["Authorization"] == f"Bearer {stripe_server.api_key}"
    assert rec.headers["Idempotency-Key"] == "studio-checkout-u7-p3"


def test_stripe_requires_the_session_placeholder(stripe_server: FakeStripe):
    with pytest.raises(ProviderError) as err:
        stripe_gateway(stripe_server).create_checkout(**(CHECKOUT | {"success_url": "http://app/wallet"}))
    assert err.value.code == ErrorCode.BAD_REQUEST
    assert stripe_server.requests == []


def test_stripe_retry_after_a_server_error_returns_the_same_session(stripe_server: FakeStripe):
    stripe_server.fail(status=500, method="POST")
    session = stripe_gateway(stripe_server, retries=1).create_checkout(**CHECKOUT)
    posts = stripe_server.requests_to("POST", r"^/v1/checkout/sessions$")
    assert len(posts) == 2 and {p.headers["Idempotency-Key"] for p in posts} == {"studio-checkout-u7-p3"}
    assert list(stripe_server.sessions) == [session.session_id]


def test_stripe_replayed_create_returns_the_first_session(stripe_server: FakeStripe):
    gw = stripe_gateway(stripe_server)
    assert gw.create_checkout(**CHECKOUT).session_id == gw.create_checkout(**CHECKOUT).session_id
    assert len(stripe_server.sessions) == 1


@pytest.mark.parametrize("status,code,retryable", [
    (500, ErrorCode.PROVIDER_UNAVAILABLE, True), (503, ErrorCode.PROVIDER_UNAVAILABLE, True),
    (429, ErrorCode.RATE_LIMITED, True), (401, ErrorCode.AUTH_FAILED, False),
    (400, ErrorCode.BAD_REQUEST, False)])
def test_stripe_errors_become_our_codes(stripe_server: FakeStripe, status, code, retryable):
    stripe_server.fail(status=status, times=None)
    with pytest.raises(ProviderError) as err:
        stripe_gateway(stripe_server).create_checkout(**CHECKOUT)
    assert (err.value.code, err.value.retryable) == (code, retryable)


def test_stripe_html_error_page_is_unavailable(stripe_server: FakeStripe):
    stripe_server.fail("html", status=502, times=None)
    with pytest.raises(ProviderError) as err:
        stripe_gateway(stripe_server).retrieve("cs_test_x")
    assert err.value.code == ErrorCode.PROVIDER_UNAVAILABLE


def test_stripe_wrong_key_is_auth_failed(stripe_server: FakeStripe):
    with pytest.raises(ProviderError) as err:
        stripe_gateway(stripe_server, key="sk_test_wrong").retrieve("cs_test_x")
    assert err.value.code == ErrorCode.AUTH_FAILED


def test_stripe_times_out_within_its_timeout(stripe_server: FakeStripe):
    session = stripe_gateway(stripe_server).create_checkout(**CHECKOUT)
    stripe_server.fail("slow", method="GET")
    started = time.monotonic()
    with pytest.raises(ProviderError) as err:
        stripe_gateway(stripe_server).retrieve(session.session_id)
    assert err.value.code == ErrorCode.PROVIDER_TIMEOUT and err.value.retryable
    assert time.monotonic() - started < TIMEOUT_S + 1.0


def test_stripe_unreachable_is_unavailable(stripe_server: FakeStripe):
    gw = stripe_gateway(stripe_server)
    stripe_server.stop()
    with pytest.raises(ProviderError) as err:
        gw.retrieve("cs_test_x")
    assert err.value.code == ErrorCode.PROVIDER_UNAVAILABLE and err.value.retryable


def test_stripe_complete_but_unpaid_is_not_paid(stripe_server: FakeStripe):
    gw = stripe_gateway(stripe_server)
    session = gw.create_checkout(**CHECKOUT)
    stripe_server.tamper(session.session_id, status="complete", payment_status="unpaid")
    assert gw.retrieve(session.session_id).paid is False


# -- the sandbox -------------------------------------------------------------------------------------------------
def test_sandbox_declining_cards_then_a_good_one(tmp_path: Path):
    gw = SandboxGateway(tmp_path)
    session = gw.create_checkout(**CHECKOUT)
    assert session.redirect_url is None
    for card, outcome in TEST_CARDS.items():
        if card == SUCCESS:
            continue
        with pytest.raises(ProviderError) as err:
            gw.pay_with_test_card(session.session_id, card)
        assert err.value.code == ErrorCode.PAYMENT_DECLINED and "declined" in outcome
        assert gw.retrieve(session.session_id).paid is False
    assert gw.pay_with_test_card(session.session_id, "4242-4242-4242-4242").paid is True
    assert gw.pay_with_test_card(session.session_id, "4000 0000 0000 0002").paid is True  # already paid


def test_sandbox_refuses_cards_that_are_not_test_cards(tmp_path: Path):
    gw = SandboxGateway(tmp_path)
    session = gw.create_checkout(**CHECKOUT)
    with pytest.raises(ProviderError) as err:
        gw.pay_with_test_card(session.session_id, "5555 5555 5555 4444")
    assert err.value.code == ErrorCode.BAD_REQUEST and "4242" in str(err.value)


def test_sandbox_sessions_survive_a_restart(tmp_path: Path):
    session = SandboxGateway(tmp_path).create_checkout(**CHECKOUT)
    SandboxGateway(tmp_path).pay_with_test_card(session.session_id, SUCCESS)
    assert SandboxGateway(tmp_path).retrieve(session.session_id).paid is True
    assert not list(tmp_path.glob(".tmp-*"))


# -- the builder -------------------------------------------------------------------------------------------------
def test_build_payment_gateway(tmp_path: Path):
    settings = load_settings(_env_file=None, data_dir=tmp_path, stripe_secret_key="sk_test_123",
                             stripe_api_base="http://127.0.0.1:9", stripe_timeout_s=3)
    sandbox = build_payment_gateway(settings, ProviderChoice("payments", "sandbox", True))
    assert isinstance(sandbox, SandboxGateway) and sandbox.directory == tmp_path / "sandbox_payments"
    stripe = build_payment_gateway(settings, ProviderChoice("payments", "stripe", False))
    assert isinstance(stripe, StripeGateway) and not isinstance(stripe, SandboxCheckout)
    with pytest.raises(ConfigError):
        build_payment_gateway(settings, ProviderChoice("payments", "paypal", False))
