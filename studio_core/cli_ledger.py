"""``python -m studio_core reconcile`` and ``sweep``: the ledger's two maintenance commands.

Both are safe to run at any time, as often as wanted, from several machines at once: ``reconcile`` only reads,
and every change ``sweep`` makes is a conditional update that a concurrent run (or the app) cannot double.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from studio_core.bootstrap import Studio

EXIT_VIOLATION = 1


def register(subparsers: argparse._SubParsersAction, load_studio: Callable[[], Studio]) -> None:
    p = subparsers.add_parser(
        "reconcile", help="check that the credit ledger balances (exit 1 on any violation)",
        description="Check every invariant of the credit ledger and print each one with its result: account "
                    "balances equal the sum of their ledger entries per bucket, reserved credits equal the "
                    "pending holds, nothing is negative, every charged hold has exactly one debit per bucket "
                    "and no other hold has any, refunds match their charges, purchases are credited once, "
                    "and no idempotency key is used twice. Read-only; exits 1 when anything is violated, "
                    "so it can run from cron or a health check.",
        epilog="See docs/credit-ledger.md for the contract these checks enforce.")
    p.add_argument("--user", type=int, metavar="USER_ID", help="check one account only (default: all)")
    p.set_defaults(func=lambda args: reconcile(load_studio(), user_id=args.user))

    p = subparsers.add_parser(
        "sweep", help="finish abandoned jobs, expire stale credit holds and renew monthly allowances",
        description="Finish generation jobs whose worker died (polling the provider again; a job that never "
                    "reached the provider is voided, not charged), expire every pending credit hold whose time is up (its credits are released, never "
                    "charged), then, for each account active in the last --active-days days whose allowance "
                    "is from an earlier month, expire the unused allowance and grant this month's. Safe to "
                    "run at any time and from several machines: each change happens at most once. Run it "
                    "every few minutes (holds) and at least daily (allowances).",
        epilog="Dormant accounts are left alone; their old allowance is expired the moment they become active.")
    p.add_argument("--active-days", type=int, default=35, metavar="DAYS",
                   help="how recently an account must have signed in, signed up or reserved credits to get "
                        "its allowance renewed (default: 35)")
    p.add_argument("--reconcile", action="store_true", help="run reconcile afterwards (exit 1 on violations)")
    p.set_defaults(func=lambda args: sweep(load_studio(), active_days=args.active_days,
                                           then_reconcile=args.reconcile))


def reconcile(studio: Studio, *, user_id: int | None = None) -> int:
    results = studio.ledger.check_invariants(user_id)
    width = max(len(name) for name, _, _ in results)
    for name, ok, detail in results:
        print(f"{'ok  ' if ok else 'FAIL'}  {name:<{width}}  {detail}")
    failed = [name for name, ok, _ in results if not ok]
    scope = f"account {user_id}" if user_id is not None else "all accounts"
    if failed:
        print(f"{len(failed)} of {len(results)} invariants violated ({scope}): {', '.join(failed)}")
        return EXIT_VIOLATION
    print(f"All {len(results)} invariants hold ({scope}).")
    return 0


def sweep(studio: Studio, *, active_days: int = 35, then_reconcile: bool = False) -> int:
    if active_days < 1:
        raise SystemExit("sweep: --active-days must be at least 1")
    # Generation jobs whose worker died (lease lapsed): finish the ones that reached the provider (polled here,
    # never resubmitted), void the rest. Runs before the hold sweep, so a resumed job can still be charged.
    resumed, voided = studio.generation.resume_unfinished(studio.generation.run_job)
    print(f"Generation jobs: resumed {resumed} abandoned job{'s' if resumed != 1 else ''}, voided {voided} that "
          "never reached the provider.")
    report = studio.ledger.sweep(active_within_days=active_days)
    print(f"Expired {report.expired_holds} stale hold{'s' if report.expired_holds != 1 else ''}; renewed the "
          f"allowance of {report.allowances_renewed} active account{'s' if report.allowances_renewed != 1 else ''}.")
    return reconcile(studio) if then_reconcile else 0
