"""Plain-Python stand-ins for the generation ports, scripted per test (fakes, not mocks)."""

from __future__ import annotations

import io
import threading
from dataclasses import dataclass, field

from PIL import Image

from studio_core.ports import ErrorCode, GenerationRequest, JobStatus, ProviderError, StoredImage


def png(width: int = 64, height: int = 64, colour=(120, 80, 200)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (width, height), colour).save(buf, "PNG")
    return buf.getvalue()


@dataclass
class ScriptedGenerator:
    """Each submitted job follows ``script``: a list of poll results ('running', 'succeeded', 'failed',
    'canceled', 'raise:<code>', 'hang'). ``submit_error`` makes submit fail."""

    script: list[str] = field(default_factory=lambda: ["running", "succeeded"])
    submit_error: ErrorCode | None = None
    name: str = "scripted"
    model_version: str = "scripted-1"
    submitted: list[GenerationRequest] = field(default_factory=list)
    canceled: list[str] = field(default_factory=list)
    polls: dict[str, int] = field(default_factory=dict)
    release: threading.Event = field(default_factory=threading.Event)

    def submit(self, request: GenerationRequest) -> str:
        if self.submit_error:
            raise ProviderError(self.submit_error, "scripted submit failure")
        self.submitted.append(request)
        job_id = f"p{len(self.submitted)}"
        self.polls[job_id] = 0
        return job_id

    def poll(self, provider_job_id: str) -> JobStatus:
        if provider_job_id not in self.polls:
            return JobStatus(provider_job_id, "failed", error=ProviderError(ErrorCode.GENERATION_FAILED))
        i = self.polls[provider_job_id]
        self.polls[provider_job_id] = i + 1
        step = self.script[min(i, len(self.script) - 1)]
        if step == "hang":
            self.release.wait(10)
            step = "running"
        if step.startswith("raise:"):
            code = ErrorCode(step.split(":", 1)[1])
            raise ProviderError(code, "scripted poll failure", retryable=code in (
                ErrorCode.PROVIDER_TIMEOUT, ErrorCode.PROVIDER_UNAVAILABLE, ErrorCode.RATE_LIMITED))
        if step == "succeeded":
            return JobStatus(provider_job_id, "succeeded", progress=1.0, image_bytes=png())
        if step == "failed":
            return JobStatus(provider_job_id, "failed", error=ProviderError(ErrorCode.BLOCKED_PROMPT))
        if step == "canceled":
            return JobStatus(provider_job_id, "canceled")
        return JobStatus(provider_job_id, "running", progress=min(0.9, 0.3 * (i + 1)))

    def cancel(self, provider_job_id: str) -> None:
        self.canceled.append(provider_job_id)


@dataclass
class MemoryStore:
    name: str = "memory"
    files: dict[str, bytes] = field(default_factory=dict)
    fail_next: bool = False

    def save(self, owner_id: int, name: str, png_bytes: bytes) -> StoredImage:
        if self.fail_next:
            self.fail_next = False
            raise ProviderError(ErrorCode.STORAGE_FAILED, "scripted storage failure")
        key = f"u{owner_id}/{name}.png"
        self.files[key] = png_bytes
        self.files[key + ".thumb"] = png_bytes[:10]
        return StoredImage(key, key + ".thumb", len(png_bytes), 64, 64)

    def delete(self, image_key: str) -> None:
        self.files.pop(image_key, None)
        self.files.pop(image_key + ".thumb", None)

    def url(self, image_key: str) -> str:
        return f"memory://{image_key}"

    def thumbnail_url(self, image_key: str) -> str:
        return f"memory://{image_key}.thumb"

    def read(self, image_key: str) -> bytes:
        return self.files[image_key]
