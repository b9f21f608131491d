"""Stripe Checkout through the ``stripe`` SDK (StripeClient, v1 Checkout Sessions).

The browser is sent to the session's hosted page; when it comes back, the wallet asks Stripe (``retrieve``)
what really happened -- the return URL alone proves nothing. Every call has an explicit timeout. Session
creation carries an idempotency key derived from our purchase, so the SDK's retries (and ours after a timeout
whose request may have arrived) get the same session back instead of a second one.
"""

from __future__ import annotations

from typing import Any

import requests
import stripe

from studio_core.adapters._errors import code_for_status
from studio_core.ports import CheckoutSession, ErrorCode, PaymentStatus, ProviderError

_PLACEHOLDER = "{CHECKOUT_SESSION_ID}"


class StripeGateway:
    name = "stripe"

    def __init__(self, api_key: str, *, api_base: str | None = None, timeout_s: float = 20.0,
                 max_network_retries: int = 2) -> None:
        self.client = stripe.StripeClient(
            api_key,
            base_addresses={"api": api_base.rstrip("/")} if api_base else None,
            http_client=stripe.RequestsClient(timeout=timeout_s),
            max_network_retries=max_network_retries)

    def create_checkout(self, *, pack_id: str, pack_name: str, credits: int, amount_cents: int, currency: str,
                        client_reference: str, success_url: str, cancel_url: str) -> CheckoutSession:
        if _PLACEHOLDER not in success_url:
            raise ProviderError(ErrorCode.BAD_REQUEST, f"success_url must contain {_PLACEHOLDER}")
        params: dict[str, Any] = {
            "mode": "payment",
            "line_items": [{"quantity": 1, "price_data": {
                "currency": currency.lower(), "unit_amount": amount_cents,
                "product_data": {"name": f"{pack_name}: {credits} credits"}}}],
            "client_reference_id": client_reference,
            "metadata": {"pack_id": pack_id, "credits": str(credits), "client_reference": client_reference},
            "success_url": success_url,
            "cancel_url": cancel_url,
        }
        session = _call(lambda: self.client.v1.checkout.sessions.create(
            params=params, options={"idempotency_key": f"studio-checkout-{client_reference}"}))
        return CheckoutSession(session_id=session.id, redirect_url=session.url)

    def retrieve(self, session_id: str) -> PaymentStatus:
        if not session_id or len(session_id) > 255:
            raise ProviderError(ErrorCode.BAD_REQUEST, "no such checkout session")
        s = _call(lambda: self.client.v1.checkout.sessions.retrieve(session_id))
        metadata = s.metadata.to_dict() if s.metadata else {}
        return PaymentStatus(
            session_id=s.id,
            # "paid" is the only state in which the money is ours; "complete" with "unpaid" is a delayed method
            paid=s.payment_status == "paid" and s.status == "complete",
            amount_cents=s.amount_total or 0,
            currency=(s.currency or "").lower(),
            client_reference=s.client_reference_id or "",
            metadata={str(k): str(v) for k, v in metadata.items()})


def _call(fn):
    try:
        return fn()
    except stripe.StripeError as exc:
        raise translate(exc) from exc


def translate(exc: stripe.StripeError) -> ProviderError:
    """Our error code for a Stripe SDK failure (after the SDK's own retries are spent)."""
    detail = f"{type(exc).__name__}: {exc.user_message or exc}"
    if isinstance(exc, stripe.CardError):
        return ProviderError(ErrorCode.PAYMENT_DECLINED, detail)
    if isinstance(exc, stripe.APIConnectionError):
        timed_out = isinstance(exc.__cause__, requests.Timeout)
        return ProviderError(ErrorCode.PROVIDER_TIMEOUT if timed_out else ErrorCode.PROVIDER_UNAVAILABLE,
                             detail, retryable=True)
    if isinstance(exc, stripe.RateLimitError):
        return ProviderError(ErrorCode.RATE_LIMITED, detail, retryable=True)
    if isinstance(exc, stripe.AuthenticationError | stripe.PermissionError):
        return ProviderError(ErrorCode.AUTH_FAILED, detail)
    if isinstance(exc, stripe.InvalidRequestError | stripe.IdempotencyError):
        return ProviderError(ErrorCode.BAD_REQUEST, detail)
    status = exc.http_status or 502
    code = code_for_status(status) if status >= 400 else ErrorCode.PROVIDER_UNAVAILABLE
    return ProviderError(code, detail, retryable=code in (ErrorCode.PROVIDER_UNAVAILABLE,
                                                          ErrorCode.PROVIDER_TIMEOUT, ErrorCode.RATE_LIMITED))
