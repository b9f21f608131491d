"""Stand-in for the Stripe API's Checkout Sessions, as the ``stripe`` SDK (StripeClient, v1) calls them:

- ``POST /v1/checkout/sessions``: form-encoded (``line_items[0][price_data][unit_amount]=500``), Bearer auth,
  ``Idempotency-Key`` honoured like Stripe does (the same key returns the first answer again);
- ``GET /v1/checkout/sessions/{id}``: the session as JSON, 404 ``resource_missing`` for an unknown id.

A session starts ``open`` / ``unpaid``; the test plays the customer with ``pay(id)`` (or ``tamper(id, ...)``).
Errors are Stripe's ``{"error": {"type", "code", "message"}}``. Failures are injected with ``fail(...)`` from
the base class; every request is recorded.
"""

from __future__ import annotations

import itertools
import re
import threading
import time
from typing import Any
from urllib.parse import parse_qsl

from tests.fakes.base import FakeServer, Recorded, Response

_KEY_PART = re.compile(r"\[([^\]]*)\]")


def decode_form(body: bytes) -> dict[str, Any]:
    """Stripe's form encoding back into nested dicts and lists."""
    out: dict[str, Any] = {}
    for raw_key, value in parse_qsl(body.decode(), keep_blank_values=True):
        head = raw_key.split("[", 1)[0]
        parts = [head, *_KEY_PART.findall(raw_key[len(head):])]
        node: Any = out
        for part, nxt in itertools.pairwise(parts):
            container: Any = [] if nxt.isdigit() else {}
            if isinstance(node, list):
                index = int(part)
                while len(node) <= index:
                    node.append(None)
                node[index] = node[index] if node[index] is not None else container
                node = node[index]
            else:
                node = node.setdefault(part, container)
        last = parts[-1]
        if isinstance(node, list):
            index = int(last)
            while len(node) <= index:
                node.append(None)
            node[index] = value
        else:
            node[last] = value
    return out


class FakeStripe(FakeServer):
    def __init__(self, api_key: str = "sk_test_fake_key_123") -> None:
        super().__init__()
        self.api_key = api_key
        self.sessions: dict[str, dict[str, Any]] = {}
        self._idempotent: dict[str, Response] = {}
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self.route("POST", r"/v1/checkout/sessions", self._create)
        self.route("GET", r"/v1/checkout/sessions/(?P<id>[^/]+)", self._retrieve)

    # -- the customer's side -------------------------------------------------------------------------------------
    def pay(self, session_id: str) -> None:
        self.tamper(session_id, status="complete", payment_status="paid")

    def tamper(self, session_id: str, **fields: Any) -> None:
        with self._lock:
            self.sessions[session_id].update(fields)

    # -- API ---------------------------------------------------------------------------------------------------
    def error_body(self, status: int) -> Any:
        kind = "invalid_request_error" if 400 <= status < 500 and status != 429 else "api_error"
        return {"error": {"type": kind, "message": f"injected {status}"}}

    def _unauthorized(self, rec: Recorded) -> Response | None:
        if rec.headers.get("Authorization") != f"Bearer {self.api_key}":
            return Response.json({"error": {"type": "invalid_request_error",
                                            "message": "Invalid API Key provided"}}, 401)
        return None

    def _create(self, rec: Recorded, _m: re.Match[str]) -> Response:
        if (denied := self._unauthorized(rec)) is not None:
            return denied
        key = rec.headers.get("Idempotency-Key")
        with self._lock:
            if key and key in self._idempotent:
                return self._idempotent[key]
            form = decode_form(rec.body)
            items = form.get("line_items") or []
            missing = [p for p in ("mode", "success_url", "cancel_url") if not form.get(p)]
            if missing or not items:
                return Response.json({"error": {"type": "invalid_request_error", "code": "parameter_missing",
                                                "message": f"Missing required param: {(missing or ['line_items'])[0]}."}},
                                     400)
            price = items[0]["price_data"]
            session_id = f"cs_test_{next(self._ids):04d}{'a' * 40}"
            session = {
                "id": session_id, "object": "checkout.session", "livemode": False, "mode": form["mode"],
                "url": f"{self.url}/c/pay/{session_id}", "status": "open", "payment_status": "unpaid",
                "amount_total": int(price["unit_amount"]) * int(items[0].get("quantity", 1)),
                "currency": price["currency"], "client_reference_id": form.get("client_reference_id"),
                "metadata": form.get("metadata", {}), "success_url": form["success_url"],
                "cancel_url": form["cancel_url"], "created": int(time.time()),
                "line_items_requested": items,
            }
            self.sessions[session_id] = session
            response = Response.json(session)
            if key:
                self._idempotent[key] = response
            return response

    def _retrieve(self, rec: Recorded, m: re.Match[str]) -> Response:
        if (denied := self._unauthorized(rec)) is not None:
            return denied
        with self._lock:
            session = self.sessions.get(m["id"])
            if session is None:
                return Response.json({"error": {"type": "invalid_request_error", "code": "resource_missing",
                                                "param": "session",
                                                "message": f"No such checkout.session: '{m['id']}'"}}, 404)
            return Response.json(dict(session))
