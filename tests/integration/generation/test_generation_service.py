"""The generation service end to end with scripted providers, on SQLite and PostgreSQL.

Every test that moves money ends with the ledger's invariants and an exact balance check.
"""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from argon2 import PasswordHasher
from sqlalchemy import func, select, update

from studio_core.models import CreditHold, GeneratedImage, utcnow
from studio_core.ports import ErrorCode, GenerationRequest
from studio_core.services.accounts import AccountService
from studio_core.services.generation import (
    GenerateRequest,
    GenerationError,
    GenerationService,
    InsufficientCredits,
    JobNotFound,
    LimitReached,
    PromptRefused,
    RequestConflict,
    new_request_key,
    size_for,
)
from studio_core.services.jobs import JobRunner
from studio_core.services.ledger import LedgerService
from tests.integration.generation.fakes import MemoryStore, ScriptedGenerator


class World:
    def __init__(self, database, settings, script=None, **service_kw):
        self.db = database
        self.settings = settings
        self.accounts = AccountService(database, settings, hasher=PasswordHasher(time_cost=1, memory_cost=64))
        self.ledger = LedgerService(database, settings)
        self.generator = ScriptedGenerator(script=script or ["running", "succeeded"])
        self.store = MemoryStore()
        self.service = self.make_service(**service_kw)
        self.user = self.accounts.sign_up("ada@example.com", "Ada", "Correct-Horse-42")
        self.other = self.accounts.sign_up("bob@example.com", "Bob", "Correct-Horse-42")

    def make_service(self, **kw) -> GenerationService:
        kw.setdefault("poll_interval_s", 0)
        return GenerationService(self.db, self.settings, self.ledger, self.generator, self.store, **kw)

    def available(self, user=None) -> int:
        return self.ledger.balance((user or self.user).id).available

    def assert_books_balance(self):
        bad = [r for r in self.ledger.check_invariants() if not r.ok]
        assert bad == []


@pytest.fixture
def world(database, settings):
    settings.monthly_allowance = 10
    settings.generation_timeout_s = 30
    return World(database, settings)


def req(prompt="a lighthouse at dusk", tier="standard", **kw) -> GenerateRequest:
    return GenerateRequest(prompt=prompt, tier=tier, **kw)


def test_success_charges_exactly_the_tier_once(world):
    job = world.service.submit(world.user.id, req(tier="premium2", aspect_ratio="16:9"), new_request_key())
    assert job.status == "queued" and job.cost == 2 and not job.charged
    assert world.available() == 8  # reserved, not yet spent
    world.service.run_job(job.id)
    done = world.service.get(world.user.id, job.id)
    assert done.status == "succeeded" and done.charged and done.cost == 2
    assert done.image_key in world.store.files and done.thumbnail_key
    assert done.started_at and done.finished_at and done.finished_at >= done.started_at
    assert (done.width, done.height) == size_for(world.settings.tiers["premium2"], "16:9")
    assert done.width > done.height and done.width % 64 == 0
    assert world.generator.submitted[0].seed == done.seed
    assert world.available() == 8
    world.service.run_job(job.id)  # a second worker call changes nothing
    assert world.available() == 8 and len(world.generator.submitted) == 1
    world.assert_books_balance()


def test_double_click_reuses_the_request_and_charges_once(world):
    key = new_request_key()
    first = world.service.submit(world.user.id, req(seed=7), key)
    again = world.service.submit(world.user.id, req(seed=7), key)
    assert again.id == first.id
    with world.db.read() as s:
        assert s.scalar(select(func.count()).select_from(CreditHold)) == 1
    world.service.run_job(first.id)
    assert world.available() == 9
    with pytest.raises(RequestConflict):
        world.service.submit(world.user.id, req(prompt="something else", seed=7), key)
    with pytest.raises(RequestConflict):
        world.service.submit(world.other.id, req(seed=7), key)
    world.assert_books_balance()


