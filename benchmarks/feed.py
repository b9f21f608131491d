"""Benchmark: the Community feed at 1,000 and at 1,000,000 posts, in one run, printed as ratios.

    python benchmarks/feed.py                       # SQLite, 1k and 1M posts (a few minutes, ~2 GB of disk)
    python benchmarks/feed.py --db postgresql       # STUDIO_BENCH_DATABASE_URL or STUDIO_TEST_DATABASE_URL
    python benchmarks/feed.py --sizes 1000,100000   # quicker

For each size it builds a fresh database with the app's schema (full-text triggers included), bulk-loads users,
images, posts and their likes (SQLite: executemany in one transaction; PostgreSQL: COPY), then times the real
CommunityService calls a page makes: the first and the 50th page of New and of Top this week, and a text
search. Page 50 is reached through its keyset cursor (the 49 pages before it are walked untimed): it is one
index range, like page 1, where OFFSET would read and discard 980 rows.

The data: 1,000 users; posts spread evenly over the last six days at both sizes (so that page 50 of "Top this
week", 1,000 posts deep, exists at 1k too); like counts skewed (most posts have a few, some have hundreds) with
one post_likes row per like; prompts drawn from a small vocabulary, so the searched word is in ~2% of the posts
(20 matches at 1k, ~20,000 at 1M). Targets: time at 1M / time at 1k <= 1.5 for every page query, <= 3 for the
search. Each figure is the median of --repeat runs, the sizes taking turns after a warm-up round.
"""

from __future__ import annotations

import argparse
import gc
import os
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._schema import schema_database  # noqa: E402
from studio_core.config import load_settings  # noqa: E402
from studio_core.db import Database  # noqa: E402
from studio_core.models import Base  # noqa: E402
from studio_core.services.catalog import CatalogService  # noqa: E402
from studio_core.services.community import PAGE_SIZE, CommunityService, FeedQuery  # noqa: E402

NOW = datetime(2026, 11, 20, 15, 30, tzinfo=UTC)
SPAN = timedelta(days=6)
USERS = 1000
SEARCH = "lighthouse"
ADJECTIVES = ("red", "quiet", "ancient", "glowing", "tiny", "giant", "misty", "golden", "broken", "frozen",
              "hidden", "floating", "rusty", "velvet", "electric", "paper", "crystal", "wild", "sleepy", "neon")
SUBJECTS = ("lighthouse", "fox", "whale", "robot", "castle", "teapot", "forest", "violin", "dragon", "bicycle",
            "harbour", "owl", "cathedral", "market", "comet", "garden", "train", "lantern", "desert", "tiger",
            "library", "orchid", "submarine", "windmill", "glacier", "samurai", "carousel", "volcano", "koi",
            "astronaut", "bridge", "cactus", "piano", "meadow", "jellyfish", "temple", "balloon", "wolf",
            "greenhouse", "canyon", "octopus", "tram", "mushroom", "clocktower", "reef", "falcon", "bakery",
            "observatory", "kite", "fjord")
STYLES = ("oil painting", "watercolor", "35mm photo", "isometric render", "ukiyo-e print", "pencil sketch",
          "cinematic still", "claymation", "pixel art", "art nouveau poster")
LIGHT = ("at dusk", "under moonlight", "in soft morning light", "at golden hour", "in heavy rain", "in fog",
         "backlit", "by candlelight")


def _sqlite_time(moment: datetime) -> str:
    # SQLAlchemy's SQLite DateTime storage format (naive UTC), so the app reads these rows as its own
    return moment.astimezone(UTC).replace(tzinfo=None).strftime("%Y-%m-%d %H:%M:%S.%f")


def _likes_for(rng: random.Random) -> int:
    """Skewed: most posts a handful, a few hundreds (a rough power law)."""
    return min(USERS - 1, int(rng.paretovariate(1.3)) - 1 + (rng.random() < 0.5))


