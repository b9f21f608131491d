"""The ports every provider implements, their small result types, and the app's own error codes.

Services depend on these Protocols only; adapters (``studio_core.adapters.*``) implement them. Every adapter
translates its SDK's failures into a ``ProviderError`` carrying one of ``ErrorCode``; the UI explains each
code in plain words (``ERROR_MESSAGES``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Literal, Protocol, runtime_checkable


class ErrorCode(StrEnum):
    PROVIDER_UNAVAILABLE = "provider_unavailable"
    PROVIDER_TIMEOUT = "provider_timeout"
    RATE_LIMITED = "rate_limited"
    BLOCKED_PROMPT = "blocked_prompt"
    INVALID_OUTPUT = "invalid_output"
    AUTH_FAILED = "auth_failed"
    GENERATION_FAILED = "generation_failed"
    CANCELED = "canceled"
    STORAGE_FAILED = "storage_failed"
    PAYMENT_DECLINED = "payment_declined"
    PAYMENT_NOT_COMPLETED = "payment_not_completed"
    BAD_REQUEST = "bad_request"


ERROR_MESSAGES: dict[ErrorCode, str] = {
    ErrorCode.PROVIDER_UNAVAILABLE: "The service is unavailable right now. Please try again in a moment.",
    ErrorCode.PROVIDER_TIMEOUT: "The service took too long to answer. Please try again.",
    ErrorCode.RATE_LIMITED: "The service is busy (rate limited). Please wait a little and try again.",
    ErrorCode.BLOCKED_PROMPT: "The prompt or the result was blocked by the content filter.",
    ErrorCode.INVALID_OUTPUT: "The service returned something that is not a valid result.",
    ErrorCode.AUTH_FAILED: "The service refused our credentials. An admin needs to check the API key.",
    ErrorCode.GENERATION_FAILED: "The image could not be generated.",
    ErrorCode.CANCELED: "The generation was canceled.",
    ErrorCode.STORAGE_FAILED: "The image was made but could not be stored.",
    ErrorCode.PAYMENT_DECLINED: "The payment was declined.",
    ErrorCode.PAYMENT_NOT_COMPLETED: "The payment has not been completed.",
    ErrorCode.BAD_REQUEST: "The request was not valid.",
}


class ProviderError(Exception):
    """A provider call failed. ``code`` is one of ours; ``detail`` is for logs, not for users."""

    def __init__(self, code: ErrorCode, detail: str = "", *, retryable: bool = False) -> None:
        self.code = ErrorCode(code)
        self.detail = detail
        self.retryable = retryable
        super().__init__(f"{self.code.value}: {detail}" if detail else self.code.value)

    @property
    def user_message(self) -> str:
        return ERROR_MESSAGES[self.code]


# -- prompt enhancement -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Enhancement:
    original: str
    enhanced: str
    negative_prompt: str
    added: tuple[str, ...]  # short phrases that were added (for the diff the UI shows)
    provider: str


@runtime_checkable
class PromptEnhancer(Protocol):
    name: str

    def enhance(self, prompt: str, *, template_hint: str | None = None) -> Enhancement: ...


# -- image generation ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class GenerationRequest:
    prompt: str
    negative_prompt: str
    width: int
    height: int
    steps: int
    guidance: float
    seed: int
    refiner: bool = False


JobState = Literal["queued", "running", "succeeded", "failed", "canceled"]


@dataclass(frozen=True)
class JobStatus:
    provider_job_id: str
    state: JobState
    progress: float = 0.0  # 0..1
    image_bytes: bytes | None = None  # set when succeeded: validated, re-encoded PNG
    error: ProviderError | None = None


@runtime_checkable
class ImageGenerator(Protocol):
    name: str
    model_version: str

    def submit(self, request: GenerationRequest) -> str:
        """Start the job without waiting for it; return the provider's job id."""
        ...

    def poll(self, provider_job_id: str) -> JobStatus:
        """The job's state now. Raises ProviderError when the provider could not be *asked* (network,
        timeout, 5xx, rate limit: the job's fate is unknown, so polling again later is safe); returns a
        ``failed`` JobStatus with ``error`` when the fate is known (failed, blocked, invalid output, unknown
        id)."""
        ...

    def cancel(self, provider_job_id: str) -> None:
        """Ask the provider to stop the job; canceling a finished or unknown job is a no-op."""
        ...


# -- storage ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class StoredImage:
    image_key: str
    thumbnail_key: str
    bytes: int
    width: int
    height: int


@runtime_checkable
class ImageStore(Protocol):
    name: str

    def save(self, owner_id: int, name: str, png_bytes: bytes) -> StoredImage: ...

    def delete(self, image_key: str) -> None: ...

    def url(self, image_key: str) -> str:
        """A URL (or local path) that displays the full image."""
        ...

    def thumbnail_url(self, image_key: str) -> str: ...

    def read(self, image_key: str) -> bytes:
        """The full image bytes (for downloads)."""
        ...


# -- payments -----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class CheckoutSession:
    session_id: str
    redirect_url: str | None  # where to send the browser (None for the sandbox: the app shows its own form)


@dataclass(frozen=True)
class PaymentStatus:
    session_id: str
    paid: bool
    amount_cents: int
    currency: str
    client_reference: str  # our user id / purchase reference, echoed back by the gateway
    metadata: dict[str, str] = field(default_factory=dict)


@runtime_checkable
class PaymentGateway(Protocol):
    name: str

    def create_checkout(self, *, pack_id: str, pack_name: str, credits: int, amount_cents: int,
                        currency: str, client_reference: str, success_url: str,
                        cancel_url: str) -> CheckoutSession: ...

    def retrieve(self, session_id: str) -> PaymentStatus:
        """Ask the gateway (server side) what happened to a session; never trust the return URL alone."""
        ...


@runtime_checkable
class SandboxCheckout(Protocol):
    """A gateway whose checkout happens inside the app with published test card numbers (the offline sandbox):
    the wallet page shows a card form instead of redirecting to the gateway."""

    test_cards: dict[str, str]  # card number -> what happens when it is used

    def pay_with_test_card(self, session_id: str, card_number: str) -> PaymentStatus:
        """Pay a session; raises ProviderError(PAYMENT_DECLINED) for a declining card."""
        ...