def test_concurrent_double_clicks_make_one_job(world):
    key = new_request_key()
    barrier = threading.Barrier(4)
    results, errors = [], []

    def click():
        barrier.wait()
        try:
            results.append(world.service.submit(world.user.id, req(seed=1), key).id)
        except Exception as exc:  # noqa: BLE001 - asserted below
            errors.append(exc)

    threads = [threading.Thread(target=click) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert errors == [] and len(set(results)) == 1
    assert world.available() == 9
    world.assert_books_balance()


@pytest.mark.parametrize("script,code", [
    (["running", "failed"], ErrorCode.BLOCKED_PROMPT),
    (["canceled"], ErrorCode.CANCELED),
    (["raise:auth_failed"], ErrorCode.AUTH_FAILED),
])
def test_provider_failures_are_never_charged(world, script, code):
    world.generator.script = script
    job = world.service.submit(world.user.id, req(), new_request_key())
    world.service.run_job(job.id)
    done = world.service.get(world.user.id, job.id)
    assert done.status in ("failed", "canceled") and done.error_code == code.value
    assert done.cost == 0 and not done.charged and "Not charged" in done.error_message
    assert world.available() == 10
    world.assert_books_balance()


def test_submit_failure_and_storage_failure_are_never_charged(world):
    world.generator.submit_error = ErrorCode.RATE_LIMITED
    job = world.service.submit(world.user.id, req(), new_request_key())
    world.service.run_job(job.id)
    assert world.service.get(world.user.id, job.id).error_code == "rate_limited"
    world.generator.submit_error = None
    world.store.fail_next = True
    job = world.service.submit(world.user.id, req(), new_request_key())
    world.service.run_job(job.id)
    done = world.service.get(world.user.id, job.id)
    assert done.error_code == "storage_failed" and done.cost == 0
    assert world.available() == 10
    world.assert_books_balance()


def test_transient_poll_errors_are_retried(world):
    world.generator.script = ["raise:provider_unavailable", "raise:provider_timeout", "succeeded"]
    job = world.service.submit(world.user.id, req(), new_request_key())
    world.service.run_job(job.id)
    assert world.service.get(world.user.id, job.id).status == "succeeded"
    assert world.available() == 9
    world.assert_books_balance()


def test_timeout_cancels_at_the_provider_and_is_not_charged(database, settings):
    settings.monthly_allowance = 10
    settings.generation_timeout_s = 5
    ticks = iter(range(10_000))
    start = utcnow()
    w = World(database, settings, script=["running"],
              clock=lambda: start + timedelta(seconds=next(ticks)))
    job = w.service.submit(w.user.id, req(), new_request_key())
    w.service.run_job(job.id)
    done = w.service.get(w.user.id, job.id)
    assert done.error_code == "provider_timeout" and done.cost == 0
    assert w.generator.canceled == ["p1"]
    w.assert_books_balance()


def test_blocked_terms_and_bad_prompts_are_refused_before_any_credit_moves(world):
    world.settings.blocked_terms = ["gore", "real person"]
    with pytest.raises(PromptRefused, match="gore") as refused:
        world.service.submit(world.user.id, req(prompt="lots of GORE everywhere"), new_request_key())
    assert refused.value.term == "gore"
    with pytest.raises(PromptRefused, match="real person"):
        world.service.submit(world.user.id, req(prompt="a real\u200b person"), new_request_key())
    assert world.service.moderate("goreham castle") == "goreham castle"  # whole words only
    with pytest.raises(PromptRefused, match="limit is"):
        world.service.submit(world.user.id, req(prompt="x" * (world.settings.prompt_max_chars + 1)),
                             new_request_key())
    with pytest.raises(PromptRefused, match="write a prompt"):
        world.service.submit(world.user.id, req(prompt=" \x00\t "), new_request_key())
    with pytest.raises(GenerationError, match="seed"):
        world.service.submit(world.user.id, req(seed=-1), new_request_key())
    with pytest.raises(GenerationError, match="aspect"):
        world.service.submit(world.user.id, req(aspect_ratio="5:1"), new_request_key())
    with pytest.raises(GenerationError, match="tier"):
        world.service.submit(world.user.id, req(tier="ultra"), new_request_key())
    with world.db.read() as s:
        assert s.scalar(select(func.count()).select_from(CreditHold)) == 0
        assert s.scalar(select(func.count()).select_from(GeneratedImage)) == 0


def test_control_characters_are_stripped(world):
    job = world.service.submit(world.user.id, req(prompt="a\x1b[31m red\u202e fox\n\nin snow"),
                               new_request_key())
    assert job.final_prompt == "a [31m red fox in snow"


def test_enhanced_prompt_is_what_gets_generated(world):
    job = world.service.submit(world.user.id, req(prompt="a fox", enhanced_prompt="a fox, golden hour, 35mm"),
                               new_request_key())
    world.service.run_job(job.id)
    assert world.generator.submitted[0].prompt == "a fox, golden hour, 35mm"
    assert job.prompt == "a fox" and job.enhanced_prompt == "a fox, golden hour, 35mm"


def test_insufficient_credits_says_how_many_are_missing_and_writes_nothing(world):
    world.settings.max_concurrent_jobs_per_user = 10
    world.settings.max_jobs_per_minute = 10
    world.service.submit(world.user.id, req(tier="premium4"), new_request_key())
    world.service.submit(world.user.id, req(tier="premium4"), new_request_key())
    with pytest.raises(InsufficientCredits) as err:
        world.service.submit(world.user.id, req(tier="premium4"), new_request_key())
    assert "2" in str(err.value)  # needs 4, has 2
    with world.db.read() as s:
        assert s.scalar(select(func.count()).select_from(GeneratedImage)) == 2
    world.assert_books_balance()


def test_concurrency_and_rate_limits(world):
    world.settings.max_concurrent_jobs_per_user = 2
    for _ in range(2):
        world.service.submit(world.user.id, req(), new_request_key())
    with pytest.raises(LimitReached, match="in progress"):
        world.service.submit(world.user.id, req(), new_request_key())
    world.settings.max_concurrent_jobs_per_user = 10
    world.settings.max_jobs_per_minute = 3
    world.service.submit(world.user.id, req(), new_request_key())
    with pytest.raises(LimitReached, match="last minute"):
        world.service.submit(world.user.id, req(), new_request_key())
    world.service.submit(world.other.id, req(), new_request_key())  # limits are per user


def test_cancel_voids_at_once_and_the_worker_stops(world):
    world.generator.script = ["running"]
    job = world.service.submit(world.user.id, req(), new_request_key())
    assert world.available() == 9
    canceled = world.service.cancel(world.user.id, job.id)
    assert canceled.status == "canceled" and canceled.cost == 0
    assert world.available() == 10
    world.service.run_job(job.id)  # nothing left to do
    assert world.generator.submitted == []
    world.assert_books_balance()


def test_cancel_while_running_cancels_at_the_provider(world):
    world.generator.script = ["hang"]
    runner = JobRunner(world.service, workers=1)
    job = world.service.submit(world.user.id, req(), new_request_key())
    runner.enqueue(job.id)
    for _ in range(200):
        if world.generator.submitted:
            break
        threading.Event().wait(0.02)
    world.service.cancel(world.user.id, job.id)
    world.generator.release.set()
    assert runner.wait_idle(10)
    runner.shutdown()
    assert world.generator.canceled == ["p1"]
    assert world.service.get(world.user.id, job.id).status == "canceled"
    assert world.available() == 10
    world.assert_books_balance()


def test_other_users_jobs_are_invisible(world):
    job = world.service.submit(world.user.id, req(), new_request_key())
    with pytest.raises(JobNotFound):
        world.service.get(world.other.id, job.id)
    with pytest.raises(JobNotFound):
        world.service.cancel(world.other.id, job.id)
    assert world.service.recent(world.other.id) == []


def _abandon(world, job_id, *, provider_job_id=None):
    """What a killed process leaves behind: an active row whose lease has lapsed."""
    with world.db.write() as s:
        s.execute(update(GeneratedImage).where(GeneratedImage.id == job_id).values(
            status="running", provider_job_id=provider_job_id, lease_owner="dead-worker",
            lease_expires_at=utcnow() - timedelta(seconds=1), started_at=utcnow()))


def test_restart_resumes_jobs_that_reached_the_provider_and_voids_the_rest(world):
    reached = world.service.submit(world.user.id, req(prompt="reached"), new_request_key())
    world.generator.submit(GenerationRequest("reached", "", 64, 64, 1, 1.0, 1))  # it got as far as the provider
    _abandon(world, reached.id, provider_job_id="p1")
    never = world.service.submit(world.user.id, req(prompt="never sent"), new_request_key())
    _abandon(world, never.id)
    assert world.available() == 8

    restarted = world.make_service()  # a new process: new worker id
    resumed = []
    assert restarted.resume_unfinished(lambda job_id: resumed.append(job_id) or restarted.run_job(job_id)) == (1, 1)
    assert resumed == [reached.id]
    assert restarted.get(world.user.id, reached.id).status == "succeeded"
    lost = restarted.get(world.user.id, never.id)
    assert lost.status == "failed" and lost.cost == 0
    assert world.available() == 9
    world.assert_books_balance()


def test_a_live_lease_is_respected(world):
    job = world.service.submit(world.user.id, req(), new_request_key())
    other_process = world.make_service(worker_id="other-process")
    other_process.run_job(job.id)  # the submitting process still holds the lease
    assert world.generator.submitted == []
    assert other_process.unfinished_jobs() == []
    world.service.run_job(job.id)
    assert world.service.get(world.user.id, job.id).status == "succeeded"


@pytest.mark.parametrize("ratio", ["1:1", "4:3", "3:4", "3:2", "2:3", "16:9", "9:16"])
def test_every_aspect_ratio_round_trips_through_a_retry(world, ratio):
    job = world.service.submit(world.user.id, req(aspect_ratio=ratio, seed=3), new_request_key())
    assert job.aspect_ratio == ratio
    assert job.as_request().aspect_ratio == ratio


def test_two_threads_running_the_same_job_work_it_once(world):
    world.generator.script = ["hang", "succeeded"]
    job = world.service.submit(world.user.id, req(), new_request_key())
    threads = [threading.Thread(target=world.service.run_job, args=(job.id,)) for _ in range(2)]
    for t in threads:
        t.start()
    threads[1].join(5)  # the second returns at once: this process already works the job
    assert not threads[1].is_alive() or not threads[0].is_alive()
    world.generator.release.set()
    for t in threads:
        t.join(10)
    done = world.service.get(world.user.id, job.id)
    assert done.status == "succeeded" and done.image_key in world.store.files
    assert len(world.generator.submitted) == 1 and world.available() == 9
    world.assert_books_balance()
