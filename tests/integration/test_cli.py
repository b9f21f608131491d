"""``python -m studio_core`` as an operator runs it: real subprocesses, real settings from the environment."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def cli(tmp_path: Path, *args: str, stdin: str | None = None, db_url: str | None = None,
        env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("STUDIO_")}
    full_env["STUDIO_DATA_DIR"] = str(tmp_path / "data")
    if db_url:
        full_env["STUDIO_DATABASE_URL"] = db_url
    full_env.update(env or {})
    return subprocess.run([sys.executable, "-m", "studio_core", *args], cwd=tmp_path, env=full_env,
                          input=stdin, capture_output=True, text=True, timeout=120)


def test_help_lists_every_command(tmp_path):
    out = cli(tmp_path, "--help")
    assert out.returncode == 0
    for command in ("migrate", "create-admin", "seed-demo", "reconcile", "sweep"):
        assert command in out.stdout
    sub = cli(tmp_path, "create-admin", "--help")
    assert sub.returncode == 0 and "--password-stdin" in sub.stdout


def test_migrate_create_admin_and_seed_demo_are_idempotent(tmp_path):
    first = cli(tmp_path, "migrate")
    assert first.returncode == 0, first.stderr
    head = first.stdout.split("(head ")[1].rstrip(").\n")
    assert f"is at schema {head} " in first.stdout
    assert (tmp_path / "data" / "studio.db").exists()
    assert cli(tmp_path, "migrate").returncode == 0

    made = cli(tmp_path, "create-admin", "boss@example.com", "--name", "Boss", "--password-stdin",
               stdin="Strong-Passw0rd!\n")
    assert made.returncode == 0, made.stderr
    assert "Created admin boss@example.com" in made.stdout
    again = cli(tmp_path, "create-admin", "boss@example.com")
    assert again.returncode == 0 and "Promoted admin" in again.stdout

    seeded = cli(tmp_path, "seed-demo")
    assert seeded.returncode == 0, seeded.stderr
    assert "ada@demo.studio: created" in seeded.stdout
    reseeded = cli(tmp_path, "seed-demo")
    assert "ada@demo.studio: already exists" in reseeded.stdout and "Catalog: already present" in reseeded.stdout


def test_weak_admin_password_is_a_clear_error(tmp_path):
    out = cli(tmp_path, "create-admin", "boss@example.com", "--password-stdin", stdin="weak\n")
    assert out.returncode == 2
    assert "Password too weak" in out.stderr and "Traceback" not in out.stderr


def test_unreachable_database_is_a_clear_error(tmp_path):
    out = cli(tmp_path, "migrate", db_url="postgresql://nobody:secret@127.0.0.1:1/nowhere")
    assert out.returncode == 1
    assert "Cannot reach the database at postgresql+psycopg://nobody:***@127.0.0.1:1/nowhere" in out.stderr
    assert "secret" not in out.stderr and "Traceback" not in out.stderr


def test_bad_setting_is_named(tmp_path):
    out = cli(tmp_path, "migrate", env={"STUDIO_MONTHLY_ALLOWANCE": "lots"})
    assert out.returncode == 2 and "STUDIO_MONTHLY_ALLOWANCE" in out.stderr


def test_production_refuses_a_selected_provider_without_its_secret(tmp_path):
    out = cli(tmp_path, "migrate", env={"STUDIO_ENVIRONMENT": "production", "STUDIO_GENERATOR": "replicate"})
    assert out.returncode == 2 and "STUDIO_REPLICATE_API_TOKEN" in out.stderr
