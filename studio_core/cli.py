"""``python -m studio_core``: operate a Studio installation from the shell.

Every command reads the same settings as the app (STUDIO_* environment variables, .env) and brings the
database to the current schema first. Errors are one clear line on stderr and a non-zero exit.
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from collections.abc import Callable

from studio_core.bootstrap import Studio, build_studio
from studio_core.config import ConfigError, load_settings
from studio_core.db import DatabaseUnavailable
from studio_core.migrate import SchemaError, current_revision, head_revision
from studio_core.services.accounts import AccountError

EXIT_USAGE = 2
EXIT_FAILED = 1


def _load_studio() -> Studio:
    return build_studio(load_settings())


def _cmd_migrate(args: argparse.Namespace) -> int:
    studio = build_studio(load_settings(), seed_catalog=not args.no_seed)
    print(f"Database {studio.db.dialect} is at schema {current_revision(studio.db)} "
          f"(head {head_revision(studio.db)}).")
    return 0


def _read_password(args: argparse.Namespace) -> str:
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\n")
    env = os.environ.get("STUDIO_ADMIN_PASSWORD")
    if env:
        return env
    if not sys.stdin.isatty():
        raise AccountError("No password given: use --password-stdin or set STUDIO_ADMIN_PASSWORD.")
    first = getpass.getpass("Password for the admin account: ")
    if first != getpass.getpass("Repeat the password: "):
        raise AccountError("The two passwords differ.")
    return first


def _cmd_create_admin(args: argparse.Namespace) -> int:
    studio = _load_studio()
    existed = studio.accounts.by_email(args.email) is not None
    password = "" if existed else _read_password(args)
    user = studio.accounts.create_admin(args.email, args.name or args.email.split("@")[0], password)
    print(f"{'Promoted' if existed else 'Created'} admin {user.email} (id {user.id}).")
    return 0


def _cmd_seed_demo(args: argparse.Namespace) -> int:
    from studio_core.services.demo import seed_demo

    if args.likes is not None and not args.scale:
        raise ConfigError("--likes tops up the history's likes: give --scale too.")
    studio = _load_studio()
    if studio.settings.is_production and not args.force:
        raise ConfigError("seed-demo adds demo accounts with a published password; refusing in production "
                          "(pass --force if you really mean it).")
    report = seed_demo(studio, scale=args.scale, likes=args.likes)
    for line in report:
        print(line)
    return 0


def _non_negative_int(value: str) -> int:
    n = int(value)
    if n < 0:
        raise argparse.ArgumentTypeError("must be 0 or more")
    return n


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m studio_core",
        description="Operate Studio: migrate the database, create admins, seed demo data, check credits.",
        epilog="Settings come from STUDIO_* environment variables or a .env file (see README).")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("migrate", help="upgrade the database schema to the current version",
                       description="Upgrade the database to the newest schema (safe to run any time; the app "
                                   "does it on start too) and give an empty catalog its starter templates.")
    p.add_argument("--no-seed", action="store_true", help="do not add the starter catalog to an empty database")
    p.set_defaults(func=_cmd_migrate)

    p = sub.add_parser("create-admin", help="create an admin account (or promote an existing one)",
                       description="Create an admin account with a password, or make an existing account an "
                                   "admin. The password is asked for interactively, or read from "
                                   "--password-stdin or STUDIO_ADMIN_PASSWORD.")
    p.add_argument("email", help="the admin's email address")
    p.add_argument("--name", help="display name (default: the part of the email before @)")
    p.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    p.set_defaults(func=_cmd_create_admin)

    p = sub.add_parser("seed-demo", help="add the starter catalog and demo accounts (idempotent)",
                       description="Add the starter catalog (categories and templates) and demo accounts, "
                                   "so the app can be tried at once. Running it again changes nothing.")
    p.add_argument("--force", action="store_true", help="allow in production mode")
    p.add_argument("--scale", type=_non_negative_int, default=0, metavar="N",
                   help="also add a year of history for the analytics dashboard: about N×20 users, N×1,000 "
                        "generations and N×10,000 events (default 0: none; 100 = a million events)")
    p.add_argument("--likes", type=_non_negative_int, default=None, metavar="M",
                   help="with --scale: about M likes in all, spread over the posts with a realistic skew, each "
                        "also a 'like' event (default: the couple per post a small community gives, ~17,000 "
                        "at --scale 100; --scale 100 --likes 1000000 is the data set of the page benchmark)")
    p.set_defaults(func=_cmd_seed_demo)

    _register_optional(sub)
    return parser


def _register_optional(sub) -> None:
    """Commands that live beside the capability they operate (ledger: reconcile, sweep)."""
    from studio_core import cli_ledger

    cli_ledger.register(sub, _load_studio)


def main(argv: list[str] | None = None, *, parser_factory: Callable[[], argparse.ArgumentParser] = build_parser
         ) -> int:
    parser = parser_factory()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (ConfigError, DatabaseUnavailable, SchemaError, AccountError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE if isinstance(exc, ConfigError | AccountError) else EXIT_FAILED