def generate(size: int, categories: list[int], seed: int = 7):
    rng = random.Random(seed)
    step = (SPAN / size) / timedelta(microseconds=1)
    start = NOW - SPAN
    users = [(i, f"user{i}@bench.example", f"User {i}", "x", "creator", f"B{i:07d}", False)
             for i in range(1, USERS + 1)]
    images, posts, likes = [], [], []
    for i in range(1, size + 1):
        # ids grow with time, as they do when posts are published one after another
        at = start + timedelta(microseconds=int(step * (i - 1) + rng.random() * step * 0.5))
        owner = rng.randrange(1, USERS + 1)
        subject = rng.choice(SUBJECTS)
        prompt = f"a {rng.choice(ADJECTIVES)} {subject} {rng.choice(LIGHT)}"
        final = f"{prompt}, {rng.choice(STYLES)}, highly detailed"
        images.append((i, owner, f"bench-{i}", prompt, final, "", "standard", 768, 768, rng.randrange(2**31),
                       "local", "bench", "succeeded", 1.0, f"u{owner}/bench-{i}.png",
                       f"u{owner}/bench-{i}.thumb.webp", 1, at))
        wanted = _likes_for(rng)
        fans = [u for u in rng.sample(range(1, USERS + 1), wanted + 1) if u != owner][:wanted]
        likes += [(i, fan, at) for fan in fans]
        posts.append((i, i, owner, f"{rng.choice(ADJECTIVES).title()} {subject}", rng.choice(categories),
                      "visible", len(fans), 0, rng.randrange(0, 4), at))
    return users, images, posts, likes


USER_COLS = "id, email, display_name, password_hash, role, referral_code, disabled"
IMAGE_COLS = ("id, owner_id, request_key, prompt, final_prompt, negative_prompt, tier, width, height, seed, "
              "provider, model_version, status, progress, image_key, thumbnail_key, cost, created_at")
POST_COLS = "id, image_id, author_id, title, category_id, status, like_count, report_count, remix_count, created_at"
LIKE_COLS = "post_id, user_id, created_at"


def load(db: Database, data) -> float:
    users, images, posts, likes = data
    began = time.perf_counter()
    raw = db.engine.raw_connection()
    try:
        cur = raw.cursor()
        if db.is_sqlite:
            fix = lambda rows, i: [r[:i] + (_sqlite_time(r[i]),) + r[i + 1:] for r in rows]  # noqa: E731
            now = _sqlite_time(NOW)
            # A big page cache for the load only: index inserts in random key order then stay in memory.
            cur.execute("PRAGMA cache_size = -1000000")
            cur.execute("BEGIN")
            cur.executemany(f"INSERT INTO users ({USER_COLS}, created_at) VALUES (?,?,?,?,?,?,?,?)",
                            [u + (now,) for u in users])
            cur.executemany(f"INSERT INTO generated_images ({IMAGE_COLS}) VALUES ({','.join('?' * 18)})",
                            fix(images, 17))
            cur.executemany(f"INSERT INTO community_posts ({POST_COLS}) VALUES ({','.join('?' * 10)})",
                            fix(posts, 9))
            cur.executemany(f"INSERT INTO post_likes ({LIKE_COLS}) VALUES (?,?,?)", fix(likes, 2))
            cur.execute("COMMIT")
            cur.execute("ANALYZE")
            cur.execute("PRAGMA cache_size = -2000")  # back to SQLite's default for the measurements
        else:
            cur.execute("SET statement_timeout = 0")  # a COPY of millions of rows outlasts the app's 60 s
            naive = lambda rows, i: (r[:i] + (r[i].astimezone(UTC).replace(tzinfo=None),) + r[i + 1:]  # noqa: E731
                                     for r in rows)
            with cur.copy(f"COPY users ({USER_COLS}, created_at) FROM STDIN") as copy:
                for u in users:
                    copy.write_row(u + (NOW.replace(tzinfo=None),))
            for table, cols, rows, at in (("generated_images", IMAGE_COLS, images, 17),
                                          ("community_posts", POST_COLS, posts, 9),
                                          ("post_likes", LIKE_COLS, likes, 2)):
                with cur.copy(f"COPY {table} ({cols}) FROM STDIN") as copy:
                    for row in naive(rows, at):
                        copy.write_row(row)
            for table in ("users", "generated_images", "community_posts", "post_likes"):
                cur.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                            f"(SELECT coalesce(max(id), 1) FROM {table}))")
            raw.commit()
            raw.driver_connection.autocommit = True  # VACUUM runs outside a transaction
            raw.driver_connection.execute("VACUUM ANALYZE")
            raw.driver_connection.autocommit = False
    finally:
        raw.close()
    return time.perf_counter() - began


def fresh_database(kind: str, size: int, workdir: Path, pg_url: str | None) -> Database:
    """SQLite: one file per size. PostgreSQL: one schema per size (bench_<size>), every connection's
    search_path set to it, so both sizes stay loaded and can be measured side by side."""
    if kind == "sqlite":
        db = Database(f"sqlite:///{workdir / f'feed-{size}.db'}")
    else:
        db = schema_database(pg_url, f"bench_{size}", fresh=True)
    Base.metadata.create_all(db.engine)
    return db


