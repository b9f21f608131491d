"""``reconcile`` and ``sweep`` as the shell runs them (through argparse, on both databases)."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime

import pytest
from sqlalchemy import text

from studio_core import cli_ledger
from studio_core.bootstrap import Studio
from studio_core.config import resolve_providers

from .conftest import make_user


@pytest.fixture
def studio(database, settings, ledger) -> Studio:
    studio = Studio(settings=settings, db=database, providers=resolve_providers(settings))
    studio.__dict__["ledger"] = ledger  # the fixture's ledger, with the test's clock
    return studio


def run(studio: Studio, *argv: str) -> int:
    parser = argparse.ArgumentParser(prog="python -m studio_core")
    cli_ledger.register(parser.add_subparsers(dest="command", required=True), lambda: studio)
    args = parser.parse_args(list(argv))
    return args.func(args)


def test_reconcile_prints_every_invariant_and_exits_zero(studio, ledger, database, capsys):
    user = make_user(database)
    ledger.ensure_monthly_allowance(user)
    ledger.post(ledger.reserve(user, 3, "gen:a").id)
    assert run(studio, "reconcile") == 0
    out = capsys.readouterr().out
    for name, _, _ in ledger.check_invariants():
        assert f"ok    {name}" in out
    assert "All 10 invariants hold (all accounts)." in out
    assert run(studio, "reconcile", "--user", str(user)) == 0
    assert f"(account {user})" in capsys.readouterr().out


@pytest.mark.corrupts_ledger
def test_reconcile_exits_one_on_a_violation(studio, ledger, database, capsys):
    user = make_user(database)
    ledger.ensure_monthly_allowance(user)
    with database.write() as s:
        s.execute(text("UPDATE credit_accounts SET allowance_balance = 31 WHERE user_id = :u"), {"u": user})
    assert run(studio, "reconcile") == 1
    out = capsys.readouterr().out
    assert "FAIL  account_equals_entries" in out and f"user {user}" in out
    assert "1 of 10 invariants violated" in out


def test_sweep_expires_holds_and_renews_allowances(studio, ledger, database, clock, capsys):
    user = make_user(database)
    ledger.ensure_monthly_allowance(user)
    ledger.reserve(user, 2, "gen:stale", ttl_s=60)
    clock.now = datetime(2025, 4, 2, tzinfo=UTC)
    assert run(studio, "sweep", "--reconcile") == 0
    out = capsys.readouterr().out
    assert "Expired 1 stale hold; renewed the allowance of 1 active account." in out
    assert "Generation jobs: resumed 0 abandoned jobs, voided 0" in out
    assert "All 10 invariants hold" in out
    assert run(studio, "sweep") == 0
    assert "Expired 0 stale holds; renewed the allowance of 0 active accounts." in capsys.readouterr().out
    assert ledger.balance(user).allowance_month == "2025-04"


@pytest.mark.parametrize("command", ["reconcile", "sweep"])
def test_help_explains_the_command(studio, command, capsys):
    with pytest.raises(SystemExit) as exit_:
        run(studio, command, "--help")
    assert exit_.value.code == 0
    out = " ".join(capsys.readouterr().out.split())  # argparse re-wraps the description
    assert "Safe to run at any time" in out or "Read-only" in out
    assert len(out) > 400


def test_sweep_voids_a_job_whose_worker_died_before_reaching_the_provider(studio, ledger, database, capsys):
    from datetime import timedelta

    from sqlalchemy import update

    from studio_core.models import GeneratedImage, utcnow
    from studio_core.services.generation import GenerateRequest

    user = make_user(database)
    ledger.ensure_monthly_allowance(user)
    before = ledger.balance(user).available
    studio.generation.dispatch = None  # no worker pool: the job stays queued, as if its process died
    job = studio.generation.submit(user, GenerateRequest(prompt="a kite", tier="standard"), "req-sweep-test-1")
    with database.write() as s:  # what a killed app process leaves behind
        s.execute(update(GeneratedImage).where(GeneratedImage.id == job.id).values(
            lease_owner="dead", lease_expires_at=utcnow() - timedelta(seconds=5)))
    assert ledger.balance(user).available == before - 1
    assert run(studio, "sweep", "--reconcile") == 0
    assert "voided 1 that never reached the provider" in capsys.readouterr().out
    assert studio.generation.get(user, job.id).status == "failed"
    assert ledger.balance(user).available == before
