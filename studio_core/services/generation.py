"""Image generation: one request = one ``generated_images`` row, paid for through a ledger hold.

Lifecycle: validate -> moderate the prompt -> check limits -> reserve credits (hold ``gen:<request key>``) ->
insert the job (queued) -> a worker submits it to the provider, polls, stores the image, posts the hold
(the charge) and marks it succeeded. Any failure, timeout, cancel or blocked output voids the hold: nothing
is charged, and the row records an error code and a plain-words message.

All job state lives in the database. A worker holds a lease on the row (owner + expiry, renewed while it
works), so with several processes a job is picked up by another one only after its lease lapsed; a job that
never reached the provider is voided, one that did is polled again (``resume_unfinished``).
"""

from __future__ import annotations

import logging
import math
import os
import re
import secrets
import socket
import threading
import unicodedata
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from studio_core.config import Settings, Tier
from studio_core.db import DATABASE_DOWN, Database
from studio_core.models import GeneratedImage, ImageTemplate, utcnow
from studio_core.ports import (
    ERROR_MESSAGES,
    ErrorCode,
    GenerationRequest,
    ImageGenerator,
    ImageStore,
    JobStatus,
    ProviderError,
)
from studio_core.services.analytics import count_ended_generations, generation_latency_ms
from studio_core.services.ledger import HoldNotPending, InsufficientCredits, LedgerService

log = logging.getLogger(__name__)

ASPECT_RATIOS: dict[str, tuple[int, int]] = {
    "1:1": (1, 1), "4:3": (4, 3), "3:4": (3, 4), "3:2": (3, 2), "2:3": (2, 3), "16:9": (16, 9), "9:16": (9, 16),
}
MAX_SEED = 2**31 - 1
REQUEST_KEY_RE = re.compile(r"^[A-Za-z0-9_.:-]{8,80}$")
LEASE_S = 60
ACTIVE = ("queued", "running")
TERMINAL = ("succeeded", "failed", "canceled")
# Failures that say "the provider is not answering" (as opposed to "this prompt / this image went wrong"):
# enough of them in a row and the studio offers the offline renderer instead.
OUTAGE_CODES = (ErrorCode.PROVIDER_UNAVAILABLE.value, ErrorCode.PROVIDER_TIMEOUT.value,
                ErrorCode.RATE_LIMITED.value, ErrorCode.AUTH_FAILED.value)


class GenerationError(Exception):
    """A generation request was refused before anything was charged; ``str(err)`` is for the user."""


class PromptRefused(GenerationError):
    def __init__(self, message: str, term: str | None = None) -> None:
        super().__init__(message)
        self.term = term


class LimitReached(GenerationError):
    pass


class RequestConflict(GenerationError):
    pass


class JobNotFound(GenerationError, LookupError):
    pass


@dataclass(frozen=True)
class GenerateRequest:
    prompt: str
    tier: str
    negative_prompt: str = ""
    enhanced_prompt: str | None = None  # set when the user generates from the enhanced version
    aspect_ratio: str = "1:1"
    seed: int | None = None  # None: a random seed is drawn and recorded
    template_id: int | None = None
    remixed_from_id: int | None = None
    renderer: str | None = None  # a generator's name (GenerationService.renderers); None: the configured one


@dataclass(frozen=True)
class ProviderHealth:
    """Whether the configured image generator is answering, judged from the last jobs it ended (in the
    database, so every app process sees the same)."""

    provider: str
    outage: bool
    recent_failures: int  # ended in an outage error, newest first, before the last success
    fallback: str | None  # the offline renderer people can switch to, when the configured one is not it


