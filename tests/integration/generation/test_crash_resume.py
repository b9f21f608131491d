"""Kill a worker process mid-job, restart, and the job finishes with exactly one charge.

The child process talks to the stand-in Replicate server through the real replicate client; after SIGKILL its
job is left running with a provider id and a lease that lapses. A new process resumes polling (it never
submits again) and the credits move exactly once.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from argon2 import PasswordHasher

from studio_core.services.accounts import AccountService
from studio_core.services.ledger import LedgerService
from tests.fakes.replicate_server import FakeReplicate
from tests.integration.generation.crash_child import build

ROOT = Path(__file__).resolve().parents[3]


def _await(predicate, timeout=30.0, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def test_killed_worker_is_resumed_by_a_new_process_and_charges_once(database, settings, tmp_path):
    settings.monthly_allowance = 10
    accounts = AccountService(database, settings, hasher=PasswordHasher(time_cost=1, memory_cost=64))
    user = accounts.sign_up("ada@example.com", "Ada", "Correct-Horse-42")
    ledger = LedgerService(database, settings)
    ledger.ensure_monthly_allowance(user.id)

    with FakeReplicate() as replicate:
        replicate.steps = 10_000  # keeps "processing" until we let it finish
        child = subprocess.Popen(
            [sys.executable, "-m", "tests.integration.generation.crash_child", database.url, replicate.url,
             str(tmp_path / "images"), str(user.id), "req-crash-test-0001"],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env={**os.environ, "PYTHONPATH": str(ROOT)})
        try:
            job_id = int(child.stdout.readline().split()[1])
            restarted = build(database.url, replicate.url, str(tmp_path / "images"), lease_s=30,
                              worker_id="restarted-worker")
            # Mid-job: the provider has the prediction and the child is polling it.
            _await(lambda: restarted._row(job_id).provider_job_id and replicate.requests_to(
                "GET", r"/v1/predictions/\w+$"), what="the child to poll the provider")
            assert ledger.balance(user.id).reserved == 1
        finally:
            child.send_signal(signal.SIGKILL)
            child.wait(10)
        row = restarted._row(job_id)
        assert row.status == "running" and row.lease_owner == "doomed-worker"

        # Nothing is resumed while the dead worker's lease still looks alive; then it lapses.
        _await(lambda: restarted.unfinished_jobs(), timeout=10, what="the lease to lapse")
        for prediction in replicate.predictions.values():
            prediction.steps_left = 0  # the GPU finishes
        resumed = restarted.resume_unfinished(restarted.run_job)
        assert resumed == (1, 0)

    job = restarted.get(user.id, job_id)
    assert job.status == "succeeded" and job.charged and job.cost == 1
    assert (tmp_path / "images").exists()
    assert len(replicate.requests_to("POST", r"/predictions$")) == 1  # never submitted twice
    balance = ledger.balance(user.id)
    assert (balance.available, balance.reserved) == (9, 0)
    assert [r for r in ledger.check_invariants() if not r.ok] == []
