"""ImageGenerator on Replicate (SDXL by default) through the replicate client.

``submit`` creates the prediction without waiting (no ``Prefer: wait``) and returns its id; ``poll`` asks for
the prediction, maps its status, parses progress from the logs, and on success downloads and validates the
output. A create that timed out after the request was sent is never resent: we look for it among our recent
predictions (same version, same input) and adopt it, or report ``provider_timeout``.

``poll`` raises ``ProviderError`` when it could not *ask* (network, 5xx, rate limit: the job's fate is unknown,
so asking again later is safe) and returns a ``failed`` JobStatus when the job's fate is known and bad.
"""

from __future__ import annotations

from typing import Any

import httpx
import replicate
from replicate.exceptions import ReplicateError
from replicate.prediction import Prediction

from studio_core.adapters import images
from studio_core.adapters._errors import (
    TIMEOUT_ERRORS,
    TRANSPORT_ERRORS,
    UNSENT_ERRORS,
    error_for_status,
    error_for_transport,
    retry_unsent,
)
from studio_core.ports import ErrorCode, GenerationRequest, JobState, JobStatus, ProviderError

_STATES: dict[str, JobState] = {
    "starting": "running",
    "processing": "running",
    "succeeded": "succeeded",
    "failed": "failed",
    "canceled": "canceled",
    "aborted": "canceled",
}
# Replicate's SDXL safety checker reports blocked outputs as a failed prediction with this kind of message.
_BLOCK_MARKERS = ("nsfw", "safety", "sensitive", "flagged")


class _TimeoutTransport(httpx.HTTPTransport):
    """Puts our timeout on every request that arrives without one.

    replicate 1.x's ``predictions.create`` sends ``timeout=None`` (no timeout at all) unless it is asked to
    hold the request open with ``Prefer: wait``; we want neither, so the transport (which the client lets us
    swap) supplies the missing limits.
    """

    def __init__(self, timeout_s: float) -> None:
        super().__init__()
        self._limits = httpx.Timeout(timeout_s).as_dict()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        given = request.extensions.get("timeout") or {}
        request.extensions["timeout"] = {k: given.get(k) if given.get(k) is not None else v
                                         for k, v in self._limits.items()}
        return super().handle_request(request)