@dataclass(frozen=True)
class JobView:
    id: int
    owner_id: int
    request_key: str
    status: str
    progress: float
    prompt: str
    enhanced_prompt: str | None
    final_prompt: str
    negative_prompt: str
    template_id: int | None
    template_title: str | None
    remixed_from_id: int | None
    tier: str
    width: int
    height: int
    seed: int
    provider: str
    model_version: str
    cost: int  # credits charged: 0 unless it succeeded
    error_code: str | None
    error_message: str | None
    image_key: str | None
    thumbnail_key: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None

    @property
    def is_active(self) -> bool:
        return self.status in ACTIVE

    @property
    def charged(self) -> bool:
        return self.status == "succeeded" and self.cost > 0

    @property
    def aspect_ratio(self) -> str:
        """The named ratio closest to the stored size (sizes are rounded to multiples of 64, so 16:9 is stored
        as 1344x768, whose reduced ratio would read 7:4)."""
        shape = self.width / self.height
        return min(ASPECT_RATIOS, key=lambda name: abs(math.log(shape * ASPECT_RATIOS[name][1]
                                                                / ASPECT_RATIOS[name][0])))

    @property
    def seconds_taken(self) -> float | None:
        if self.started_at is None or self.finished_at is None:
            return None
        return max(0.0, (self.finished_at - self.started_at).total_seconds())

    def recipe(self) -> dict:
        """Everything needed to reproduce the image, as plain data (for copying and sharing)."""
        return {"prompt": self.final_prompt, "original_prompt": self.prompt, "negative_prompt": self.negative_prompt,
                "template": self.template_title, "tier": self.tier, "width": self.width, "height": self.height,
                "seed": self.seed, "provider": self.provider, "model_version": self.model_version}

    @property
    def failed_for_outage(self) -> bool:
        """It failed because the provider did not answer (not because of the prompt or the image)."""
        return self.status == "failed" and self.error_code in OUTAGE_CODES

    def as_request(self, *, same_seed: bool = True, renderer: str | None = None) -> GenerateRequest:
        """This job's recipe as a new request (Retry keeps the seed, Vary seed draws a new one); ``renderer``
        None renders with the configured generator, whatever rendered this one."""
        return GenerateRequest(prompt=self.prompt, tier=self.tier, negative_prompt=self.negative_prompt,
                               enhanced_prompt=self.enhanced_prompt,
                               aspect_ratio=self.aspect_ratio if self.aspect_ratio in ASPECT_RATIOS else "1:1",
                               seed=self.seed if same_seed else None, template_id=self.template_id,
                               remixed_from_id=self.remixed_from_id, renderer=renderer)


def new_request_key() -> str:
    """Minted once per Generate click and kept in session state, so reruns and double clicks reuse it."""
    return "req-" + uuid.uuid4().hex


