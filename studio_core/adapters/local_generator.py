"""The offline ImageGenerator: a procedural renderer behind the same submit / poll / cancel port.

The job id is a digest of the request, so the same request always has the same id and ``poll`` can render
(or re-render, after eviction from the small cache) from the remembered request. Rendering happens lazily on
the first ``poll``, which keeps ``submit`` instant like a real provider's.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections import OrderedDict
from dataclasses import asdict, dataclass

from studio_core.adapters import procedural
from studio_core.ports import ErrorCode, GenerationRequest, JobState, JobStatus, ProviderError

_MAX_JOBS = 2048  # remembered job requests (tiny)
_MAX_IMAGES = 16  # rendered PNGs kept for repeated polls (about 1 MB each)


def job_id_for(request: GenerationRequest) -> str:
    canonical = json.dumps(asdict(request), sort_keys=True, separators=(",", ":"))
    return "local-" + hashlib.sha256(canonical.encode()).hexdigest()[:32]


@dataclass
class _Job:
    request: GenerationRequest
    state: JobState = "queued"


class LocalGenerator:
    name = "local"
    model_version = procedural.RENDERER_VERSION

    def __init__(self, *, max_pixels: int = 4096 * 4096) -> None:
        self._max_pixels = max_pixels
        self._lock = threading.Lock()
        self._jobs: OrderedDict[str, _Job] = OrderedDict()
        self._images: OrderedDict[str, bytes] = OrderedDict()

    def submit(self, request: GenerationRequest) -> str:
        if request.width * request.height > self._max_pixels or min(request.width, request.height) < 64:
            raise ProviderError(ErrorCode.BAD_REQUEST, f"unsupported size {request.width}x{request.height}")
        if not request.prompt.strip():
            raise ProviderError(ErrorCode.BAD_REQUEST, "empty prompt")
        job_id = job_id_for(request)
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None or job.state == "canceled":  # resubmitting a canceled request starts it again
                self._jobs[job_id] = _Job(request)
            self._jobs.move_to_end(job_id)
            while len(self._jobs) > _MAX_JOBS:
                old, _ = self._jobs.popitem(last=False)
                self._images.pop(old, None)
        return job_id

    def poll(self, provider_job_id: str) -> JobStatus:
        with self._lock:
            job = self._jobs.get(provider_job_id)
            cached = self._images.get(provider_job_id)
        if job is None:
            return JobStatus(provider_job_id, "failed",
                             error=ProviderError(ErrorCode.GENERATION_FAILED, "unknown job id"))
        if job.state == "canceled":
            return JobStatus(provider_job_id, "canceled", error=ProviderError(ErrorCode.CANCELED))
        if cached is None:
            # Rendering outside the lock: two threads polling the same new job may both render; the result
            # is identical bytes, so the race is harmless and nobody waits on somebody else's render.
            r = job.request
            cached = procedural.render(r.prompt, r.seed, r.width, r.height)
            with self._lock:
                if job.state == "canceled":  # canceled while we rendered
                    return JobStatus(provider_job_id, "canceled", error=ProviderError(ErrorCode.CANCELED))
                job.state = "succeeded"
                self._images[provider_job_id] = cached
                self._images.move_to_end(provider_job_id)
                while len(self._images) > _MAX_IMAGES:
                    self._images.popitem(last=False)
        return JobStatus(provider_job_id, "succeeded", progress=1.0, image_bytes=cached)

    def cancel(self, provider_job_id: str) -> None:
        with self._lock:
            job = self._jobs.get(provider_job_id)
            # Like a real provider: canceling a finished (or unknown) job changes nothing.
            if job is not None and job.state == "queued":
                job.state = "canceled"
