"""Fault drills for the money path, through the real replicate client against its stand-in server: a process
that dies between reserving credits and reaching the provider, and the database going away mid-job.

Each drill ends the way a user needs it to: the job has an honest end (or finishes), nothing was charged that
was not delivered, nothing is charged twice, the credits come back, a new request works, and every ledger
invariant holds. (What the user sees on screen is in tests/app/test_fault_drills.py.)
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from sqlalchemy import func, select

from studio_core.db import Database
from studio_core.models import CreditHold, GeneratedImage, utcnow
from studio_core.services.accounts import AccountService
from studio_core.services.generation import GenerateRequest, GenerationService, new_request_key
from studio_core.services.ledger import LedgerService
from tests.conftest import PG_URL
from tests.fakes.replicate_server import FakeReplicate
from tests.fakes.tcp_proxy import TcpProxy
from tests.integration.generation.crash_child import build

ROOT = Path(__file__).resolve().parents[3]


class Clock:
    """Real time, plus however far a test has jumped ahead."""

    def __init__(self) -> None:
        self.ahead = timedelta()

    def __call__(self):
        return utcnow() + self.ahead


def _user(database, settings):
    settings.monthly_allowance = 10
    accounts = AccountService(database, settings, hasher=PasswordHasher(time_cost=1, memory_cost=64))
    user = accounts.sign_up("ada@example.com", "Ada", "Correct-Horse-42")
    LedgerService(database, settings).ensure_monthly_allowance(user.id)
    return user


def _run_child(database, replicate, images, user_id, key, die_at) -> int:
    child = subprocess.run(
        [sys.executable, "-m", "tests.integration.generation.crash_child", database.url, replicate.url,
         str(images), str(user_id), key, die_at],
        cwd=ROOT, capture_output=True, text=True, timeout=60, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert child.returncode == 137, child.stderr  # it died where it was told to, not of something else
    return child.returncode


def _books_balance(ledger):
    assert [r for r in ledger.check_invariants() if not r.ok] == []


def _a_new_request_works(service, user_id, replicate):
    replicate.steps = 0
    job = service.submit(user_id, GenerateRequest(prompt="a lighthouse, once more", tier="standard"),
                         new_request_key())
    service.run_job(job.id)
    done = service.get(user_id, job.id)
    assert done.status == "succeeded" and done.charged, done.error_message
    return done


def test_died_after_reserving_before_the_job_existed(database, settings, tmp_path):
    """The worst moment: credits on hold, no job row to explain them. The hold expires and they come back."""
    user = _user(database, settings)
    with FakeReplicate() as replicate:
        _run_child(database, replicate, tmp_path / "images", user.id, "req-drill-reserve-0001", "after_reserve")
        clock = Clock()
        service = build(database.url, replicate.url, str(tmp_path / "images"), lease_s=30, worker_id="next")
        service.clock = service.ledger.clock = clock
        ledger = service.ledger
        assert ledger.balance(user.id).reserved == 1 and ledger.balance(user.id).available == 9
        with database.read() as s:
            assert s.scalar(select(func.count()).select_from(GeneratedImage)) == 0
        _books_balance(ledger)  # on hold is a consistent state, just not a final one

        assert service.maintain(service.run_job) == (0, 0, 0)  # not yet: the hold is still within its time
        clock.ahead = timedelta(seconds=settings.generation_timeout_s + settings.hold_ttl_s + 1)
        assert service.maintain(service.run_job) == (0, 0, 1)
        balance = ledger.balance(user.id)
        assert (balance.available, balance.reserved) == (10, 0)
        clock.ahead = timedelta()
        _a_new_request_works(service, user.id, replicate)
        assert ledger.balance(user.id).available == 9
        assert len(replicate.requests_to("POST", r"/predictions$")) == 1  # only the new request reached it
        _books_balance(ledger)


def test_died_at_submit_the_job_is_voided_and_can_be_retried(database, settings, tmp_path):
    user = _user(database, settings)
    with FakeReplicate() as replicate:
        _run_child(database, replicate, tmp_path / "images", user.id, "req-drill-submit-0001", "at_submit")
        service = build(database.url, replicate.url, str(tmp_path / "images"), lease_s=30, worker_id="next")
        with database.read() as s:
            job_id = s.scalar(select(GeneratedImage.id))
        stuck = service.get(user.id, job_id)
        assert stuck.status == "running" and service.ledger.balance(user.id).reserved == 1

        deadline = time.monotonic() + 10  # the dead worker's one-second lease lapses
        while not service.unfinished_jobs() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert service.maintain(service.run_job) == (0, 1, 0)
        voided = service.get(user.id, job_id)
        assert voided.status == "failed" and voided.cost == 0 and "Not charged" in voided.error_message
        assert service.ledger.balance(user.id).available == 10

        retry = service.submit(user.id, voided.as_request(same_seed=True), new_request_key())
        replicate.steps = 0
        service.run_job(retry.id)
        done = service.get(user.id, retry.id)
        assert done.status == "succeeded" and done.seed == voided.seed and done.cost == 1
        assert service.ledger.balance(user.id).available == 9
        assert len(replicate.requests_to("POST", r"/predictions$")) == 1
        _books_balance(service.ledger)


@pytest.mark.postgres
def test_the_database_goes_away_mid_job_and_the_job_still_charges_exactly_once(settings, tmp_path):
    """PostgreSQL behind a line that is cut while the worker polls Replicate: the worker pauses (it cannot
    record anything), and once the database is back the job is resumed and finishes, charged once."""
    from tests.conftest import _fresh_pg

    _fresh_pg().dispose()  # an empty schema
    host, port = "127.0.0.1", Database(PG_URL).engine.url.port or 5432
    with TcpProxy(host, port) as proxy, FakeReplicate() as replicate:
        url = Database(PG_URL).engine.url.set(host="127.0.0.1", port=proxy.port).render_as_string(
            hide_password=False)
        database = Database(url)
        user = _user(database, settings)
        ledger = LedgerService(database, settings)
        replicate.steps = 10_000  # keeps processing until we let it finish
        service = build(url, replicate.url, str(tmp_path / "images"), lease_s=1, worker_id="paused")
        job = service.submit(user.id, GenerateRequest(prompt="a lighthouse in a storm", tier="standard"),
                             new_request_key())
        worker = threading.Thread(target=service.run_job, args=(job.id,))
        worker.start()
        assert replicate.wait_for(lambda reqs: sum(r.method == "GET" for r in reqs) >= 2, timeout=15)

        proxy.cut()
        worker.join(30)
        assert not worker.is_alive()  # it paused instead of hanging or dying with the hold in limbo
        proxy.restore()
        row = service._row(job.id)
        assert row.status == "running" and row.provider_job_id is not None
        assert ledger.balance(user.id).reserved == 1  # still on hold, not lost, not charged

        for prediction in replicate.predictions.values():
            prediction.steps_left = 0  # the GPU finishes while the database was away
        deadline = time.monotonic() + 10
        while not service.unfinished_jobs() and time.monotonic() < deadline:
            time.sleep(0.05)
        resumed = GenerationService(database, service.settings, ledger, service.generator, service.store,
                                    poll_interval_s=0.05, worker_id="after-outage")
        assert resumed.maintain(resumed.run_job)[:2] == (1, 0)
        done = resumed.get(user.id, job.id)
        assert done.status == "succeeded" and done.cost == 1
        assert len(replicate.requests_to("POST", r"/predictions$")) == 1  # polled again, never resubmitted
        balance = ledger.balance(user.id)
        assert (balance.available, balance.reserved) == (9, 0)
        with database.read() as s:
            assert s.scalar(select(func.count()).select_from(CreditHold)) == 1
        _books_balance(ledger)
        database.dispose()
        service.db.dispose()


def test_a_running_app_picks_up_abandoned_jobs_by_itself(database, settings, tmp_path):
    """No operator, no restart: the worker pool's maintenance finishes a dead process's job."""
    from studio_core.services.jobs import JobRunner

    user = _user(database, settings)
    with FakeReplicate() as replicate:
        replicate.steps = 0
        dead = build(database.url, replicate.url, str(tmp_path / "images"), lease_s=1, worker_id="dead")
        job = dead.submit(user.id, GenerateRequest(prompt="a lighthouse in a storm", tier="standard"),
                          new_request_key())
        provider_job_id = dead.generator.submit(_request_of(dead, job.id))
        dead._update(job.id, status="running", provider_job_id=provider_job_id)  # then the process died

        alive = build(database.url, replicate.url, str(tmp_path / "images"), lease_s=30, worker_id="alive")
        runner = JobRunner(alive, workers=1, maintenance_s=0.2)
        try:
            deadline = time.monotonic() + 15
            while alive.get(user.id, job.id).status != "succeeded" and time.monotonic() < deadline:
                time.sleep(0.05)
        finally:
            runner.shutdown()
        assert alive.get(user.id, job.id).status == "succeeded"
        assert len(replicate.requests_to("POST", r"/predictions$")) == 1
        assert alive.ledger.balance(user.id).available == 9
        _books_balance(alive.ledger)


def _request_of(service, job_id):
    from studio_core.ports import GenerationRequest

    row = service._row(job_id)
    return GenerationRequest(prompt=row.final_prompt, negative_prompt=row.negative_prompt, width=row.width,
                             height=row.height, steps=1, guidance=1.0, seed=row.seed)
