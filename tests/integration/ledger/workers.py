"""The hammer's unit of work, shared by the threaded test and the multi-process test (which imports it in
freshly spawned interpreters, so it must live in an importable module and take only picklable arguments)."""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from studio_core.config import load_settings
from studio_core.db import Database
from studio_core.services.ledger import HoldNotPending, InsufficientCredits, LedgerService


@dataclass
class Outcome:
    counts: Counter = field(default_factory=Counter)
    posted: set[int] = field(default_factory=set)  # holds this worker saw posted by its own post()
    voided: set[int] = field(default_factory=set)

    def __add__(self, other: Outcome) -> Outcome:
        return Outcome(self.counts + other.counts, self.posted | other.posted, self.voided | other.voided)


def hammer(ledger: LedgerService, user_id: int, *, seed: int, ops: int, cost: int, keys: list[str],
           void_rate: float = 0.0) -> Outcome:
    """Reserve under keys drawn at random from a shared pool (so workers collide on keys), then post (and
    sometimes post twice) or void. A key another worker is still resolving comes back pending, so two workers
    may resolve one hold: the loser of that race gets HoldNotPending, which is the ledger doing its job."""
    rng = random.Random(seed)
    out = Outcome()
    for _ in range(ops):
        key = rng.choice(keys)
        try:
            hold = ledger.reserve(user_id, cost, key, reference=key)
        except InsufficientCredits:
            out.counts["insufficient"] += 1
            continue
        if hold.status != "pending":
            out.counts["replayed"] += 1
            continue
        try:
            if rng.random() < void_rate:
                out.voided.add(ledger.void(hold.id).id)
            else:
                out.posted.add(ledger.post(hold.id).id)
                if rng.random() < 0.3:
                    assert ledger.post(hold.id).status == "posted"  # a double post is a no-op
        except HoldNotPending as exc:
            assert exc.hold.status in ("posted", "voided")
            out.counts["lost_race"] += 1
    return out


def hammer_in_process(url: str, data_dir: str, user_id: int, seed: int, ops: int, cost: int,
                      keys: list[str]) -> Outcome:
    db = Database(url)
    try:
        ledger = LedgerService(db, load_settings(_env_file=None, data_dir=Path(data_dir)))
        return hammer(ledger, user_id, seed=seed, ops=ops, cost=cost, keys=keys)
    finally:
        db.dispose()
