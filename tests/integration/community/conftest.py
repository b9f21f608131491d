"""A small world for the community, gallery, moderation and catalog services, on SQLite and PostgreSQL.

Images are made the real way (submit -> scripted provider -> stored -> charged), so remix lineage goes
through the generation service's ``on_succeeded`` hook exactly as in the app. Users are inserted directly
(no argon2 hashing: these tests are about the community).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest

from studio_core.adapters.local_store import LocalStore
from studio_core.models import CreditAccount, User
from studio_core.services.accounts import UserView
from studio_core.services.catalog import CatalogService
from studio_core.services.community import CommunityService
from studio_core.services.gallery import GalleryService
from studio_core.services.generation import GenerateRequest, GenerationService, JobView, new_request_key
from studio_core.services.ledger import LedgerService
from studio_core.services.moderation import ModerationService
from tests.integration.generation.fakes import ScriptedGenerator

START = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
_n = itertools.count(1)


@dataclass
class Clock:
    now: datetime = field(default=START)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


class World:
    def __init__(self, db, settings, tmp_path):
        self.db = db
        self.settings = settings
        self.clock = Clock()
        self.store = LocalStore(tmp_path / "images")
        self.ledger = LedgerService(db, settings)
        self.generator = ScriptedGenerator(script=["succeeded"])
        self.community = CommunityService(db, settings, self.store, clock=self.clock)
        self.gallery = GalleryService(db, settings, self.store, clock=self.clock)
        self.moderation = ModerationService(db, settings, self.store, clock=self.clock)
        self.catalog = CatalogService(db, settings)
        self.generation = GenerationService(db, settings, self.ledger, self.generator, self.store,
                                            poll_interval_s=0,
                                            on_succeeded=self.community.on_generation_succeeded)
        self.catalog.ensure_starter_catalog()
        self.admin = self.user("Admin", role="admin")
        self.ada = self.user("Ada")
        self.bob = self.user("Bob")
        self.cy = self.user("Cy")

    def user(self, name: str, role: str = "creator") -> UserView:
        n = next(_n)
        with self.db.write() as s:
            u = User(email=f"{name.lower()}{n}@example.com", display_name=name, password_hash="x", role=role,
                     referral_code=f"C{n:07d}", created_at=START)
            s.add(u)
            s.flush()
            s.add(CreditAccount(user_id=u.id))
            return UserView(u.id, u.email, u.display_name, u.role, u.referral_code, u.created_at)

    def image(self, user: UserView, prompt: str = "a lighthouse at dusk", *, fail: bool = False,
              remixed_from: int | None = None, tier: str = "standard", template_id: int | None = None,
              at: datetime | None = None) -> JobView:
        """A finished (or failed) image, generated through the real service."""
        self.generator.script = ["failed"] if fail else ["succeeded"]
        job = self.generation.submit(user.id, GenerateRequest(prompt=prompt, tier=tier,
                                                              remixed_from_id=remixed_from,
                                                              template_id=template_id), new_request_key())
        self.generation.run_job(job.id)
        if at is not None:  # place it in time (the generation service stamps the real clock)
            from sqlalchemy import update

            from studio_core.models import GeneratedImage

            with self.db.write() as s:
                s.execute(update(GeneratedImage).where(GeneratedImage.id == job.id).values(created_at=at))
        return self.generation.get(user.id, job.id)

    def quick_posts(self, author: UserView, likes: list[int], days_ago: list[float]) -> list[int]:
        """Published posts inserted directly (no rendering), for tests about the feed's order and paging.
        ``likes`` are counts (like rows are not needed for ordering)."""
        from studio_core.models import CommunityPost, GeneratedImage

        ids = []
        with self.db.write() as s:
            for i, (n, ago) in enumerate(zip(likes, days_ago, strict=True)):
                at = self.clock.now - timedelta(days=ago)
                image = GeneratedImage(owner_id=author.id, request_key=f"quick-{author.id}-{i}-{next(_n)}",
                                       prompt=f"quick scene {i}", final_prompt=f"quick scene {i}",
                                       tier="standard", width=64, height=64, seed=i, provider="scripted",
                                       status="succeeded", image_key=None, created_at=at)
                s.add(image)
                s.flush()
                post = CommunityPost(image_id=image.id, author_id=author.id, title=f"Post {i}", like_count=n,
                                     remix_count=n % 2, created_at=at)
                s.add(post)
                s.flush()
                ids.append(post.id)
        return ids

    def post(self, user: UserView, title: str = "Dusk", prompt: str | None = None, **kw):
        job = self.image(user, prompt or f"{title.lower()} scene")
        return self.community.publish(user.id, job.id, title, **kw)


@pytest.fixture
def world(database, settings, tmp_path):
    settings.monthly_allowance = 200
    settings.max_jobs_per_minute = 1000
    settings.max_concurrent_jobs_per_user = 100
    settings.report_hide_threshold = 3
    w = World(database, settings, tmp_path)
    for u in (w.admin, w.ada, w.bob, w.cy):
        w.ledger.ensure_monthly_allowance(u.id)
    return w
