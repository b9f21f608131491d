"""A small hand-built world for the analytics tests: every figure the dashboard shows has an answer that can be
worked out on paper (see ``world`` below), on SQLite and on PostgreSQL."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import select

from studio_core.db import Database
from studio_core.models import (
    AnalyticsDailyEvents,
    AnalyticsDailyGenerations,
    AnalyticsDailyGenerationSources,
    AnalyticsEvent,
    CommunityPost,
    CreditAccount,
    CreditLedgerEntry,
    GeneratedImage,
    ImageCategory,
    ImageTemplate,
    PostLike,
    PostReport,
    PromptReuseEvent,
    Purchase,
    User,
)
from studio_core.services.accounts import UserView
from studio_core.services.analytics import (
    DAILY_COUNTED_EVENTS,
    AnalyticsService,
    Event,
    count_ended_generations,
    generation_latency_ms,
)

# The period the tests read: Saturday 1 March .. Friday 7 March 2025; the previous period is 22 .. 28 February.
START, END = date(2025, 3, 1), date(2025, 3, 7)


def at(day: date | str, hour: float = 12.0) -> datetime:
    d = date.fromisoformat(day) if isinstance(day, str) else day
    return datetime(d.year, d.month, d.day, tzinfo=UTC) + timedelta(hours=hour)


@dataclass
class Clock:
    now: datetime = field(default_factory=lambda: at(END, 18))

    def __call__(self) -> datetime:
        return self.now


@dataclass
class World:
    db: Database
    analytics: AnalyticsService
    clock: Clock
    admin: UserView
    creator: UserView
    users: dict[str, int] = field(default_factory=dict)
    template_id: int = 0
    other_template_id: int = 0
    _n: int = 0

    def user(self, name: str, role: str = "creator") -> int:
        with self.db.write() as s:
            u = User(email=f"{name}@example.com", display_name=name.title(), password_hash="x", role=role,
                     referral_code=f"R{len(self.users):07d}", created_at=at("2025-01-01"))
            s.add(u)
            s.flush()
            s.add(CreditAccount(user_id=u.id))
            self.users[name] = u.id
            return u.id

    def view(self, name: str, role: str) -> UserView:
        return UserView(id=self.users[name], email=f"{name}@example.com", display_name=name, role=role,
                        referral_code="-", created_at=at("2025-01-01"))

    def event(self, name: str, user: str | None, when: datetime, **props) -> None:
        self.clock.now = when
        assert self.analytics.track(name, self.users[user] if user else None, props, session_id="s1")

    def image(self, owner: str, created: datetime, *, status: str = "succeeded", tier: str = "standard",
              provider: str = "local", latency_s: float = 5.0, error: str | None = None,
              template: int | None = None, enhanced: bool = False) -> int:
        self._n += 1
        ended = status in ("succeeded", "failed", "canceled")
        finished = created + timedelta(seconds=latency_s) if ended else None
        with self.db.write() as s:
            row = GeneratedImage(
                owner_id=self.users[owner], request_key=f"req-test-{self._n:04d}", prompt="a fox",
                enhanced_prompt="a fox, golden hour" if enhanced else None,
                final_prompt="a fox, golden hour" if enhanced else "a fox", template_id=template, tier=tier,
                width=768, height=768, seed=1, provider=provider, status=status, error_code=error,
                cost=1 if status == "succeeded" else 0, created_at=created, queued_at=created,
                started_at=created, finished_at=finished,
                latency_ms=generation_latency_ms(created, finished) if finished else None)
            s.add(row)
            s.flush()
            if ended:  # what GenerationService does in the transaction that ends a job
                count_ended_generations(s, GeneratedImage.id == row.id)
            return row.id

    def entry(self, user: str, kind: str, amount: int, when: datetime, bucket: str = "paid") -> None:
        self._n += 1
        with self.db.write() as s:
            s.add(CreditLedgerEntry(user_id=self.users[user], bucket=bucket, amount=amount, kind=kind,
                                    idempotency_key=f"test:{self._n}", created_at=when))

    def purchase(self, user: str, pack: str, cents: int, when: datetime, status: str = "paid") -> None:
        self._n += 1
        with self.db.write() as s:
            s.add(Purchase(user_id=self.users[user], pack_id=pack, credits=50, price_cents=cents, currency="usd",
                           gateway="sandbox", gateway_session_id=f"cs_{self._n}", status=status,
                           created_at=when - timedelta(minutes=1),
                           completed_at=when if status == "paid" else None))

    def post(self, image_id: int, author: str, when: datetime) -> int:
        with self.db.write() as s:
            post = CommunityPost(image_id=image_id, author_id=self.users[author], title="Fox", created_at=when)
            s.add(post)
            s.flush()
            return post.id

    def like(self, post_id: int, user: str, when: datetime) -> None:
        with self.db.write() as s:
            s.add(PostLike(post_id=post_id, user_id=self.users[user], created_at=when))

    def report(self, post_id: int, user: str, when: datetime, resolved_after_h: float | None = None) -> None:
        with self.db.write() as s:
            s.add(PostReport(post_id=post_id, reporter_id=self.users[user], reason="spam",
                             status="dismissed" if resolved_after_h is not None else "open",
                             resolved_by_id=self.users["admin"] if resolved_after_h is not None else None,
                             resolved_at=when + timedelta(hours=resolved_after_h)
                             if resolved_after_h is not None else None, created_at=when))

    def remix(self, image_id: int, user: str, when: datetime, *, generated: bool = True) -> None:
        # the remix's own image is dated after every period the tests read, so it changes no other figure
        new_image = self.image(user, at("2025-04-01")) if generated else None
        with self.db.write() as s:
            s.add(PromptReuseEvent(source_image_id=image_id, user_id=self.users[user], new_image_id=new_image,
                                   created_at=when))


@pytest.fixture
def empty_world(database, settings) -> Iterator[World]:
    clock = Clock()
    # Every call adds up the figures again: these tests change the data between calls (the kept dashboards
    # have a test of their own).
    analytics = AnalyticsService(database, settings.model_copy(update={"analytics_cache_s": 0}), clock=clock)
    w = World(db=database, analytics=analytics, clock=clock, admin=None, creator=None)  # type: ignore[arg-type]
    w.user("admin", role="admin")
    w.user("ada")
    w.user("bob")
    w.user("cy")
    w.admin, w.creator = w.view("admin", "admin"), w.view("ada", "creator")
    with database.write() as s:
        cat = ImageCategory(name="Portraits", slug="portraits")
        other = ImageCategory(name="Landscapes", slug="landscapes", sort_order=1)
        s.add_all([cat, other])
        s.flush()
        t1 = ImageTemplate(category_id=cat.id, title="Headshot", prompt_pattern="{subject}")
        t2 = ImageTemplate(category_id=other.id, title="Vista", prompt_pattern="{subject}")
        s.add_all([t1, t2])
        s.flush()
        w.template_id, w.other_template_id = t1.id, t2.id
    yield w


@pytest.fixture
def world(empty_world: World) -> World:
    """The data set, and what it should show for 1..7 March 2025 (previous period 22..28 February):

    * activity: ada on 1 and 2 March and 26 Feb, bob on 2 March, cy on 25 Feb -> 2 active users (ada, bob),
      previous 2 (ada, cy); by day 1 March: 1, 2 March: 2.
    * generations this period: ada, local/standard succeeded in 2, 4, 6, 8 s (p50 5, p95 7.7), premium2 on
      replicate succeeded in 10 s; failed: provider_timeout x2, rate_limited x1; one canceled -> 9 generations,
      success rate 5 / 8. Previous period: one succeeded, one failed (0.5).
    * credits this period: allowance granted 30, purchased 50, spent 2 + 4, refunded 2, expired 10 -> spent
      net 4; previous: spent 1.
    * revenue: starter $5 + creator $10 paid (and a failed $5) -> $15; previous $5.
    * enhancement: 3 requested, accepted 1 + edited 1 (+1 rejected); generated from an enhanced prompt 1;
      published 1.
    * templates: Headshot 3 uses (2 succeeded, 1 failed), 1 publish, 2 likes, 1 remix; Vista 1 use.
    * community: 2 posts (3 and 5 March), likes 2 on 4 March + 1 on 6 March, reports 2 (resolved after 2 h and
      4 h: p50 3 h, p95 3.9 h) + 1 open.
    """
    w = empty_world
    w.event(Event.PAGE_VIEW, "ada", at("2025-03-01", 9), page="Studio")
    w.event(Event.PAGE_VIEW, "ada", at("2025-03-02", 9), page="Studio")
    w.event(Event.PAGE_VIEW, "bob", at("2025-03-02", 10), page="Community")
    w.event(Event.PAGE_VIEW, "ada", at("2025-02-26", 9), page="Studio")
    w.event(Event.PAGE_VIEW, "cy", at("2025-02-25", 9), page="Studio")
    w.event(Event.PAGE_VIEW, None, at("2025-03-03", 9), page="Sign in")  # anonymous: never an active user
    for name in (Event.ENHANCE_REQUESTED, Event.ENHANCE_REQUESTED, Event.ENHANCE_REQUESTED,
                 Event.ENHANCE_ACCEPTED, Event.ENHANCE_EDITED, Event.ENHANCE_REJECTED):
        w.event(name, "ada", at("2025-03-01", 10))
    w.event(Event.ENHANCE_REQUESTED, "ada", at("2025-02-27", 10))  # previous period: not in the funnel

    day = at("2025-03-03")
    t1, t2 = w.template_id, w.other_template_id
    for latency in (2, 4, 6, 8):
        w.image("ada", day, latency_s=latency, template=t1 if latency in (2, 4) else None)
    enhanced = w.image("ada", at("2025-03-05"), tier="premium2", provider="replicate", latency_s=10,
                       enhanced=True, template=t2)
    w.image("ada", day, status="failed", error="provider_timeout", template=t1)
    w.image("bob", day, status="failed", error="provider_timeout")
    w.image("bob", at("2025-03-04"), status="failed", error="rate_limited", tier="premium2")
    w.image("bob", at("2025-03-04"), status="canceled", error="canceled")
    w.image("ada", at("2025-02-24"))
    w.image("ada", at("2025-02-24"), status="failed", error="blocked_prompt")

    w.entry("ada", "allowance_grant", 30, at("2025-03-01"), bucket="allowance")
    w.entry("bob", "purchase", 50, at("2025-03-02"))
    w.entry("ada", "generation", -2, at("2025-03-03"))
    w.entry("ada", "generation", -4, at("2025-03-03"))
    w.entry("ada", "refund", 2, at("2025-03-04"))
    w.entry("ada", "allowance_expiry", -10, at("2025-03-01"), bucket="allowance")
    w.entry("ada", "generation", -1, at("2025-02-24"))

    w.purchase("bob", "starter", 500, at("2025-03-02"))
    w.purchase("bob", "creator", 1000, at("2025-03-06"))
    w.purchase("cy", "starter", 500, at("2025-03-06"), status="failed")
    w.purchase("cy", "starter", 500, at("2025-02-25"))

    with w.db.read() as s:
        headshot_image = s.scalar(select(GeneratedImage.id).where(GeneratedImage.template_id == t1,
                                                                  GeneratedImage.status == "succeeded")
                                  .order_by(GeneratedImage.id).limit(1))
    p1 = w.post(headshot_image, "ada", at("2025-03-03", 13))
    p2 = w.post(enhanced, "ada", at("2025-03-05", 13))
    w.like(p1, "bob", at("2025-03-04"))
    w.like(p1, "cy", at("2025-03-04"))
    w.like(p2, "bob", at("2025-03-06"))
    w.report(p1, "bob", at("2025-03-04"), resolved_after_h=2)
    w.report(p1, "cy", at("2025-03-04"), resolved_after_h=4)
    w.report(p2, "cy", at("2025-03-06"))
    w.remix(headshot_image, "bob", at("2025-03-05"))
    w.remix(headshot_image, "cy", at("2025-03-05"), generated=False)  # started, never generated: not a remix yet
    return w


# -- what the rollups should hold, recounted from the rows in plain Python (they must equal it) ------------
def expected_rollups(db) -> tuple[Counter, Counter]:
    outcomes, sources = Counter(), Counter()
    with db.read() as s:
        for r in s.scalars(select(GeneratedImage).where(GeneratedImage.status.in_(("succeeded", "failed",
                                                                                   "canceled")))):
            day = r.created_at.date()
            outcomes[(day, r.tier, r.status, r.provider, r.error_code or "")] += 1
            sources[(day, r.template_id or 0, r.status, r.enhanced_prompt is not None)] += 1
    return outcomes, sources


def rollups(db) -> tuple[Counter, Counter]:
    with db.read() as s:
        outcomes = Counter({(r.day, r.tier, r.status, r.provider, r.error_code): r.n
                            for r in s.scalars(select(AnalyticsDailyGenerations))})
        sources = Counter({(r.day, r.template_id, r.status, bool(r.enhanced)): r.n
                           for r in s.scalars(select(AnalyticsDailyGenerationSources))})
    return outcomes, sources


def expected_event_counts(db) -> Counter:
    with db.read() as s:
        return Counter((r.created_at.date(), r.name) for r in s.scalars(select(AnalyticsEvent))
                       if r.name in DAILY_COUNTED_EVENTS)


def event_counts(db) -> Counter:
    with db.read() as s:
        return Counter({(r.day, r.name): r.n for r in s.scalars(select(AnalyticsDailyEvents))})


def latencies(db) -> dict[int, tuple[int | None, int | None]]:
    """job id -> (latency_ms, what it should be)"""
    with db.read() as s:
        return {r.id: (r.latency_ms, generation_latency_ms(r.created_at, r.finished_at) if r.finished_at else None)
                for r in s.scalars(select(GeneratedImage))}