QUERIES = {"New page 1": (FeedQuery(sort="new"), 1), "New page 50": (FeedQuery(sort="new"), 50),
           "Top/week page 1": (FeedQuery(sort="top", window="week"), 1),
           "Top/week page 50": (FeedQuery(sort="top", window="week"), 50),
           f"Search '{SEARCH}' page 1": (FeedQuery(text=SEARCH), 1)}


def prepare(service: CommunityService, viewer: int) -> dict[str, tuple[FeedQuery, str | None]]:
    """Each timed call and its cursor: page 50's comes from walking the 49 pages before it (untimed)."""
    calls = {}
    for name, (query, page) in QUERIES.items():
        cursor = None
        for _ in range(page - 1):
            cursor = service.feed(viewer, query, cursor).next_cursor
            if cursor is None:
                raise SystemExit(f"the data has fewer than {page} pages of {query}")
        shown = len(service.feed(viewer, query, cursor).items)
        assert shown == PAGE_SIZE or (query.text and shown), f"{name}: {shown} posts"  # ~20 matches at 1k
        calls[name] = (query, cursor)
    return calls


def measure(services: dict[int, CommunityService], repeat: int, viewer: int = 1) -> dict[int, dict[str, float]]:
    """Median of ``repeat`` timings per size and query. The sizes take turns, round after round, so that
    whatever else the machine does while this runs weighs on both sides of every ratio alike."""
    calls = {size: prepare(service, viewer) for size, service in services.items()}
    runs: dict[int, dict[str, list[float]]] = {size: {name: [] for name in QUERIES} for size in services}
    gc.collect()
    gc.disable()  # as timeit does: a collection of the load's garbage must not land inside one timing
    for round_ in range(repeat + 1):
        order = list(services) if round_ % 2 == 0 else list(reversed(services))
        for size in order:
            for name, (query, cursor) in calls[size].items():
                began = time.perf_counter()
                services[size].feed(viewer, query, cursor)
                if round_:  # round 0 warms caches and statement caches up
                    runs[size][name].append(time.perf_counter() - began)
    gc.enable()
    return {size: {name: statistics.median(values) for name, values in by_name.items()}
            for size, by_name in runs.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--sizes", default="1000,1000000", help="post counts, smallest first")
    parser.add_argument("--repeat", type=int, default=31)
    parser.add_argument("--workdir", type=Path, default=None, help="where the SQLite files go (default: a temp dir)")
    args = parser.parse_args()
    pg_url = os.environ.get("STUDIO_BENCH_DATABASE_URL") or os.environ.get("STUDIO_TEST_DATABASE_URL")
    if args.db == "postgresql" and not pg_url:
        raise SystemExit("set STUDIO_BENCH_DATABASE_URL (schemas bench_<size> are dropped and rebuilt there)")
    sizes = [int(s) for s in args.sizes.split(",")]
    settings = load_settings(_env_file=None, data_dir=Path(tempfile.gettempdir()) / "studio-bench")
    services: dict[int, CommunityService] = {}
    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        try:
            for size in sizes:
                db = fresh_database(args.db, size, Path(tmp), pg_url)
                catalog = CatalogService(db, settings)
                catalog.ensure_starter_catalog()
                began = time.perf_counter()
                data = generate(size, [c.id for c in catalog.categories()])
                made = time.perf_counter() - began
                loaded = load(db, data)
                print(f"{args.db}: {size:,} posts, {len(data[3]):,} likes: generated in {made:.1f} s, "
                      f"loaded in {loaded:.1f} s", flush=True)
                del data
                services[size] = CommunityService(db, settings, store=None,  # type: ignore[arg-type]
                                                  clock=lambda: NOW)
            figures = measure(services, args.repeat)
        finally:
            for service in services.values():
                service.db.dispose()
    small, large = sizes[0], sizes[-1]
    print(f"\n{'query':<28}{f'{small:,} posts':>14}{f'{large:,} posts':>16}{'ratio':>9}{'target':>9}")
    ok = True
    for name in QUERIES:
        a, b = figures[small][name], figures[large][name]
        target = 3.0 if name.startswith("Search") else 1.5
        ratio = b / a
        ok &= ratio <= target
        print(f"{name:<28}{a * 1000:>12.2f}ms{b * 1000:>14.2f}ms{ratio:>9.2f}{'<= ' + str(target):>9}"
              f"{'' if ratio <= target else '  MISSED'}")
    print(f"\nmedian of {args.repeat} interleaved runs each; " + ("all targets met" if ok else "some targets missed"))


if __name__ == "__main__":
    main()