def clean_text(text: str) -> str:
    """Control and format characters out (they hide text from moderation and from people), spaces folded."""
    kept = "".join(" " if unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp") else ch for ch in text or "")
    return " ".join(kept.split())


def size_for(tier: Tier, aspect_ratio: str) -> tuple[int, int]:
    """The tier's pixel budget in the requested shape, in multiples of 64 (what SDXL wants)."""
    if aspect_ratio not in ASPECT_RATIOS:
        raise GenerationError(f"Unknown aspect ratio {aspect_ratio!r}; choose one of {', '.join(ASPECT_RATIOS)}.")
    rw, rh = ASPECT_RATIOS[aspect_ratio]
    budget = tier.width * tier.height
    width = max(256, round(math.sqrt(budget * rw / rh) / 64) * 64)
    height = max(256, round(math.sqrt(budget * rh / rw) / 64) * 64)
    return width, height


def _with_template():
    return select(GeneratedImage, ImageTemplate.title).outerjoin(
        ImageTemplate, ImageTemplate.id == GeneratedImage.template_id)


def _view(row: GeneratedImage, template_title: str | None) -> JobView:
    return JobView(
        id=row.id, owner_id=row.owner_id, request_key=row.request_key, status=row.status, progress=row.progress,
        prompt=row.prompt, enhanced_prompt=row.enhanced_prompt, final_prompt=row.final_prompt,
        negative_prompt=row.negative_prompt, template_id=row.template_id, template_title=template_title,
        remixed_from_id=row.remixed_from_id, tier=row.tier, width=row.width, height=row.height, seed=row.seed,
        provider=row.provider, model_version=row.model_version, cost=row.cost, error_code=row.error_code,
        error_message=row.error_message, image_key=row.image_key, thumbnail_key=row.thumbnail_key,
        created_at=row.created_at, started_at=row.started_at, finished_at=row.finished_at)


class GenerationService:
    """``generator`` renders by default; ``fallback`` (the offline renderer, when the configured generator is a
    real one) is there for people to switch to while the real one is down. A job keeps the name of the
    generator it was sent to, and every later step (polling, canceling, resuming) goes back to that one."""

    def __init__(self, db: Database, settings: Settings, ledger: LedgerService, generator: ImageGenerator,
                 store: ImageStore, *, fallback: ImageGenerator | None = None,
                 clock: Callable[[], datetime] = utcnow, poll_interval_s: float = 1.0,
                 lease_s: int = LEASE_S, worker_id: str | None = None,
                 on_succeeded: Callable[[JobView], None] | None = None,
                 on_failed: Callable[[JobView], None] | None = None) -> None:
        self.db = db
        self.settings = settings
        self.ledger = ledger
        self.generator = generator
        self.fallback = fallback if fallback is not None and fallback.name != generator.name else None
        self._generators = {g.name: g for g in (generator, self.fallback) if g is not None}
        self.store = store
        self.clock = clock
        self.poll_interval_s = poll_interval_s
        self.lease_s = lease_s
        self.worker_id = worker_id or f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"
        self.on_succeeded = on_succeeded
        self.on_failed = on_failed  # once, when a job ends "failed" (not canceled): analytics
        # Set by bootstrap to the process's worker pool; without one (tests, CLI) jobs wait for run_job().
        self.dispatch: Callable[[int], None] | None = None
        self._stop = threading.Event()
        self._running: set[int] = set()
        self._running_lock = threading.Lock()

    # -- asking ----------------------------------------------------------------------------------------------
    def tier(self, name: str) -> Tier:
        try:
            return self.settings.tiers[name]
        except KeyError:
            raise GenerationError(f"Unknown quality tier {name!r}.") from None

    def quote(self, tier: str) -> int:
        return self.tier(tier).credits

    @property
    def renderers(self) -> list[str]:
        """The generators a request may name: the configured one first, then the offline fallback if any."""
        return list(self._generators)

    def _generator(self, name: str | None) -> ImageGenerator:
        if name is None:
            return self.generator
        try:
            return self._generators[name]
        except KeyError:
            raise GenerationError(f"The renderer {name!r} is not available here; choose one of "
                                  f"{', '.join(self._generators)}.") from None

    def provider_health(self) -> ProviderHealth:
        """An outage is ``provider_outage_failures`` jobs in a row, within ``provider_outage_window_s``, that the
        configured generator ended with an outage error (unavailable, timeout, rate limited, auth). One
        success ends it. Read from the newest ended jobs only, through the created_at index."""
        name = self.generator.name
        needed = self.settings.provider_outage_failures
        since = self.clock() - timedelta(seconds=self.settings.provider_outage_window_s)
        with self.db.read() as s:
            # status || '': SQLite would otherwise pick the (status, provider, ...) index and sort every ended
            # job there ever was; the newest few through the created_at index are what this asks (~200x faster)
            rows = s.execute(select(GeneratedImage.status, GeneratedImage.error_code)
                             .where(GeneratedImage.created_at >= since, GeneratedImage.provider == name,
                                    (GeneratedImage.status + "").in_(("succeeded", "failed")))
                             .order_by(GeneratedImage.created_at.desc(), GeneratedImage.id.desc())
                             .limit(needed)).all()
        failures = 0
        for row in rows:
            if row.status != "failed" or row.error_code not in OUTAGE_CODES:
                break
            failures += 1
        fallback = self.fallback.name if self.fallback is not None else None
        return ProviderHealth(provider=name, outage=failures >= needed, recent_failures=failures, fallback=fallback)

    def moderate(self, prompt: str) -> str:
        """The cleaned prompt, or PromptRefused naming the rule (and the term) that fired. Runs before any
        credit moves."""
        cleaned = clean_text(prompt)
        if not cleaned:
            raise PromptRefused("Please write a prompt first.")
        if len(cleaned) > self.settings.prompt_max_chars:
            raise PromptRefused(f"The prompt is {len(cleaned)} characters long; the limit is "
                                f"{self.settings.prompt_max_chars}.")
        lowered = cleaned.casefold()
        for term in self.settings.blocked_terms:
            t = clean_text(term).casefold()
            if t and re.search(rf"(?<!\w){re.escape(t)}(?!\w)", lowered):
                raise PromptRefused(f"The prompt contains a blocked term: “{term}”. Please rephrase it.", term)
        return cleaned

    # -- submitting ------------------------------------------------------------------------------------------
    def submit(self, user_id: int, request: GenerateRequest, request_key: str) -> JobView:
        """Validate, moderate, reserve and queue. Same key + same request returns the same job (a double click
        or a rerun); same key + a different request raises RequestConflict. Nothing is charged here."""
        if not REQUEST_KEY_RE.match(request_key or ""):
            raise GenerationError("Invalid request key.")
        existing = self._by_key(request_key)
        tier = self.tier(request.tier)
        prompt = self.moderate(request.prompt)
        enhanced = self.moderate(request.enhanced_prompt) if request.enhanced_prompt else None
        final_prompt = enhanced or prompt
        negative = clean_text(request.negative_prompt)
        if len(negative) > self.settings.prompt_max_chars:
            raise PromptRefused(f"The negative prompt is longer than {self.settings.prompt_max_chars} characters.")
        if request.seed is not None and not 0 <= request.seed <= MAX_SEED:
            raise GenerationError(f"The seed must be a whole number from 0 to {MAX_SEED}.")
        width, height = size_for(tier, request.aspect_ratio)
        generator = self._generator(request.renderer)
        identity = {"final_prompt": final_prompt, "negative": negative, "tier": tier.name, "w": width,
                    "h": height, "seed": request.seed, "template": request.template_id,
                    "remix": request.remixed_from_id, "renderer": generator.name}
        if existing is not None:
            return self._same_request(existing, user_id, identity)
        self._check_template(request.template_id)
        self._check_limits(user_id)
        self.ledger.ensure_monthly_allowance(user_id)
        hold = self.ledger.reserve(user_id, tier.credits, f"gen:{request_key}", reference=f"image:{request_key}",
                                   request=identity,
                                   ttl_s=int(self.settings.generation_timeout_s) + self.settings.hold_ttl_s)
        now = self.clock()
        try:
            with self.db.write() as s:
                row = GeneratedImage(
                    owner_id=user_id, request_key=request_key, prompt=prompt, enhanced_prompt=enhanced,
                    final_prompt=final_prompt, negative_prompt=negative, template_id=request.template_id,
                    remixed_from_id=request.remixed_from_id, tier=tier.name, width=width, height=height,
                    seed=request.seed if request.seed is not None else secrets.randbelow(MAX_SEED + 1),
                    provider=generator.name, model_version=generator.model_version,
                    status="queued", cost=tier.credits, hold_id=hold.id, created_at=now, queued_at=now,
                    lease_owner=self.worker_id, lease_expires_at=now + timedelta(seconds=self.lease_s))
                s.add(row)
                s.flush()
                if request.template_id is not None:
                    s.execute(update(ImageTemplate).where(ImageTemplate.id == request.template_id)
                              .values(use_count=ImageTemplate.use_count + 1))
                job_id = row.id
        except IntegrityError:
            # A concurrent double click inserted the row first; the hold is theirs too (same key).
            existing = self._by_key(request_key)
            if existing is None:
                self.ledger.void(hold.id)
                raise
            return self._same_request(existing, user_id, identity)
        except Exception:
            self.ledger.void(hold.id)  # nothing half-written: no job, no reservation
            raise
        if self.dispatch is not None:
            self.dispatch(job_id)
        return self.get(user_id, job_id)

    def _same_request(self, row: JobView, user_id: int, identity: dict) -> JobView:
        same = (row.owner_id == user_id and row.final_prompt == identity["final_prompt"]
                and row.negative_prompt == identity["negative"] and row.tier == identity["tier"]
                and (row.width, row.height) == (identity["w"], identity["h"])
                and (identity["seed"] is None or identity["seed"] == row.seed)
                and row.template_id == identity["template"] and row.provider == identity["renderer"])
        if not same:
            raise RequestConflict("This request was already sent with different settings. Start a new one.")
        return row

    def _check_template(self, template_id: int | None) -> None:
        if template_id is None:
            return
        with self.db.read() as s:
            active = s.scalar(select(ImageTemplate.active).where(ImageTemplate.id == template_id))
        if not active:
            raise GenerationError("That template is no longer available; pick another one.")

    def _check_limits(self, user_id: int) -> None:
        now = self.clock()
        with self.db.read() as s:
            running = s.scalar(select(func.count()).select_from(GeneratedImage).where(
                GeneratedImage.owner_id == user_id, GeneratedImage.status.in_(ACTIVE)))
            recent = s.scalar(select(func.count()).select_from(GeneratedImage).where(
                GeneratedImage.owner_id == user_id, GeneratedImage.created_at > now - timedelta(minutes=1)))
        limit = self.settings.max_concurrent_jobs_per_user
        if running >= limit:
            raise LimitReached(f"You already have {running} image{'s' if running != 1 else ''} in progress "
                               f"(the limit is {limit}). Wait for one to finish.")
        if recent >= self.settings.max_jobs_per_minute:
            raise LimitReached(f"You started {recent} images in the last minute, the most allowed. "
                               "Please wait a moment.")

    # -- reading ---------------------------------------------------------------------------------------------
    def _by_key(self, request_key: str) -> JobView | None:
        with self.db.read() as s:
            row = s.execute(_with_template()
                            .where(GeneratedImage.request_key == request_key)).first()
            return _view(*row) if row else None

    def get(self, user_id: int, job_id: int) -> JobView:
        """A user's own job; another user's job is reported as not found (no existence leak)."""
        with self.db.read() as s:
            row = s.execute(_with_template()
                            .where(GeneratedImage.id == job_id, GeneratedImage.owner_id == user_id,
                                   GeneratedImage.deleted_at.is_(None))).first()
            if row is None:
                raise JobNotFound("That image does not exist or is not yours.")
            return _view(*row)

    def recent(self, user_id: int, limit: int = 6) -> list[JobView]:
        with self.db.read() as s:
            rows = s.execute(_with_template()
                             .where(GeneratedImage.owner_id == user_id, GeneratedImage.deleted_at.is_(None))
                             .order_by(GeneratedImage.created_at.desc(), GeneratedImage.id.desc())
                             .limit(limit)).all()
            return [_view(*r) for r in rows]

    def image_url(self, job: JobView) -> str | None:
        return self.store.url(job.image_key) if job.image_key else None

    def thumbnail_url(self, job: JobView) -> str | None:
        return self.store.thumbnail_url(job.image_key) if job.image_key else None

    def image_bytes(self, user_id: int, job_id: int) -> bytes:
        job = self.get(user_id, job_id)
        if job.status != "succeeded" or not job.image_key:
            raise JobNotFound("This image has no file.")
        return self.store.read(job.image_key)

    # -- canceling -------------------------------------------------------------------------------------------
    def cancel(self, user_id: int, job_id: int) -> JobView:
        """Stop a queued or running job; its hold is voided at once (never charged). The worker notices the
        status and cancels at the provider."""
        job = self.get(user_id, job_id)
        if not job.is_active:
            return job
        with self.db.write() as s:
            changed = self._end(s, job_id, "canceled", cost=0, error_code=ErrorCode.CANCELED.value,
                                error_message="You canceled this generation. Not charged.")
        if changed:
            self._void_hold(job_id)
        return self.get(user_id, job_id)

    # -- working (worker threads; never Streamlit) -----------------------------------------------------------
    def run_job(self, job_id: int) -> None:
        """Drive one job to an end. Safe to call for any job: without the lease it returns at once, and so does
        a second call while this process already works the job (the lease is per process, not per thread)."""
        with self._running_lock:
            if job_id in self._running:
                return
            self._running.add(job_id)
        try:
            self._run_leased(job_id)
        except DATABASE_DOWN:
            # Nothing can be recorded while the database is away. The job keeps its hold and, once its lease
            # lapses, is resumed (polled again if it reached the provider, voided if not) by the next
            # maintenance round or restart: never charged twice, never left pending for good.
            log.warning("generation job %s paused: the database is not answering", job_id, exc_info=True)
        finally:
            with self._running_lock:
                self._running.discard(job_id)

    def _run_leased(self, job_id: int) -> None:
        if not self._acquire(job_id):
            return
        try:
            self._work(job_id)
        except DATABASE_DOWN:
            raise
        except Exception as exc:  # noqa: BLE001 - a worker must never die with a hold left pending
            log.exception("generation job %s crashed", job_id)
            self._fail(job_id, ProviderError(ErrorCode.GENERATION_FAILED, repr(exc)))
        finally:
            # A finished job's last update already dropped the lease; only an interrupted one still holds it.
            try:
                if self._row(job_id).status in ACTIVE:
                    self._release_lease(job_id)
            except DATABASE_DOWN:
                pass  # the lease lapses by itself

    def _work(self, job_id: int) -> None:
        job = self._row(job_id)
        if job.status not in ACTIVE:
            return
        generator = self._generators.get(job.provider)
        if generator is None:  # sent to a generator this process does not run (the configuration changed)
            self._fail(job_id, ProviderError(ErrorCode.PROVIDER_UNAVAILABLE, f"no {job.provider!r} generator"))
            return
        provider_job_id = job.provider_job_id
        if provider_job_id is None:
            request = GenerationRequest(prompt=job.final_prompt, negative_prompt=job.negative_prompt,
                                        width=job.width, height=job.height, steps=self.tier(job.tier).steps,
                                        guidance=self.tier(job.tier).guidance, seed=job.seed,
                                        refiner=self.tier(job.tier).refiner)
            self._update(job_id, status="running", started_at=self.clock())
            try:
                provider_job_id = generator.submit(request)
            except ProviderError as exc:
                self._fail(job_id, exc)
                return
            self._update(job_id, provider_job_id=provider_job_id)
        started = job.started_at or self.clock()
        deadline = started + timedelta(seconds=self.settings.generation_timeout_s)
        first = True
        while True:
            if not first and self._row(job_id).status == "canceled":
                self._cancel_at_provider(generator, provider_job_id)
                return
            first = False
            try:
                status = generator.poll(provider_job_id)
            except ProviderError as exc:
                # poll() raises when the provider could not be asked; ask again unless that can't help
                if not exc.retryable or self.clock() >= deadline:
                    self._fail(job_id, exc)
                    return
                status = JobStatus(provider_job_id, "running")  # a hiccup while asking: ask again
            if status.state == "succeeded":
                self._succeed(job, status)
                return
            if status.state in ("failed", "canceled"):
                self._fail(job_id, status.error or ProviderError(
                    ErrorCode.CANCELED if status.state == "canceled" else ErrorCode.GENERATION_FAILED))
                return
            if self.clock() >= deadline:
                self._cancel_at_provider(generator, provider_job_id)
                self._fail(job_id, ProviderError(ErrorCode.PROVIDER_TIMEOUT, "generation deadline passed"))
                return
            self._update(job_id, progress=max(0.0, min(1.0, status.progress)),
                         lease_expires_at=self.clock() + timedelta(seconds=self.lease_s))
            if self._stop.wait(self.poll_interval_s):
                return  # shutting down: the lease lapses and another worker (or a restart) resumes

    def _succeed(self, job: GeneratedImage, status: JobStatus) -> None:
        job_id = job.id
        if not status.image_bytes:
            self._fail(job_id, ProviderError(ErrorCode.INVALID_OUTPUT, "no image in a succeeded job"))
            return
        try:
            # Named by the request key: a resumed job that stores again overwrites, never duplicates.
            stored = self.store.save(job.owner_id, job.request_key, status.image_bytes)
        except ProviderError as exc:
            # The image service delivered; keeping the image failed. Said as such (not "the service is
            # unavailable"), and not held against the image service's health.
            self._fail(job_id, ProviderError(ErrorCode.STORAGE_FAILED, f"{exc.code.value}: {exc.detail}"))
            return
        cost = job.cost
        try:
            self.ledger.post(job.hold_id)
        except HoldNotPending as exc:
            if exc.hold.status != "posted":
                # The reservation lapsed (expired or voided) before the image arrived: the user gets it free
                # rather than being charged outside the hold they agreed to.
                cost = 0
        with self.db.write() as s:
            done = self._end(s, job_id, "succeeded", progress=1.0, image_key=stored.image_key,
                             thumbnail_key=stored.thumbnail_key, bytes=stored.bytes, cost=cost, error_code=None,
                             error_message=None)
        if not done:  # canceled while we stored: the cancel already voided the hold
            self._discard(stored.image_key)
            return
        if self.on_succeeded is not None:
            try:
                self.on_succeeded(self._by_key(job.request_key))  # type: ignore[arg-type]
            except Exception:  # noqa: BLE001 - a follow-up (referral bonus, analytics) never fails the job
                log.exception("after-success hook failed for job %s", job_id)

    def _fail(self, job_id: int, error: ProviderError) -> None:
        message = ERROR_MESSAGES.get(error.code, "The image could not be generated.")
        # Release the credits first: whoever sees "failed, not charged" also sees the balance restored.
        self._void_hold(job_id)
        with self.db.write() as s:
            ended = self._end(s, job_id, "canceled" if error.code == ErrorCode.CANCELED else "failed", cost=0,
                              error_code=error.code.value, error_message=f"{message} Not charged.")
        if error.detail:
            log.warning("generation job %s failed: %s", job_id, error)
        if ended and error.code != ErrorCode.CANCELED and self.on_failed is not None:
            try:
                self.on_failed(self._by_key(self._row(job_id).request_key))  # type: ignore[arg-type]
            except Exception:  # noqa: BLE001 - a follow-up (analytics) never changes how the job ended
                log.exception("after-failure hook failed for job %s", job_id)

    def _end(self, s: Session, job_id: int, status: str, **values) -> bool:
        """The update that ends a job if it is still active (and drops its lease); True when this call ended it.
        Only then is the job counted in the analytics rollup, in the same transaction: exactly once, however
        often a worker retries or races a cancel."""
        now = self.clock()
        created_at = s.scalar(select(GeneratedImage.created_at).where(GeneratedImage.id == job_id))
        ended = s.execute(update(GeneratedImage)
                          .where(GeneratedImage.id == job_id, GeneratedImage.status.in_(ACTIVE))
                          .values(status=status, finished_at=now, lease_owner=None, lease_expires_at=None,
                                  latency_ms=generation_latency_ms(created_at, now) if created_at else None,
                                  **values)).rowcount
        if ended:
            count_ended_generations(s, GeneratedImage.id == job_id)
        return bool(ended)

    def _void_hold(self, job_id: int) -> None:
        hold_id = self._row(job_id).hold_id
        if hold_id is None:
            return
        try:
            self.ledger.void(hold_id)
        except HoldNotPending:
            pass  # already posted by a finishing worker; the job row tells which happened

    @staticmethod
    def _cancel_at_provider(generator: ImageGenerator, provider_job_id: str) -> None:
        try:
            generator.cancel(provider_job_id)
        except ProviderError as exc:
            log.warning("could not cancel %s at the provider: %s", provider_job_id, exc)

    def _discard(self, image_key: str) -> None:
        try:
            self.store.delete(image_key)
        except ProviderError as exc:
            log.warning("could not delete orphan image %s: %s", image_key, exc)

    # -- leases and recovery ---------------------------------------------------------------------------------
    def _acquire(self, job_id: int) -> bool:
        now = self.clock()
        with self.db.write() as s:
            return bool(s.execute(
                update(GeneratedImage)
                .where(GeneratedImage.id == job_id, GeneratedImage.status.in_(ACTIVE),
                       or_(GeneratedImage.lease_owner.is_(None), GeneratedImage.lease_owner == self.worker_id,
                           GeneratedImage.lease_expires_at < now))
                .values(lease_owner=self.worker_id, lease_expires_at=now + timedelta(seconds=self.lease_s))
            ).rowcount)

    def _release_lease(self, job_id: int) -> None:
        with self.db.write() as s:
            s.execute(update(GeneratedImage)
                      .where(GeneratedImage.id == job_id, GeneratedImage.lease_owner == self.worker_id)
                      .values(lease_owner=None, lease_expires_at=None))

    def renew_leases(self, job_ids: list[int]) -> None:
        """Keep queued jobs that wait in this process's pool from looking abandoned to other processes."""
        if not job_ids:
            return
        with self.db.write() as s:
            s.execute(update(GeneratedImage)
                      .where(GeneratedImage.id.in_(job_ids), GeneratedImage.lease_owner == self.worker_id,
                             GeneratedImage.status.in_(ACTIVE))
                      .values(lease_expires_at=self.clock() + timedelta(seconds=self.lease_s)))

    def unfinished_jobs(self) -> list[tuple[int, bool]]:
        """Active jobs whose lease lapsed (their worker died): (job id, reached the provider)."""
        now = self.clock()
        with self.db.read() as s:
            rows = s.execute(select(GeneratedImage.id, GeneratedImage.provider_job_id)
                             .where(GeneratedImage.status.in_(ACTIVE),
                                    or_(GeneratedImage.lease_expires_at.is_(None),
                                        GeneratedImage.lease_expires_at < now))
                             .order_by(GeneratedImage.id)).all()
        return [(r.id, r.provider_job_id is not None) for r in rows]

    def resume_unfinished(self, enqueue: Callable[[int], None]) -> tuple[int, int]:
        """After a restart: poll again the abandoned jobs that reached the provider (through ``enqueue``),
        void the ones that never did. Returns (resumed, voided)."""
        resumed = voided = 0
        for job_id, reached_provider in self.unfinished_jobs():
            if reached_provider:
                enqueue(job_id)
                resumed += 1
            elif self._acquire(job_id):
                self._fail(job_id, ProviderError(ErrorCode.PROVIDER_UNAVAILABLE,
                                                 "interrupted before it reached the provider"))
                self._release_lease(job_id)
                voided += 1
        return resumed, voided

    def maintain(self, enqueue: Callable[[int], None]) -> tuple[int, int, int]:
        """What ``sweep`` does for jobs and holds, for a running app to call now and then, so it heals after a
        crash or an outage without an operator: resume abandoned jobs, void the ones that never reached the
        provider, expire holds nobody resolved. Safe in every process at once (leases and conditional updates).
        Returns (resumed, voided, expired holds)."""
        resumed, voided = self.resume_unfinished(enqueue)
        return resumed, voided, self.ledger.expire_stale_holds()

    def stop(self) -> None:
        self._stop.set()

    # -- small helpers ---------------------------------------------------------------------------------------
    def _row(self, job_id: int) -> GeneratedImage:
        with self.db.read() as s:
            row = s.get(GeneratedImage, job_id)
            if row is None:
                raise JobNotFound(f"job {job_id}")
            s.expunge(row)
            return row

    def _update(self, job_id: int, **values) -> None:
        with self.db.write() as s:
            s.execute(update(GeneratedImage).where(GeneratedImage.id == job_id).values(**values))


__all__ = ["ASPECT_RATIOS", "GenerateRequest", "GenerationError", "GenerationService", "InsufficientCredits",
           "JobNotFound", "JobView", "LimitReached", "PromptRefused", "ProviderHealth", "RequestConflict",
           "new_request_key", "size_for"]
