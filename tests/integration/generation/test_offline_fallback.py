"""When the configured image generator is down, people keep working on the offline renderer.

The outage is read from the jobs in the database (so every app process agrees), a request can name the
offline renderer, and a job always goes back to the generator it was sent to -- also after a restart.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from studio_core.models import utcnow
from studio_core.ports import ErrorCode
from studio_core.services.generation import GenerationError, RequestConflict, new_request_key
from tests.integration.generation.fakes import ScriptedGenerator
from tests.integration.generation.test_generation_service import World, req


class Clock:
    def __init__(self) -> None:
        self.now = utcnow()

    def __call__(self):
        return self.now


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def world(database, settings, clock):
    settings.monthly_allowance = 20
    settings.provider_outage_failures = 3
    settings.provider_outage_window_s = 600
    w = World(database, settings)
    w.generator.name = "replicate"
    w.offline = ScriptedGenerator(script=["succeeded"], name="local", model_version="procedural-1")
    w.service = w.make_service(fallback=w.offline, clock=clock)
    return w


def _fail_one(world, code=ErrorCode.PROVIDER_UNAVAILABLE):
    world.generator.submit_error = code
    job = world.service.submit(world.user.id, req(), new_request_key())
    world.service.run_job(job.id)
    return world.service.get(world.user.id, job.id)


def test_three_outage_failures_in_a_row_are_an_outage_and_one_success_ends_it(world):
    assert not world.service.provider_health().outage
    first = _fail_one(world)
    assert first.failed_for_outage and first.cost == 0
    _fail_one(world, ErrorCode.PROVIDER_TIMEOUT)
    health = world.service.provider_health()
    assert (health.outage, health.recent_failures, health.fallback) == (False, 2, "local")
    _fail_one(world, ErrorCode.RATE_LIMITED)
    health = world.service.provider_health()
    assert health.outage and health.recent_failures == 3
    world.generator.submit_error = None
    ok = world.service.submit(world.user.id, req(), new_request_key())
    world.service.run_job(ok.id)
    assert not world.service.provider_health().outage
    assert world.available() == 20 - 1  # three failures free, one success charged
    world.assert_books_balance()


def test_failures_that_are_not_outages_do_not_count(world):
    world.generator.script = ["failed"]  # the content filter blocked the image: the service is up
    for _ in range(3):
        job = world.service.submit(world.user.id, req(), new_request_key())
        world.service.run_job(job.id)
        assert not world.service.get(world.user.id, job.id).failed_for_outage
    assert world.service.provider_health().recent_failures == 0


def test_old_failures_fall_out_of_the_window(world, clock):
    for _ in range(3):
        _fail_one(world)
    assert world.service.provider_health().outage
    clock.now += timedelta(seconds=601)
    assert not world.service.provider_health().outage


def test_offline_failures_do_not_make_the_configured_generator_look_down(world):
    world.offline.submit_error = ErrorCode.PROVIDER_UNAVAILABLE
    for _ in range(3):
        job = world.service.submit(world.user.id, req(renderer="local"), new_request_key())
        world.service.run_job(job.id)
    assert world.service.provider_health().recent_failures == 0


def test_a_request_for_the_offline_renderer_is_rendered_and_recorded_there(world):
    for _ in range(3):
        _fail_one(world)
    failed = _fail_one(world)
    retry = failed.as_request(same_seed=True, renderer=world.service.provider_health().fallback)
    job = world.service.submit(world.user.id, retry, new_request_key())
    assert (job.provider, job.model_version, job.seed) == ("local", "procedural-1", failed.seed)
    world.service.run_job(job.id)
    done = world.service.get(world.user.id, job.id)
    assert done.status == "succeeded" and done.cost == 1 and done.recipe()["provider"] == "local"
    assert len(world.offline.submitted) == 1 and world.offline.submitted[0].seed == failed.seed
    assert world.available() == 20 - 1
    world.assert_books_balance()


def test_an_unknown_renderer_is_refused_before_anything_is_reserved(world):
    world.ledger.ensure_monthly_allowance(world.user.id)
    with pytest.raises(GenerationError, match="not available"):
        world.service.submit(world.user.id, req(renderer="midjourney"), new_request_key())
    assert world.available() == 20 and world.ledger.balance(world.user.id).reserved == 0


def test_the_same_request_key_cannot_switch_renderer(world):
    key = new_request_key()
    world.service.submit(world.user.id, req(), key)
    with pytest.raises(RequestConflict):
        world.service.submit(world.user.id, req(renderer="local"), key)
    assert world.ledger.balance(world.user.id).reserved == 1


def test_a_resumed_job_goes_back_to_its_own_generator(world, clock):
    job = world.service.submit(world.user.id, req(renderer="local"), new_request_key())
    world.offline.script = ["running", "succeeded"]
    world.offline.submit(None)  # pretend it reached the offline renderer as p1 before the process died
    world.service._update(job.id, provider_job_id="p1", status="running", lease_owner="dead",
                          lease_expires_at=clock.now - timedelta(seconds=1))
    fresh = world.make_service(fallback=world.offline, clock=clock, worker_id="restarted")
    resumed, voided = fresh.resume_unfinished(fresh.run_job)
    assert (resumed, voided) == (1, 0)
    assert world.service.get(world.user.id, job.id).status == "succeeded"
    assert world.generator.submitted == [] and world.offline.polls["p1"] >= 1
    world.assert_books_balance()


def test_without_a_fallback_a_job_for_an_unavailable_generator_fails_free(world, clock):
    job = world.service.submit(world.user.id, req(renderer="local"), new_request_key())
    primary_only = world.make_service(clock=clock, worker_id="other")  # a process configured without it
    primary_only._update(job.id, lease_owner=None, lease_expires_at=None)
    primary_only.run_job(job.id)
    done = world.service.get(world.user.id, job.id)
    assert done.status == "failed" and done.error_code == "provider_unavailable" and done.cost == 0
    assert world.available() == 20
    world.assert_books_balance()
