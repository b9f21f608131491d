"""A worker process for the crash tests: submits one generation and works it until it is killed, or dies by
itself at a chosen point.

Run as ``python -m tests.integration.generation.crash_child DB_URL REPLICATE_URL IMAGES_DIR USER_ID KEY [DIE_AT]``
with DIE_AT one of ``never`` (the default: poll until killed), ``after_reserve`` (the credits are on hold, no job
row yet) or ``at_submit`` (the job is queued, nothing has been sent to the provider).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from studio_core.adapters.local_store import LocalStore
from studio_core.adapters.replicate_generator import ReplicateGenerator
from studio_core.config import load_settings
from studio_core.db import Database
from studio_core.services.generation import GenerateRequest, GenerationService
from studio_core.services.ledger import LedgerService

SDXL = "stability-ai/sdxl:7762fd07cf82c948538e41f63f77d685e02b063e37e496e96eefd46c929f9bdc"


def build(db_url: str, replicate_url: str, images: str, *, lease_s: int, worker_id: str) -> GenerationService:
    settings = load_settings(_env_file=None, monthly_allowance=10, generation_timeout_s=60)
    db = Database(db_url)
    generator = ReplicateGenerator(api_token="r8_test_token", model_version=SDXL, base_url=replicate_url,
                                   timeout_s=5)
    return GenerationService(db, settings, LedgerService(db, settings), generator, LocalStore(Path(images)),
                             poll_interval_s=0.05, lease_s=lease_s, worker_id=worker_id)


def _die_after(call):
    def dying(*args, **kwargs):
        call(*args, **kwargs)
        os._exit(137)  # as abrupt as SIGKILL: no cleanup, no finally blocks

    return dying


def main(db_url: str, replicate_url: str, images: str, user_id: str, key: str, die_at: str = "never") -> None:
    service = build(db_url, replicate_url, images, lease_s=1, worker_id="doomed-worker")
    if die_at == "after_reserve":
        service.ledger.reserve = _die_after(service.ledger.reserve)
    elif die_at == "at_submit":
        service.generator.submit = _die_after(lambda request: None)  # dies before anything is sent
    elif die_at != "never":
        raise SystemExit(f"unknown DIE_AT {die_at!r}")
    job = service.submit(int(user_id), GenerateRequest(prompt="a lighthouse in a storm", tier="standard",
                                                       seed=11), key)
    print(f"job {job.id}", flush=True)
    service.run_job(job.id)  # polls until the parent kills this process


if __name__ == "__main__":
    main(*sys.argv[1:])
