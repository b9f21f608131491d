"""Shared by the page and memory benchmarks: the ``seed-demo --scale`` data set of issue #9, seeded once into a
data directory and reused by later runs, and the accounts the benchmarks sign in with."""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script: the repository root, for studio_core and tests
    sys.path.insert(0, str(ROOT))

from sqlalchemy import text  # noqa: E402

from studio_core.bootstrap import build_studio  # noqa: E402
from studio_core.config import load_settings  # noqa: E402
from studio_core.services.demo import DEMO_PASSWORD, DEMO_USERS, HISTORY_EMAIL_DOMAIN, seed_demo  # noqa: E402

SCALE, LIKES = 100, 1_000_000  # issue #9: 100k images, 1M likes, 1M events (and 2,000 users)
DEFAULT_DIR = Path("/tmp/pages-bench")
MARKER = "seeded.json"
ADMIN_EMAIL = DEMO_USERS[0][0]
PASSWORD = DEMO_PASSWORD
OFFLINE = {"STUDIO_ENVIRONMENT": "development", "STUDIO_ENHANCER": "local", "STUDIO_GENERATOR": "local",
           "STUDIO_STORAGE": "local", "STUDIO_PAYMENTS": "sandbox"}


def default_data_dir(scale: int = SCALE, likes: int | None = LIKES) -> Path:
    return DEFAULT_DIR / f"scale{scale}-likes{likes if likes is not None else 'default'}"


def app_env(data_dir: Path) -> dict[str, str]:
    """The settings the app runs with on the data set: its directory (SQLite file and images), offline providers."""
    return {"STUDIO_DATA_DIR": str(data_dir), **OFFLINE}


def ensure_dataset(data_dir: Path, scale: int = SCALE, likes: int | None = LIKES, *, fresh: bool = False) -> dict:
    """Seed ``data_dir`` unless a finished seed of the same size is already there (seeding takes a minute or
    two). A directory without the marker (an interrupted seed) is seeded again from scratch."""
    marker = data_dir / MARKER
    if marker.exists() and not fresh:
        info = json.loads(marker.read_text())
        if info.get("scale") == scale and info.get("likes") == likes:
            age = datetime.now(UTC) - datetime.fromisoformat(info["seeded_at"])
            print(f"Reusing the data set in {data_dir} (seeded {age.total_seconds() / 3600:.1f} h ago; "
                  f"--fresh seeds it again):")
            if age.days >= 2:
                print("  note: the history ends when it was seeded; 'this week' views thin out as it ages")
            for line in info["report"]:
                print("  " + line)
            return info
    if data_dir.exists():
        shutil.rmtree(data_dir)
    print(f"Seeding seed-demo --scale {scale}" + (f" --likes {likes}" if likes is not None else "")
          + f" into {data_dir} (once; later runs reuse it) ...", flush=True)
    settings = load_settings(_env_file=None, data_dir=data_dir, environment="development", enhancer="local",
                             generator="local", storage="local", payments="sandbox")
    studio = build_studio(settings)
    started = time.perf_counter()
    try:
        report = seed_demo(studio, scale=scale, likes=likes, rng_seed=7)
    finally:
        studio.db.dispose()
    for line in report:
        print("  " + line)
    if not report[-1].endswith("all hold."):
        raise SystemExit("the seeded ledger does not balance; not using it")
    info = {"scale": scale, "likes": likes, "seeded_at": datetime.now(UTC).isoformat(), "report": report,
            "seconds": round(time.perf_counter() - started, 1)}
    marker.write_text(json.dumps(info, indent=1))
    return info


def heavy_users(data_dir: Path, n: int = 1) -> list[str]:
    """The history accounts with the most images (so also the most ledger entries and posts), heaviest first."""
    from studio_core.db import Database

    db = Database(f"sqlite:///{data_dir / 'studio.db'}")
    try:
        with db.engine.connect() as conn:
            rows = conn.execute(text(
                "SELECT u.email FROM users u JOIN generated_images g ON g.owner_id = u.id "
                "WHERE u.email LIKE :domain GROUP BY u.id ORDER BY COUNT(*) DESC, u.id LIMIT :n"),
                {"domain": f"%@{HISTORY_EMAIL_DOMAIN}", "n": n}).scalars().all()
    finally:
        db.dispose()
    return list(rows)


def user_profile(data_dir: Path, email: str) -> dict[str, int]:
    """What the account has, for the report: images, ledger entries, posts, likes given."""
    from studio_core.db import Database

    db = Database(f"sqlite:///{data_dir / 'studio.db'}")
    try:
        with db.engine.connect() as conn:
            uid = conn.execute(text("SELECT id FROM users WHERE email = :e"), {"e": email}).scalar_one()
            return {name: conn.execute(text(sql), {"u": uid}).scalar_one() for name, sql in (
                ("images", "SELECT COUNT(*) FROM generated_images WHERE owner_id = :u"),
                ("ledger entries", "SELECT COUNT(*) FROM credit_ledger WHERE user_id = :u"),
                ("posts", "SELECT COUNT(*) FROM community_posts WHERE author_id = :u"),
                ("likes given", "SELECT COUNT(*) FROM post_likes WHERE user_id = :u"))}
    finally:
        db.dispose()


def use_app_env(data_dir: Path) -> None:
    """This process reads its settings as the app would: only the data set's (no stray STUDIO_* or .env)."""
    for name in [k for k in os.environ if k.startswith("STUDIO_")]:
        del os.environ[name]
    os.environ.update(app_env(data_dir))
