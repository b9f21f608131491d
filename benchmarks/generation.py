"""How much does the generation pipeline cost on top of storing the image?

With an instant fake generator (the image is ready at the first poll) and the real LocalStore, 8 users each run
jobs end to end through GenerationService (validate, moderate, reserve, insert, submit, poll, store, post, mark
succeeded), concurrently, on one SQLite file. Beside it, in the same run, the storage step alone (LocalStore.save:
decode + validate + PNG write + WebP thumbnail) on the same image by 8 threads. Prints both throughputs, the
ratio (target >= 0.5) and the ledger's invariants (target: zero violations).

Run: python benchmarks/generation.py [--users 8] [--jobs 25] [--database-url URL]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # runnable from a checkout without installing

from argon2 import PasswordHasher  # noqa: E402

from benchmarks._threads import run_threads  # noqa: E402
from studio_core.adapters import procedural  # noqa: E402
from studio_core.adapters.local_store import LocalStore  # noqa: E402
from studio_core.config import load_settings  # noqa: E402
from studio_core.db import Database  # noqa: E402
from studio_core.migrate import upgrade_to_head  # noqa: E402
from studio_core.ports import GenerationRequest, JobStatus  # noqa: E402
from studio_core.services.accounts import AccountService  # noqa: E402
from studio_core.services.generation import GenerateRequest, GenerationService, new_request_key  # noqa: E402
from studio_core.services.ledger import LedgerService  # noqa: E402

RATIO_TARGET = 0.5


class InstantGenerator:
    """Answers every poll with the same finished image: the provider costs nothing, so what is measured is
    the pipeline around it."""

    name = "instant"
    model_version = "instant-1"

    def __init__(self, png: bytes) -> None:
        self.png = png
        self._n = 0
        self._lock = threading.Lock()

    def submit(self, request: GenerationRequest) -> str:
        with self._lock:
            self._n += 1
            return f"instant-{self._n}"

    def poll(self, provider_job_id: str) -> JobStatus:
        return JobStatus(provider_job_id, "succeeded", progress=1.0, image_bytes=self.png)

    def cancel(self, provider_job_id: str) -> None:
        pass


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=8)
    parser.add_argument("--jobs", type=int, default=25, help="jobs per user")
    parser.add_argument("--database-url", help="default: a fresh SQLite file in a temporary directory")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="studio-bench-"))
    url = args.database_url or f"sqlite:///{tmp / 'bench.db'}"
    settings = load_settings(_env_file=None, data_dir=tmp, database_url=url, monthly_allowance=0,
                             max_jobs_per_minute=10_000, max_concurrent_jobs_per_user=10_000)
    db = Database(url)
    upgrade_to_head(db)
    ledger = LedgerService(db, settings)
    accounts = AccountService(db, settings, hasher=PasswordHasher(time_cost=1, memory_cost=64))
    tier = settings.tiers["standard"]
    png = procedural.render("a misty mountain landscape at sunset", 1, tier.width, tier.height)
    store = LocalStore(tmp / "images")
    service = GenerationService(db, settings, ledger, InstantGenerator(png), store, poll_interval_s=0)
    stamp = int(time.time())
    users = [accounts.sign_up(f"bench{i}-{stamp}@example.com", f"Bench {i}", "Correct-Horse-42")
             for i in range(args.users)]
    for u in users:
        ledger.grant(u.id, "purchase", args.jobs * tier.credits, f"bench-credit:{u.id}")
    total = args.users * args.jobs

    def pipeline(i: int) -> None:
        for _ in range(args.jobs):
            job = service.submit(users[i].id, GenerateRequest(prompt="a misty mountain landscape at sunset",
                                                               tier="standard"), new_request_key())
            service.run_job(job.id)

    def storage_only(i: int) -> None:
        for j in range(args.jobs):
            store.save(users[i].id, f"storage-only-{i}-{j}", png)

    storage_s = run_threads(args.users, storage_only)
    pipeline_s = run_threads(args.users, pipeline)
    storage_rate, pipeline_rate = total / storage_s, total / pipeline_s
    ratio = pipeline_rate / storage_rate
    violations = [r for r in ledger.check_invariants() if not r.ok]
    charged = sum(ledger.balance(u.id).used_this_month for u in users)

    print(f"database: {db.dialect}; {args.users} users x {args.jobs} jobs = {total} jobs "
          f"({tier.width}x{tier.height} images)")
    print(f"storage alone (LocalStore.save, {args.users} threads): {storage_rate:8.1f} images/s")
    print(f"generation pipeline end to end ({args.users} users):  {pipeline_rate:8.1f} jobs/s")
    print(f"pipeline / storage alone: {ratio:.2f}  (target >= {RATIO_TARGET}: {'met' if ratio >= RATIO_TARGET else 'NOT met'})")
    print(f"credits charged: {charged} (expected {total * tier.credits}); invariant violations: {len(violations)}")
    for v in violations:
        print(f"  {v.name}: {v.detail}")
    return 0 if not violations and charged == total * tier.credits else 1


if __name__ == "__main__":
    sys.exit(main())
