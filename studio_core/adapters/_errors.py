"""Shared translation of transport failures and HTTP statuses into our ``ErrorCode``.

Every adapter funnels its SDK's exceptions through here so that "401 means auth_failed" and "a read timeout
is provider_timeout" are decided once. The SDKs use different HTTP stacks (replicate: httpx; google-genai:
httpx or its fork httpx2 when installed; cloudinary: urllib3), so the exception families are collected here.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import TypeVar

import httpx
import urllib3.exceptions as u3

from studio_core.ports import ErrorCode, ProviderError

try:  # google-genai prefers httpx2 when it is installed; its exceptions are a parallel hierarchy.
    import httpx2 as _httpx2
except ImportError:  # pragma: no cover - depends on the environment
    _httpx2 = None

T = TypeVar("T")


def _family(name: str) -> tuple[type[BaseException], ...]:
    found: list[type[BaseException]] = [getattr(httpx, name)]
    if _httpx2 is not None and hasattr(_httpx2, name):
        found.append(getattr(_httpx2, name))
    return tuple(found)


# Failures where the request provably never reached the server (no connection was made): safe to retry.
UNSENT_ERRORS: tuple[type[BaseException], ...] = (
    _family("ConnectError") + _family("ConnectTimeout") + _family("PoolTimeout")
    + (u3.NewConnectionError, u3.ConnectTimeoutError)
)
TIMEOUT_ERRORS: tuple[type[BaseException], ...] = (
    _family("TimeoutException") + (u3.TimeoutError, socket.timeout, TimeoutError)
)
TRANSPORT_ERRORS: tuple[type[BaseException], ...] = (
    _family("TransportError") + (u3.HTTPError, ConnectionError)
)


def code_for_status(status: int) -> ErrorCode:
    if status in (401, 403):
        return ErrorCode.AUTH_FAILED
    if status in (420, 429):  # Cloudinary uses 420 for rate limits
        return ErrorCode.RATE_LIMITED
    if status in (408, 504):
        return ErrorCode.PROVIDER_TIMEOUT
    if status >= 500:
        return ErrorCode.PROVIDER_UNAVAILABLE
    return ErrorCode.BAD_REQUEST


def error_for_status(status: int, detail: str) -> ProviderError:
    code = code_for_status(status)
    retryable = code in (ErrorCode.RATE_LIMITED, ErrorCode.PROVIDER_UNAVAILABLE, ErrorCode.PROVIDER_TIMEOUT)
    return ProviderError(code, f"HTTP {status}: {detail}"[:500], retryable=retryable)


def error_for_transport(exc: BaseException, what: str) -> ProviderError:
    """A network-level failure (no HTTP status). Only unsent failures are marked safe to retry blindly."""
    if isinstance(exc, UNSENT_ERRORS):
        return ProviderError(ErrorCode.PROVIDER_UNAVAILABLE, f"{what}: could not connect ({exc!r})",
                             retryable=True)
    if isinstance(exc, TIMEOUT_ERRORS):
        return ProviderError(ErrorCode.PROVIDER_TIMEOUT, f"{what}: timed out ({exc!r})", retryable=True)
    return ProviderError(ErrorCode.PROVIDER_UNAVAILABLE, f"{what}: {exc!r}", retryable=True)


def retry_unsent(call: Callable[[], T], *, attempts: int = 2) -> T:
    """Run ``call``; repeat it only when the previous attempt provably never reached the provider.

    Anything else (a timeout after the request was sent, an HTTP error) propagates at once: resending a
    request the provider may have received could start a second, paid job.
    """
    for attempt in range(1, attempts + 1):
        try:
            return call()
        except UNSENT_ERRORS:
            if attempt == attempts:
                raise
    raise AssertionError("unreachable")  # pragma: no cover
