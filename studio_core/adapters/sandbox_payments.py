"""The offline payment gateway: a Checkout stand-in with test cards, so the whole purchase flow runs without
Stripe. Nothing is charged, and the UI says so.

Sessions are JSON files under a directory (``<data_dir>/sandbox_payments``): they survive a restart, and any
process of the installation that shares the data directory sees the same sessions. Session ids come back from
the browser, so they are checked against a strict pattern before they name a file.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from studio_core.ports import CheckoutSession, ErrorCode, PaymentStatus, ProviderError

try:  # serialises read-modify-write across processes sharing the directory (POSIX)
    import fcntl
except ImportError:  # pragma: no cover - Windows: one process, the thread lock below is enough
    fcntl = None  # type: ignore[assignment]

SUCCESS = "4242424242424242"
# The numbers Stripe publishes for the same outcomes, so habits carry over to the real gateway.
TEST_CARDS: dict[str, str] = {
    SUCCESS: "succeeds",
    "4000000000000002": "is declined (generic decline)",
    "4000000000009995": "is declined (insufficient funds)",
    "4000000000000069": "is declined (expired card)",
}
_DECLINES = {
    "4000000000000002": "Your card was declined.",
    "4000000000009995": "Your card has insufficient funds.",
    "4000000000000069": "Your card has expired.",
}
_SESSION_ID = re.compile(r"sbx_[A-Za-z0-9_-]{20,64}")
_PLACEHOLDER = "{CHECKOUT_SESSION_ID}"


class SandboxGateway:
    name = "sandbox"
    test_cards = TEST_CARDS

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self._thread_lock = threading.Lock()

    # -- PaymentGateway ----------------------------------------------------------------------------------------
    def create_checkout(self, *, pack_id: str, pack_name: str, credits: int, amount_cents: int, currency: str,
                        client_reference: str, success_url: str, cancel_url: str) -> CheckoutSession:
        if amount_cents <= 0 or credits <= 0:
            raise ProviderError(ErrorCode.BAD_REQUEST, "amount and credits must be positive")
        session_id = "sbx_" + secrets.token_urlsafe(24)
        session = {
            "id": session_id, "status": "open", "payment_status": "unpaid", "amount_total": amount_cents,
            "currency": currency.lower(), "client_reference_id": client_reference,
            "metadata": {"pack_id": pack_id, "credits": str(credits), "pack_name": pack_name},
            "success_url": success_url.replace(_PLACEHOLDER, session_id),
            "cancel_url": cancel_url.replace(_PLACEHOLDER, session_id),
            "created": datetime.now(UTC).isoformat(), "attempts": [],
        }
        with self._locked():
            self._write(session)
        return CheckoutSession(session_id=session_id, redirect_url=None)

    def retrieve(self, session_id: str) -> PaymentStatus:
        return self._status(self._read(session_id))

    # -- SandboxCheckout ---------------------------------------------------------------------------------------
    def pay_with_test_card(self, session_id: str, card_number: str) -> PaymentStatus:
        card = re.sub(r"[\s-]", "", card_number or "")
        if card not in TEST_CARDS:
            raise ProviderError(ErrorCode.BAD_REQUEST,
                                f"not a sandbox test card; use {SUCCESS[:4]} {SUCCESS[4:8]} ... to succeed")
        with self._locked():
            session = self._read(session_id)
            if session["payment_status"] == "paid":
                return self._status(session)  # paying twice changes nothing
            session["attempts"].append({"card_last4": card[-4:], "at": datetime.now(UTC).isoformat(),
                                        "declined": card in _DECLINES})
            if card not in _DECLINES:
                session["status"], session["payment_status"] = "complete", "paid"
            self._write(session)
        if card in _DECLINES:
            raise ProviderError(ErrorCode.PAYMENT_DECLINED, _DECLINES[card])
        return self._status(session)

    # -- storage -----------------------------------------------------------------------------------------------
    def _path(self, session_id: str) -> Path:
        if not isinstance(session_id, str) or not _SESSION_ID.fullmatch(session_id):
            raise ProviderError(ErrorCode.BAD_REQUEST, "no such checkout session")
        return self.directory / f"{session_id}.json"

    def _read(self, session_id: str) -> dict[str, Any]:
        try:
            return json.loads(self._path(session_id).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ProviderError(ErrorCode.BAD_REQUEST, "no such checkout session") from None

    def _write(self, session: dict[str, Any]) -> None:
        # Write then rename: a reader never sees half a session.
        fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=".tmp-", suffix=".json")
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(session, f)
        os.replace(tmp, self._path(session["id"]))

    @contextmanager
    def _locked(self) -> Iterator[None]:
        with self._thread_lock, open(self.directory / ".lock", "a") as handle:
            if fcntl is not None:
                fcntl.flock(handle, fcntl.LOCK_EX)
            yield

    @staticmethod
    def _status(session: dict[str, Any]) -> PaymentStatus:
        return PaymentStatus(session_id=session["id"], paid=session["payment_status"] == "paid",
                             amount_cents=session["amount_total"], currency=session["currency"],
                             client_reference=session["client_reference_id"],
                             metadata=dict(session["metadata"]))