class ReplicateGenerator:
    name = "replicate"

    def __init__(self, *, api_token: str, model_version: str, base_url: str | None = None,
                 timeout_s: float = 30.0, max_download_bytes: int = 25 * 1024 * 1024,
                 max_pixels: int = 4096 * 4096) -> None:
        self.model_version = model_version
        self._model, _, self._version = model_version.partition(":")
        if not self._model or "/" not in self._model:
            raise ValueError(f"replicate model version must look like owner/name[:version], not {model_version!r}")
        self._timeout_s = timeout_s
        self._max_bytes = max_download_bytes
        self._max_pixels = max_pixels
        # Plain http is accepted for outputs only when the API itself is plain http (a local stand-in).
        self._schemes = ("https", "http") if (base_url or "").startswith("http://") else ("https",)
        self._client = replicate.Client(api_token=api_token, base_url=base_url,
                                        timeout=httpx.Timeout(timeout_s), transport=_TimeoutTransport(timeout_s))

    @staticmethod
    def input_for(request: GenerationRequest) -> dict[str, Any]:
        body: dict[str, Any] = {
            "prompt": request.prompt,
            "width": request.width,
            "height": request.height,
            "num_outputs": 1,
            "num_inference_steps": request.steps,
            "guidance_scale": request.guidance,
            "seed": request.seed,
            "refine": "expert_ensemble_refiner" if request.refiner else "no_refiner",
        }
        if request.negative_prompt:
            body["negative_prompt"] = request.negative_prompt
        return body

    # -- submit ----------------------------------------------------------------------------------------------
    def submit(self, request: GenerationRequest) -> str:
        body = self.input_for(request)
        try:
            prediction = retry_unsent(lambda: self._create(body))
        except ReplicateError as exc:
            raise _replicate_error(exc) from exc
        except UNSENT_ERRORS as exc:
            raise error_for_transport(exc, "replicate create") from exc
        except (TIMEOUT_ERRORS + TRANSPORT_ERRORS) as exc:
            # The request may have reached Replicate: find it instead of sending it again.
            found = self._find_recent(body)
            if found is not None:
                return found
            unknown = error_for_transport(exc, "replicate create (not resent)")
            # Its fate is unknown, so it is not marked safe to resend.
            raise ProviderError(unknown.code, unknown.detail, retryable=False) from exc
        except ValueError as exc:
            # Created, but the answer was unreadable (malformed JSON): adopt it if we can see it.
            found = self._find_recent(body)
            if found is not None:
                return found
            raise ProviderError(ErrorCode.INVALID_OUTPUT, f"unreadable create response: {exc}"[:300]) from exc
        return prediction.id

    def _create(self, body: dict[str, Any]) -> Prediction:
        if self._version:
            return self._client.predictions.create(version=self._version, input=body)
        # "owner/name" without a version: an official model, run through the model's endpoint.
        return self._client.models.predictions.create(model=self._model, input=body)

    def _find_recent(self, body: dict[str, Any]) -> str | None:
        try:
            page = self._client.predictions.list()
        except (ReplicateError, *TIMEOUT_ERRORS, *TRANSPORT_ERRORS, ValueError):
            return None
        for p in page.results or []:  # newest first
            if self._version and p.version != self._version:
                continue
            if p.input and all(p.input.get(k) == v for k, v in body.items()):
                return p.id
        return None

    # -- poll ------------------------------------------------------------------------------------------------
    def poll(self, provider_job_id: str) -> JobStatus:
        try:
            prediction = retry_unsent(lambda: self._client.predictions.get(provider_job_id))
        except ReplicateError as exc:
            if exc.status == 404:
                return JobStatus(provider_job_id, "failed",
                                 error=ProviderError(ErrorCode.GENERATION_FAILED, "unknown prediction"))
            raise _replicate_error(exc) from exc
        except (TIMEOUT_ERRORS + TRANSPORT_ERRORS) as exc:
            raise error_for_transport(exc, "replicate get") from exc
        except ValueError as exc:  # malformed JSON or a prediction missing fields: we could not ask properly
            raise ProviderError(ErrorCode.PROVIDER_UNAVAILABLE, f"unreadable prediction: {exc}"[:300],
                                retryable=True) from exc

        state = _STATES.get(prediction.status)
        if state is None:
            return JobStatus(provider_job_id, "running")  # an unknown new status: keep asking
        if state == "running":
            progress = prediction.progress
            return JobStatus(provider_job_id, "running",
                             progress=min(0.99, progress.percentage) if progress else 0.0)
        if state == "canceled":
            return JobStatus(provider_job_id, "canceled", error=ProviderError(ErrorCode.CANCELED))
        if state == "failed":
            return JobStatus(provider_job_id, "failed", error=_failure(prediction.error))
        try:
            png = self._fetch_output(prediction.output)
        except ProviderError as exc:
            if exc.retryable:
                raise  # the image exists; a later poll can fetch it
            return JobStatus(provider_job_id, "failed", error=exc)
        return JobStatus(provider_job_id, "succeeded", progress=1.0, image_bytes=png)

    def _fetch_output(self, output: Any) -> bytes:
        first = output[0] if isinstance(output, list) and output else output
        if not isinstance(first, str) or not first:
            raise ProviderError(ErrorCode.INVALID_OUTPUT, f"prediction output is not a URL: {type(output)}")
        raw = images.fetch(first, max_bytes=self._max_bytes, timeout_s=self._timeout_s,
                           allowed_schemes=self._schemes)
        return images.to_png(raw, max_pixels=self._max_pixels).png

    # -- cancel ----------------------------------------------------------------------------------------------
    def cancel(self, provider_job_id: str) -> None:
        try:
            retry_unsent(lambda: self._client.predictions.cancel(provider_job_id))
        except ReplicateError as exc:
            if exc.status == 404:
                return  # nothing to cancel
            raise _replicate_error(exc) from exc
        except (TIMEOUT_ERRORS + TRANSPORT_ERRORS) as exc:
            raise error_for_transport(exc, "replicate cancel") from exc
        except ValueError:
            return  # the cancel went through; we just could not read the echo


def _replicate_error(exc: ReplicateError) -> ProviderError:
    detail = exc.detail or exc.title or "error"
    if exc.status == 422:  # invalid input (e.g. a size the model refuses)
        return ProviderError(ErrorCode.BAD_REQUEST, f"HTTP 422: {detail}"[:500])
    return error_for_status(exc.status or 500, detail)


def _failure(message: str | None) -> ProviderError:
    text = (message or "prediction failed").strip()
    if any(marker in text.lower() for marker in _BLOCK_MARKERS):
        return ProviderError(ErrorCode.BLOCKED_PROMPT, text[:300])
    return ProviderError(ErrorCode.GENERATION_FAILED, text[:300])
