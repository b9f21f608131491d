"""Demo data for trying the app: the starter catalog, a few accounts with a published password and, with
``scale > 0``, a year of realistic history for the analytics dashboard and its benchmark.

The history is simulated per user in time order -- sign-up, sessions, enhancements, purchases when credits run
short, generations with a realistic status / latency mix (and one provider incident), publishing, likes,
reports and their moderation, remixes -- and then bulk-inserted: ``executemany`` in large batches on SQLite,
``COPY`` on PostgreSQL, all in one transaction. The money follows the ledger's contract exactly (allowance
first, holds posted or voided, monthly expiry and grant, purchases credited once, refunds of charges), so
``LedgerService.check_invariants()`` holds afterwards; the seed verifies it and reports the result.
"""

from __future__ import annotations

import bisect
import hashlib
import json
import logging
import math
import random
import secrets
import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from argon2 import PasswordHasher
from sqlalchemy import Connection, func, select, text, update

from studio_core.bootstrap import Studio
from studio_core.models import AnalyticsEvent, GeneratedImage, ImageTemplate, User
from studio_core.ports import ERROR_MESSAGES, ErrorCode, GenerationRequest
from studio_core.services.analytics import Event, count_ended_generations, count_events, generation_latency_ms

log = logging.getLogger(__name__)

DEMO_PASSWORD = "Demo-Studio-2026"
DEMO_USERS = (  # the admin first: on an empty database the first account becomes the admin anyway
    ("admin@demo.studio", "Demo Admin", "admin"),
    ("ada@demo.studio", "Ada Lovelace", "creator"),
    ("grace@demo.studio", "Grace Hopper", "creator"),
)
HISTORY_EMAIL_DOMAIN = "history.demo.studio"
# What one unit of --scale adds; --scale 100 gives 2,000 users, ~100,000 generations and 1,000,000 events.
USERS_PER_UNIT, GENERATIONS_PER_UNIT, EVENTS_PER_UNIT = 20, 1_000, 10_000
# Without a likes target a post gets a couple of likes (a small community, ~17,000 at --scale 100); a target
# (``likes=``) tops that up, e.g. to the 1,000,000 of issue #9's performance envelope.
HISTORY_DAYS = 365


def seed_demo(studio: Studio, scale: int = 0, *, now: datetime | None = None,
              rng_seed: int | None = None, likes: int | None = None) -> list[str]:
    """Idempotent: existing accounts and a non-empty catalog are left exactly as they are, and a history is
    added only to a database that has none yet. ``likes``: about that many likes in the history in all."""
    if scale < 0:
        raise ValueError("scale must be 0 or more")
    if likes is not None and likes < 0:
        raise ValueError("likes must be 0 or more")
    report = []
    added = studio.catalog.ensure_starter_catalog()
    report.append(f"Catalog: {added} starter templates added." if added else "Catalog: already present.")
    for email, name, role in DEMO_USERS:
        if studio.accounts.by_email(email) is not None:
            report.append(f"{email}: already exists.")
            continue
        user = studio.accounts.sign_up(email, name, DEMO_PASSWORD)
        studio.accounts.set_role(user.id, role)
        report.append(f"{email}: created as {role} (password {DEMO_PASSWORD}).")
    if scale:
        report += seed_history(studio, scale, now=now, rng_seed=rng_seed, likes=likes)
    return report


# == the simulated world =====================================================================================
SUBJECTS = ("a red fox in the snow", "a lighthouse on a cliff", "an old tram in Lisbon", "a cup of matcha",
            "a robot gardener", "a koi pond at dusk", "a mountain cabin", "a vintage camera", "a jazz trio",
            "a desert caravan", "a glass terrarium", "a paper boat", "a steam locomotive", "a snowy owl",
            "a bowl of ramen", "a treehouse village", "a sailing ship", "a city rooftop garden", "an astronaut cat",
            "a field of sunflowers", "a medieval library", "a neon noodle bar", "a hot air balloon", "a wolf pack")
STYLES = ("watercolor", "cinematic photo", "isometric render", "oil painting", "pixel art", "studio photo",
          "ink sketch", "low-poly 3D", "film photograph", "art nouveau poster")
ENHANCEMENTS = ("golden hour lighting", "rule of thirds", "highly detailed", "soft volumetric light",
                "shallow depth of field", "rich colour palette", "35mm film grain", "dramatic sky",
                "crisp focus", "ambient occlusion", "balanced composition", "subtle rim light")
TIER_MIX = (("standard", 0.6), ("premium2", 0.3), ("premium4", 0.1))
LATENCY_S = {"standard": 7.0, "premium2": 13.0, "premium4": 24.0}  # median, created -> finished, Replicate
ERROR_MIX = ((ErrorCode.PROVIDER_TIMEOUT, 0.3), (ErrorCode.PROVIDER_UNAVAILABLE, 0.25),
             (ErrorCode.RATE_LIMITED, 0.15), (ErrorCode.BLOCKED_PROMPT, 0.15), (ErrorCode.INVALID_OUTPUT, 0.1),
             (ErrorCode.GENERATION_FAILED, 0.05))
PAGES = (("Community", 0.35), ("Gallery", 0.25), ("Studio", 0.2), ("Wallet", 0.1), ("Account", 0.1))
REPORT_REASONS = ("spam", "nsfw", "hateful", "copyright", "other")
DAY = 86_400.0


def _pick(rng: random.Random, weighted: Sequence[tuple[Any, float]]) -> Any:
    x, acc = rng.random(), 0.0
    for value, weight in weighted:
        acc += weight
        if x < acc:
            return value
    return weighted[-1][0]


class _Row:
    """A row whose id is assigned only after its table is sorted by time (so ids grow with time, as they
    would have in production); references between rows are to these objects."""

    __slots__ = ("id", "t", "v")

    def __init__(self, t: float, **values: Any) -> None:
        self.id = 0
        self.t = t
        self.v = values


@dataclass
class _UserSim:
    id: int
    signup: float
    end: float  # churned (or now)
    engagement: float
    referred_by: int | None
    sessions: list[float] = field(default_factory=list)
    allowance: int = 0
    paid: int = 0
    month: str | None = None
    credits_due: list[tuple[float, str, int]] = field(default_factory=list)  # (time, bucket, amount) pending


class _History:
    """Builds every row of the history in memory (as compact tuples and ``_Row`` objects), in time order."""

    def __init__(self, studio: Studio, scale: int, now: datetime, rng: random.Random, admin_id: int,
                 first_user_id: int, templates: list[tuple[int, int, str, str]], categories: list[int],
                 image_keys: list[tuple[str, str, int]]) -> None:
        self.s = studio.settings
        self.scale = scale
        self.rng = rng
        self.admin_id = admin_id
        self.t0 = (now - timedelta(days=HISTORY_DAYS)).astimezone(UTC).replace(tzinfo=None)
        self.midnight_offset = (self.t0 - datetime.combine(self.t0.date(), datetime.min.time())).total_seconds()
        self.horizon = HISTORY_DAYS * DAY
        self.templates = templates  # (id, category id, title, pattern)
        self.categories = categories
        self.image_keys = image_keys
        self.token = secrets.token_hex(3)
        self.packs = list(self.s.credit_packs)
        self.users: list[_UserSim] = []
        self.first_user_id = first_user_id
        self.events: list[tuple[float, str, int | None, str | None, str]] = []
        self.holds: list[_Row] = []
        self.images: list[_Row] = []
        self.entries: list[_Row] = []
        self.purchases: list[_Row] = []
        self.posts: list[_Row] = []
        self.likes: list[_Row] = []
        self.reports: list[_Row] = []
        self.actions: list[_Row] = []
        self.reuses: list[_Row] = []
        self.referrals: list[_Row] = []
        self.template_uses: dict[int, int] = defaultdict(int)
        self.extra_like_events = 0
        self.incident = (self.horizon - 40 * DAY, self.horizon - 37 * DAY)  # a three-day provider outage

    # -- helpers ---------------------------------------------------------------------------------------------
    def ts(self, t: float) -> str:
        # The exact text SQLAlchemy stores on SQLite (and a timestamp literal PostgreSQL's COPY accepts).
        return (self.t0 + timedelta(seconds=t)).isoformat(" ", "microseconds")

    def month(self, t: float) -> str:
        return (self.t0 + timedelta(seconds=t)).strftime("%Y-%m")

    def event(self, t: float, name: str, user: int | None, session: str | None, **props: Any) -> None:
        if t < self.horizon:
            self.events.append((t, name, user, session, json.dumps(props, separators=(",", ":"))))

    def entry(self, user: _UserSim, t: float, bucket: str, amount: int, kind: str, key: Any, **extra: Any
              ) -> _Row:
        row = _Row(t, user_id=user.id, bucket=bucket, amount=amount, kind=kind, key=key, hold=None,
                   refund_of=None, reference="", memo="", actor_id=None)
        row.v.update(extra)
        self.entries.append(row)
        return row

    # -- users -----------------------------------------------------------------------------------------------
    def make_users(self) -> None:
        n = USERS_PER_UNIT * self.scale
        # Steady growth: the sign-up rate doubles over the year (density 1 + t, so the inverse of its
        # distribution function is sqrt(1 + 3u) - 1); with churn, about a third of the year's activity falls in
        # its last quarter.
        signups = sorted(self.horizon * (math.sqrt(1 + 3 * self.rng.random()) - 1) for _ in range(n))
        for i, signup in enumerate(signups):
            churn = signup + self.rng.expovariate(1 / (150 * DAY)) if self.rng.random() < 0.45 else self.horizon
            referred_by = None
            if i > 10 and self.rng.random() < 0.15:
                referred_by = self.users[self.rng.randrange(i)].id
            self.users.append(_UserSim(id=self.first_user_id + i, signup=signup,
                                       end=min(churn, self.horizon), engagement=self.rng.lognormvariate(0, 0.9),
                                       referred_by=referred_by))
        self.signup_times = [u.signup for u in self.users]
        by_id = {u.id: u for u in self.users}
        for u in self.users:  # referral bonuses: both sides, paid bucket, an hour after sign-up
            if u.referred_by is None or u.signup + 3600 >= self.horizon:
                continue
            t = u.signup + 3600
            referrer = by_id[u.referred_by]
            # the keys ReferralService uses, so a history user can never be rewarded twice
            mine = self.entry(u, t, "paid", self.s.signup_bonus, "signup_bonus", f"signup:{u.id}",
                              memo="referral sign-up bonus") if self.s.signup_bonus else None
            theirs = self.entry(referrer, t, "paid", self.s.referral_bonus, "referral_bonus",
                                f"referral:{u.id}", memo="referral bonus") if self.s.referral_bonus else None
            u.credits_due.append((t, "paid", self.s.signup_bonus if mine else 0))
            referrer.credits_due.append((t, "paid", self.s.referral_bonus if theirs else 0))
            self.referrals.append(_Row(u.signup, referrer_id=referrer.id, referred_id=u.id, signup=mine,
                                       referrer_entry=theirs, rewarded=t))

    def random_user_before(self, t: float, exclude: int) -> int | None:
        eligible = bisect.bisect_left(self.signup_times, t)
        if eligible < 2:
            return None
        uid = self.users[self.rng.randrange(eligible)].id
        return uid if uid != exclude else None

    # -- money -----------------------------------------------------------------------------------------------
    @staticmethod
    def collect(u: _UserSim, t: float) -> None:
        """Credits booked for the user before ``t`` by others (bonuses, refunds) reach the balance."""
        if not u.credits_due:
            return
        due = [c for c in u.credits_due if c[0] <= t]
        if due:
            u.credits_due = [c for c in u.credits_due if c[0] > t]
            for _, bucket, amount in due:
                if bucket == "allowance":
                    u.allowance += amount
                else:
                    u.paid += amount

    def settle(self, u: _UserSim, t: float) -> None:
        """Activity at ``t``: what arrived meanwhile, then the month's allowance on the first activity of a
        month -- exactly what LedgerService.ensure_monthly_allowance books."""
        self.collect(u, t)
        month = self.month(t)
        if u.month is not None and u.month >= month:
            return
        if u.allowance > 0:
            self.entry(u, t, "allowance", -u.allowance, "allowance_expiry", f"allowance_expiry:{u.id}:{month}",
                       memo=f"unused allowance expired at the start of {month}")
            u.allowance = 0
        if self.s.monthly_allowance > 0:
            self.entry(u, t, "allowance", self.s.monthly_allowance, "allowance_grant", f"allowance:{u.id}:{month}",
                       memo=f"monthly allowance for {month}")
            u.allowance = self.s.monthly_allowance
        u.month = month

    def buy_pack(self, u: _UserSim, t: float, session: str) -> None:
        pack = _pick(self.rng, [(p, w) for p, w in zip(self.packs, (0.5, 0.35, 0.15), strict=False)]) \
            if len(self.packs) >= 3 else self.rng.choice(self.packs)
        self.event(t - 120, Event.PAGE_VIEW, u.id, session, page="Wallet")
        for attempt in range(2):
            started = t - 100 + attempt * 30
            self.event(started, Event.PACK_PURCHASE_STARTED, u.id, session, pack=pack.id)
            gateway_session = f"demo_{self.token}_{len(self.purchases)}"
            if self.rng.random() < 0.07:
                self.purchases.append(_Row(started, user_id=u.id, pack=pack, session=gateway_session,
                                           status="failed", completed=None, entry=None))
                self.event(started + 15, Event.PACK_PURCHASE_FAILED, u.id, session, pack=pack.id,
                           reason="card_declined")
                if self.rng.random() < 0.4:
                    return
                continue
            paid_at = started + 20
            credit = self.entry(u, paid_at, "paid", pack.total_credits, "purchase", f"purchase:{gateway_session}",
                                reference=f"pack:{pack.id}")
            self.purchases.append(_Row(started, user_id=u.id, pack=pack, session=gateway_session, status="paid",
                                       completed=paid_at, entry=credit))
            u.paid += pack.total_credits
            self.event(paid_at, Event.PACK_PURCHASE_COMPLETED, u.id, session, pack=pack.id,
                       credits=pack.total_credits, price_cents=pack.price_cents)
            return

    # -- one generation --------------------------------------------------------------------------------------
    def generate(self, u: _UserSim, t: float, session: str) -> float:
        """Everything around one Generate click, starting at ``t``; returns when the user moves on."""
        rng, tiers = self.rng, self.s.tiers
        template = self.rng.choice(self.templates) if rng.random() < 0.4 else None
        subject = rng.choice(SUBJECTS)
        prompt = template[3].replace("{subject}", subject) if template else f"{subject}, {rng.choice(STYLES)}"
        enhanced = None
        choice = None
        if rng.random() < 0.7:
            self.event(t, Event.ENHANCE_REQUESTED, u.id, session, ok=True, template=template is not None)
            t += rng.uniform(5, 40)
            choice = _pick(rng, ((Event.ENHANCE_ACCEPTED, 0.55), (Event.ENHANCE_EDITED, 0.2),
                                 (Event.ENHANCE_REJECTED, 0.25)))
            if choice != Event.ENHANCE_REJECTED:
                enhanced = f"{prompt}, {', '.join(rng.sample(ENHANCEMENTS, 3))}"
                if choice == Event.ENHANCE_EDITED:
                    enhanced += ", " + rng.choice(STYLES)
        tier = _pick(rng, [(name, w) for name, w in TIER_MIX if name in tiers]) if len(tiers) >= 3 \
            else rng.choice(list(tiers))
        if rng.random() < 0.4:
            self.event(t, Event.TIER_SELECTED, u.id, session, tier=tier)
        self.settle(u, t)
        cost = tiers[tier].credits
        if u.allowance + u.paid < cost and rng.random() < 0.85:
            self.buy_pack(u, t, session)
        if u.allowance + u.paid < cost:  # still short: a cheaper tier, or nothing at all
            affordable = [n for n in tiers if tiers[n].credits <= u.allowance + u.paid]
            if not affordable:
                return t + rng.uniform(30, 120)
            tier = min(affordable, key=lambda n: tiers[n].credits)
            cost = tiers[tier].credits
        t += rng.uniform(3, 15)
        if choice is not None:
            self.event(t, choice, u.id, session)
        # The job: provider, outcome, latency (created -> finished).
        provider = "replicate" if rng.random() < 0.8 else "local"
        in_incident = self.incident[0] <= t < self.incident[1] and provider == "replicate"
        outcome = _pick(rng, (("succeeded", 0.65), ("failed", 0.35)) if in_incident else
                        (("succeeded", 0.9), ("failed", 0.075), ("canceled", 0.025)))
        error = None
        if outcome == "succeeded":
            latency = rng.lognormvariate(math.log(LATENCY_S[tier] * (1 if provider == "replicate" else 0.3)),
                                         0.35 if not in_incident else 0.7)
        elif outcome == "failed":
            error = ErrorCode.PROVIDER_UNAVAILABLE if in_incident else _pick(rng, ERROR_MIX)
            latency = self.s.generation_timeout_s if error == ErrorCode.PROVIDER_TIMEOUT else rng.uniform(1, 20)
        else:
            error, latency = ErrorCode.CANCELED, rng.uniform(2, 10)
        finished = t + latency
        from_allowance = min(u.allowance, cost)
        split = (from_allowance, cost - from_allowance)
        request_key = f"hist-{self.token}-{len(self.images)}"
        hold = _Row(t, user_id=u.id, split=split, key=f"gen:{request_key}", status="posted" if outcome ==
                    "succeeded" else "voided", resolved=finished, reference=f"image:{request_key}")
        self.holds.append(hold)
        image_key = self.image_keys[len(self.images) % len(self.image_keys)] if self.image_keys else None
        w, h = tiers[tier].width, tiers[tier].height
        image = _Row(t, owner_id=u.id, request_key=request_key, prompt=prompt, enhanced=enhanced,
                     final=enhanced or prompt, negative="text, watermark" if template else "",
                     template_id=template[0] if template else None, tier=tier, w=w, h=h,
                     seed=rng.randrange(2**31), provider=provider, status=outcome,
                     error=error, cost=cost if outcome == "succeeded" else 0, hold=hold, started=t + rng.uniform(0.2, 3),
                     remixed_from=None,
                     finished=finished, keys=image_key if outcome == "succeeded" else None)
        self.images.append(image)
        if template:
            self.template_uses[template[0]] += 1
        self.event(t, Event.GENERATE_CONFIRMED, u.id, session, tier=tier, cost=cost,
                   template_id=template[0] if template else None, enhanced=enhanced is not None)
        if outcome == "canceled":
            return finished + rng.uniform(10, 60)
        self.event(finished, Event.GENERATION_SUCCEEDED if outcome == "succeeded" else Event.GENERATION_FAILED,
                   u.id, None, tier=tier, provider=provider, latency_s=round(latency, 3),
                   error_code=error.value if error else None)
        if outcome == "failed":
            return finished + rng.uniform(10, 60)
        # Charged: allowance first, then paid credits (one debit entry per bucket, keyed by the hold).
        for i, (bucket, part) in enumerate((("allowance", split[0]), ("paid", split[1]))):
            if part:
                # LedgerService.post keys the first leg post:<hold>, a second (paid) leg post:<hold>:paid
                charge = self.entry(u, finished, bucket, -part, "generation", (hold, i == 1 and split[0] > 0),
                                    hold=hold, reference=f"image:{request_key}")
                if rng.random() < 0.006 and not hold.v.get("refunded"):
                    hold.v["refunded"] = True
                    when = finished + rng.uniform(3600, 3 * DAY)
                    if when < self.horizon:
                        self.entry(u, when, bucket, part, "refund", None, refund_of=charge,
                                   reference=f"image:{request_key}", memo="demo: support refund",
                                   actor_id=self.admin_id)
                        u.credits_due.append((when, bucket, part))
        u.allowance -= split[0]
        u.paid -= split[1]
        after = finished
        if rng.random() < 0.45:
            after = finished + rng.uniform(5, 60)
            self.event(after, Event.DOWNLOAD, u.id, session, request_key=request_key)
        if rng.random() < 0.12:
            self.publish(u, image, template, finished + rng.expovariate(1 / 7200), session)
        return after + rng.uniform(10, 90)

    def publish(self, u: _UserSim, image: _Row, template, t: float, session: str) -> None:
        if t >= self.horizon:
            return
        rng = self.rng
        words = image.v["prompt"].split(",")[0].split()[:6]
        post = _Row(t, image=image, author_id=u.id, title=" ".join(words).capitalize()[:120],
                    category_id=template[1] if template else rng.choice(self.categories), status="visible",
                    likes=0, reports=0, remixes=0)
        self.posts.append(post)
        self.event(t, Event.PUBLISH, u.id, session)
        likers: set[int] = set()
        for _ in range(min(int(rng.paretovariate(1.4)) - 1, 80)):
            when = t + rng.expovariate(1 / (1.5 * DAY))
            liker = self.random_user_before(when, u.id) if when < self.horizon else None
            if liker is None or liker in likers:
                continue
            likers.add(liker)
            self.likes.append(_Row(when, post=post, user_id=liker))
            post.v["likes"] += 1
            self.event(when, Event.LIKE, liker, f"{liker:x}-{int(when // 1800):x}")
        if rng.random() < 0.04:
            reporters: set[int] = set()
            for _ in range(rng.randint(1, 3)):
                when = t + rng.expovariate(1 / (2 * DAY))
                reporter = self.random_user_before(when, u.id) if when < self.horizon else None
                if reporter is None or reporter in reporters:
                    continue
                reporters.add(reporter)
                resolved = when + rng.lognormvariate(math.log(5 * 3600), 1.0)
                resolution = None
                if resolved < self.horizon and rng.random() < 0.85:
                    resolution = "actioned" if rng.random() < 0.35 else "dismissed"
                report = _Row(when, post=post, reporter_id=reporter, reason=rng.choice(REPORT_REASONS),
                              status=resolution or "open", resolved=resolved if resolution else None)
                self.reports.append(report)
                post.v["reports"] += 1
                self.event(when, Event.REPORT, reporter, f"{reporter:x}-{int(when // 1800):x}")
                if resolution:
                    if resolution == "actioned":
                        post.v["status"] = "hidden"
                    self.actions.append(_Row(resolved, action=f"report_{resolution}", post=post, report=report))

    def link_remixes(self, share: float = 0.03) -> None:
        """Some generations were remixes of someone else's earlier post: the image points at its source, a
        completed prompt_reuse_events row links the two and the post counts it (as CommunityService does)."""
        posts = sorted(self.posts, key=lambda r: r.t)
        times = [p.t for p in posts]
        for image in self.images:
            if image.v["status"] != "succeeded" or self.rng.random() >= share:
                continue
            earlier = bisect.bisect_left(times, image.t - 300)
            if not earlier:
                continue
            post = posts[self.rng.randrange(earlier)]
            if post.v["author_id"] == image.v["owner_id"] or image.v["remixed_from"] is not None:
                continue
            image.v["remixed_from"] = post.v["image"]
            self.reuses.append(_Row(image.t - 60, image=post.v["image"], post=post, user_id=image.v["owner_id"],
                                    new_image=image))
            post.v["remixes"] += 1
            self.event(image.t - 60, Event.REMIX, image.v["owner_id"], None)

    def add_likes(self, total: int) -> int:
        """Top the community's likes up to about ``total`` (returns how many were added). Popularity is skewed
        (log-normal: most posts get a few dozen, a few get hundreds); a like comes within days of its post, from
        someone who had signed up and not yet left, never from the author and never twice for one post. Each
        is a ``like`` event too, as the Community page tracks it."""
        posts = [p for p in self.posts if p.t < self.horizon]
        missing = total - len(self.likes)
        if missing <= 0 or not posts:
            return 0
        rng = self.rng
        likers: dict[int, set[int]] = defaultdict(set)  # by id(post): rows get their ids only when written
        for like in self.likes:
            likers[id(like.v["post"])].add(like.v["user_id"])
        popularity = [rng.lognormvariate(0, 1.0) for _ in posts]
        # at most half of the people around when a post appeared like it (rejection sampling stays cheap)
        room = [max(0, bisect.bisect_left(self.signup_times, p.t + DAY) // 2 - p.v["likes"]) for p in posts]
        added = 0
        for _ in range(4):  # what capped posts could not take goes to the others on the next pass
            weight = sum(w for w, r in zip(popularity, room, strict=True) if r > 0)
            if missing - added <= 0 or weight <= 0:
                break
            share = (missing - added) / weight
            for i, post in enumerate(posts):
                if room[i] <= 0:
                    continue
                wanted = min(room[i], int(popularity[i] * share + rng.random()))
                got = self._like_post(post, wanted, likers[id(post)])
                room[i] = 0 if got < wanted else room[i] - got
                added += got
        self.extra_like_events = added
        return added

    def _like_post(self, post: _Row, wanted: int, likers: set[int]) -> int:
        rng, first, got = self.rng, self.first_user_id, 0
        for _ in range(4 * wanted):
            if got >= wanted:
                break
            when = post.t + rng.expovariate(1 / (1.5 * DAY))
            if when >= self.horizon:
                continue
            liker = self.random_user_before(when, post.v["author_id"])
            if liker is None or liker in likers or self.users[liker - first].end <= when:
                continue
            likers.add(liker)
            self.likes.append(_Row(when, post=post, user_id=liker))
            post.v["likes"] += 1
            self.event(when, Event.LIKE, liker, f"{liker:x}-{int(when // 1800):x}")
            got += 1
        return got

    # -- whole users -----------------------------------------------------------------------------------------
    def simulate(self) -> None:
        rng = self.rng
        weights = [u.engagement * max(u.end - u.signup, DAY) for u in self.users]
        total_weight = sum(weights) or 1.0
        target = GENERATIONS_PER_UNIT * self.scale
        for u, weight in zip(self.users, weights, strict=True):
            expected = target * weight / total_weight
            n_gens = int(expected) + (rng.random() < expected - int(expected))
            active_days = max((u.end - u.signup) / DAY, 1.0)
            n_sessions = max(1, round(n_gens / 2.5) + int(rng.random() * active_days * 0.05))
            starts = [u.signup]
            while len(starts) < n_sessions:
                t = rng.uniform(u.signup, u.end)
                weekday = (self.t0 + timedelta(seconds=t)).weekday()
                if weekday < 5 or rng.random() < 0.7:  # quieter weekends
                    starts.append(t)
            starts.sort()
            u.sessions = starts
            gens_per_session = [0] * len(starts)
            for _ in range(n_gens):
                gens_per_session[rng.randrange(len(starts))] += 1
            self.run_user(u, starts, gens_per_session)

    def run_user(self, u: _UserSim, starts: list[float], gens_per_session: list[int]) -> None:
        rng = self.rng
        for k, (start, gens) in enumerate(zip(starts, gens_per_session, strict=True)):
            session = f"{u.id:x}-{k:x}-{self.token}"
            self.settle(u, start)
            if k == 0:
                self.event(start, Event.SIGN_UP, u.id, session, referred=u.referred_by is not None)
                if u.referred_by is not None:
                    self.event(start, Event.REFERRAL_JOINED, u.id, session, referrer_id=u.referred_by)
            else:
                self.event(start, Event.SIGN_IN, u.id, session, method="password")
            self.event(start, Event.PAGE_VIEW, u.id, session, page="Studio")
            t = start + rng.uniform(10, 60)
            for _ in range(gens):
                if t >= self.horizon:
                    break
                t = self.generate(u, t, session)
        self.collect(u, self.horizon)  # refunds and bonuses booked before now are in the final balance

    def day_index(self, t: float) -> int:
        return int((t + self.midnight_offset) // DAY)

    def add_activity_markers(self) -> None:
        """The first event of every user per UTC day, ISO week and month, as AnalyticsService.track writes
        them (the rollups behind the active-user counts)."""
        first_day = self.t0.date()
        firsts: dict[tuple[str, int, Any], tuple[float, str | None]] = {}
        for t, _name, user, session, _props in self.events:
            if user is None:
                continue
            d = self.day_index(t)
            day = first_day + timedelta(days=d)
            for key in ((Event.ACTIVE_DAY, user, d), (Event.ACTIVE_WEEK, user, d - day.weekday()),
                        (Event.ACTIVE_MONTH, user, (day.year, day.month))):
                known = firsts.get(key)
                if known is None or t < known[0]:
                    firsts[key] = (t, session)
        self.events += [(t, name, user, session, "{}") for (name, user, _), (t, session) in firsts.items()]

    def fill_page_views(self) -> None:
        """Browsing inside the sessions that exist, on the session's own day (so the activity markers stay
        right), up to the event target: most events are page views."""
        # the extra likes' events come on top: a community that likes more also browses as much as before
        missing = EVENTS_PER_UNIT * self.scale + self.extra_like_events - len(self.events)
        users = [u for u in self.users if u.sessions]
        if missing <= 0 or not users:
            return
        cumulative, acc = [], 0.0
        for u in users:
            acc += u.engagement * len(u.sessions)
            cumulative.append(acc)
        rng, events, page_weights = self.rng, self.events, [w for _, w in PAGES]
        pages = [json.dumps({"page": p}, separators=(",", ":")) for p, _ in PAGES]
        added = 0
        while added < missing:
            u = users[bisect.bisect_left(cumulative, rng.random() * acc)]
            k = rng.randrange(len(u.sessions))
            start = u.sessions[k]
            day_end = (self.day_index(start) + 1) * DAY - self.midnight_offset
            t = min(start + rng.uniform(0, 2400), day_end - 1e-3, self.horizon - 1e-3)
            if t < start:
                continue
            events.append((t, Event.PAGE_VIEW, u.id, f"{u.id:x}-{k:x}-{self.token}",
                           rng.choices(pages, page_weights)[0]))
            added += 1


# == writing =================================================================================================
class _BulkWriter:
    """Fast inserts on the session's own connection and transaction: executemany on SQLite, COPY on
    PostgreSQL. Values are plain Python (timestamps already as text), so no per-row ORM work."""

    BATCH = 50_000

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.sqlite = conn.dialect.name == "sqlite"
        self.raw = conn.connection.driver_connection

    def write(self, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> int:
        n = 0
        cur = self.raw.cursor()
        try:
            if self.sqlite:
                sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"
                batch: list[Sequence[Any]] = []
                for row in rows:
                    batch.append(row)
                    if len(batch) >= self.BATCH:
                        cur.executemany(sql, batch)
                        n += len(batch)
                        batch = []
                if batch:
                    cur.executemany(sql, batch)
                    n += len(batch)
            else:
                with cur.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row(row)
                        n += 1
        finally:
            cur.close()
        return n

    def bump_sequences(self, tables: Iterable[str]) -> None:
        if self.sqlite:
            return
        for table in tables:
            self.conn.execute(text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                                   f"(SELECT COALESCE(MAX(id), 1) FROM {table}))"))


def _assign_ids(rows: list[_Row], first: int) -> None:
    rows.sort(key=lambda r: r.t)
    for i, row in enumerate(rows):
        row.id = first + i


def _next_ids(conn: Connection, tables: Iterable[str]) -> dict[str, int]:
    return {t: (conn.execute(text(f"SELECT COALESCE(MAX(id), 0) FROM {t}")).scalar_one() or 0) + 1
            for t in tables}


def _render_demo_images(studio: Studio, owner_id: int, count: int = 12) -> list[tuple[str, str, int]]:
    """A few real images the history's successes share, so demo galleries show pictures. Only with the
    offline renderer: seeding never spends money at a real provider."""
    if studio.generator.name != "local":
        return []
    keys = []
    try:
        for k in range(count):
            request = GenerationRequest(prompt=SUBJECTS[k % len(SUBJECTS)], negative_prompt="", width=512,
                                        height=512, steps=20, guidance=7.0, seed=k)
            status = studio.generator.poll(studio.generator.submit(request))
            if status.image_bytes:
                stored = studio.store.save(owner_id, f"demo-history-{k}", status.image_bytes)
                keys.append((stored.image_key, stored.thumbnail_key, stored.bytes))
    except Exception:  # noqa: BLE001 - pictures are a nicety; the history works without them
        log.warning("demo images could not be rendered", exc_info=True)
    return keys


def seed_history(studio: Studio, scale: int, *, now: datetime | None = None, rng_seed: int | None = None,
                 likes: int | None = None) -> list[str]:
    """Add ``scale`` units of history (see USERS_PER_UNIT ...) ending at ``now``. Refuses to add a second one.
    ``likes``: top the posts' likes up to about that many in all (see ``_History.add_likes``)."""
    started = time.perf_counter()
    now = now or studio.ledger.clock()
    db = studio.db
    with db.read() as s:
        if s.scalar(select(User.id).where(User.email.like(f"%@{HISTORY_EMAIL_DOMAIN}")).limit(1)) is not None:
            return ["History: already present (seed a fresh database to change its size)."]
        # the moderator and support agent of the history: the demo admin, else the first admin
        admin_id = s.scalar(select(User.id).where(User.email == DEMO_USERS[0][0])) or \
            s.scalar(select(User.id).where(User.role == "admin").order_by(User.id).limit(1))
        if admin_id is None:
            raise ValueError("The history needs an admin account (seed-demo creates one).")
        templates = [(t.id, t.category_id, t.title, t.prompt_pattern) for t in s.scalars(select(ImageTemplate))]
    categories = sorted({t[1] for t in templates}) or [None]
    image_keys = _render_demo_images(studio, admin_id)
    rng = random.Random(rng_seed)
    password_hash = PasswordHasher().hash(DEMO_PASSWORD)  # one hash shared by every history account

    with db.write() as session:
        conn = session.connection()
        ids = _next_ids(conn, ("users", "credit_holds", "generated_images", "credit_ledger", "purchases",
                               "community_posts", "post_reports", "analytics_events"))
        h = _History(studio, scale, now, rng, admin_id, ids["users"], templates, categories, image_keys)
        h.make_users()
        h.simulate()
        h.link_remixes()
        if likes is not None:
            h.add_likes(likes)
        h.add_activity_markers()
        h.fill_page_views()
        for rows, table in ((h.holds, "credit_holds"), (h.images, "generated_images"), (h.entries, "credit_ledger"),
                            (h.purchases, "purchases"), (h.posts, "community_posts"), (h.reports, "post_reports")):
            _assign_ids(rows, ids[table])
        counts = _write(_BulkWriter(conn), h, password_hash)
        # the dashboard's rollups, as GenerationService and track() keep them when jobs end and events arrive
        count_ended_generations(session, GeneratedImage.id >= ids["generated_images"])
        count_events(session, AnalyticsEvent.id >= ids["analytics_events"])
        for template_id, n in h.template_uses.items():
            conn.execute(update(ImageTemplate).where(ImageTemplate.id == template_id)
                         .values(use_count=ImageTemplate.use_count + n))
    # Fresh statistics for the planners after a bulk load (and, on PostgreSQL, the visibility map that lets
    # index-only scans skip the table): what autovacuum would do on its own a little later.
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("ANALYZE" if db.is_sqlite else "VACUUM ANALYZE")
    bad = [r for r in studio.ledger.check_invariants() if not r.ok]
    with db.read() as s:
        total_events = s.scalar(select(func.count()).select_from(text("analytics_events")))
    took = time.perf_counter() - started
    lines = [f"History ({HISTORY_DAYS} days, scale {scale}): {counts['users']:,} users, "
             f"{counts['generated_images']:,} generations, {counts['credit_ledger']:,} ledger entries, "
             f"{counts['purchases']:,} purchases, {counts['community_posts']:,} posts, {counts['post_likes']:,} likes, "
             f"{counts['post_reports']:,} reports, {counts['analytics_events']:,} events "
             f"({total_events:,} in the table) in {took:.1f}s.",
             f"History accounts sign in with the demo password, e.g. {_email(h.users[0].id) if h.users else '-'}.",
             "Ledger invariants: " + ("all hold." if not bad else "; ".join(f"{r.name}: {r.detail}" for r in bad))]
    return lines


def _email(user_id: int) -> str:
    return f"user{user_id}@{HISTORY_EMAIL_DOMAIN}"


def _write(w: _BulkWriter, h: _History, password_hash: str) -> dict[str, int]:
    ts, n = h.ts, {}
    last_session = {u.id: (u.sessions[-1] if u.sessions else u.signup) for u in h.users}
    n["users"] = w.write("users", ("id", "email", "display_name", "password_hash", "role", "referral_code",
                                   "referred_by_id", "created_at", "last_login_at", "disabled"),
                         ((u.id, _email(u.id), f"Demo creator {u.id}", password_hash, "creator", f"H{u.id:09d}",
                           u.referred_by, ts(u.signup), ts(last_session[u.id]), False) for u in h.users))
    n["credit_accounts"] = w.write(
        "credit_accounts", ("user_id", "allowance_balance", "paid_balance", "reserved_allowance", "reserved_paid",
                            "allowance_month", "updated_at"),
        ((u.id, u.allowance, u.paid, 0, 0, u.month, ts(h.horizon - 1)) for u in h.users))
    ttl = h.s.generation_timeout_s + h.s.hold_ttl_s
    n["credit_holds"] = w.write(
        "credit_holds", ("id", "user_id", "amount_allowance", "amount_paid", "idempotency_key", "request_hash",
                         "status", "reference", "created_at", "expires_at", "resolved_at"),
        ((r.id, r.v["user_id"], r.v["split"][0], r.v["split"][1], r.v["key"],
          hashlib.sha256(r.v["key"].encode()).hexdigest(), r.v["status"], r.v["reference"], ts(r.t),
          ts(r.t + ttl), ts(r.v["resolved"])) for r in h.holds))

    def at(t: float) -> datetime:
        return h.t0 + timedelta(seconds=t)  # exactly what ts() writes, as a datetime

    def image_row(r: _Row) -> tuple:
        v = r.v
        keys = v["keys"] or (None, None, None)
        error = v["error"]
        message = f"{ERROR_MESSAGES.get(error, 'The image could not be generated.')} Not charged." if error else None
        return (r.id, v["owner_id"], v["request_key"], v["prompt"], v["enhanced"], v["final"], v["negative"],
                v["template_id"], v["remixed_from"].id if v["remixed_from"] else None, v["tier"], v["w"], v["h"],
                v["seed"], v["provider"],
                "sdxl" if v["provider"] == "replicate" else "procedural-1", v["status"],
                1.0 if v["status"] == "succeeded" else 0.0, error.value if error else None, message, keys[0],
                keys[1], keys[2], v["cost"], v["hold"].id, ts(r.t), ts(r.t), ts(v["started"]), ts(v["finished"]),
                generation_latency_ms(at(r.t), at(v["finished"])))

    n["generated_images"] = w.write(
        "generated_images", ("id", "owner_id", "request_key", "prompt", "enhanced_prompt", "final_prompt",
                             "negative_prompt", "template_id", "remixed_from_id", "tier", "width", "height", "seed",
                             "provider",
                             "model_version", "status", "progress", "error_code", "error_message", "image_key",
                             "thumbnail_key", "bytes", "cost", "hold_id", "created_at", "queued_at", "started_at",
                             "finished_at", "latency_ms"),
        (image_row(r) for r in h.images))

    def entry_key(r: _Row) -> str:
        key = r.v["key"]
        if isinstance(key, tuple):  # a generation debit: (hold, is the second leg)
            hold, second = key
            return f"post:{hold.id}:paid" if second else f"post:{hold.id}"
        return key if key is not None else f"refund:{r.v['refund_of'].id}"

    n["credit_ledger"] = w.write(
        "credit_ledger", ("id", "user_id", "bucket", "amount", "kind", "idempotency_key", "hold_id", "refund_of_id",
                          "reference", "memo", "actor_id", "created_at"),
        ((r.id, r.v["user_id"], r.v["bucket"], r.v["amount"], r.v["kind"], entry_key(r),
          r.v["hold"].id if r.v["hold"] else None, r.v["refund_of"].id if r.v["refund_of"] else None,
          r.v["reference"], r.v["memo"], r.v["actor_id"], ts(r.t)) for r in h.entries))
    n["purchases"] = w.write(
        "purchases", ("id", "user_id", "pack_id", "credits", "price_cents", "currency", "gateway",
                      "gateway_session_id", "status", "failure_reason", "credited_entry_id", "created_at",
                      "completed_at"),
        ((r.id, r.v["user_id"], r.v["pack"].id, r.v["pack"].total_credits, r.v["pack"].price_cents,
          r.v["pack"].currency, "sandbox", r.v["session"], r.v["status"],
          "card_declined" if r.v["status"] == "failed" else None, r.v["entry"].id if r.v["entry"] else None,
          ts(r.t), ts(r.v["completed"]) if r.v["completed"] is not None else None) for r in h.purchases))
    n["referral_events"] = w.write(
        "referral_events", ("referrer_id", "referred_id", "kind", "status", "signup_bonus_entry_id",
                            "referrer_bonus_entry_id", "created_at", "rewarded_at"),
        ((r.v["referrer_id"], r.v["referred_id"], "signup", "rewarded",
          r.v["signup"].id if r.v["signup"] else None, r.v["referrer_entry"].id if r.v["referrer_entry"] else None,
          ts(r.t), ts(r.v["rewarded"])) for r in sorted(h.referrals, key=lambda r: r.t)))
    n["community_posts"] = w.write(
        "community_posts", ("id", "image_id", "author_id", "title", "category_id", "template_id", "status",
                            "like_count", "report_count", "remix_count", "created_at"),
        ((r.id, r.v["image"].id, r.v["author_id"], r.v["title"], r.v["category_id"], r.v["image"].v["template_id"],
          r.v["status"], r.v["likes"], r.v["reports"], r.v["remixes"], ts(r.t)) for r in h.posts))
    n["post_likes"] = w.write("post_likes", ("post_id", "user_id", "created_at"),
                              ((r.v["post"].id, r.v["user_id"], ts(r.t)) for r in sorted(h.likes, key=lambda r: r.t)))
    n["post_reports"] = w.write(
        "post_reports", ("id", "post_id", "reporter_id", "reason", "details", "status", "resolved_by_id",
                         "resolved_at", "created_at"),
        ((r.id, r.v["post"].id, r.v["reporter_id"], r.v["reason"], "", r.v["status"],
          h.admin_id if r.v["resolved"] else None, ts(r.v["resolved"]) if r.v["resolved"] else None, ts(r.t))
         for r in h.reports))
    n["moderation_actions"] = w.write(
        "moderation_actions", ("actor_id", "action", "post_id", "report_id", "note", "created_at"),
        ((h.admin_id, r.v["action"], r.v["post"].id, r.v["report"].id, "demo history", ts(r.t))
         for r in sorted(h.actions, key=lambda r: r.t)))
    n["prompt_reuse_events"] = w.write(
        "prompt_reuse_events", ("source_image_id", "source_post_id", "user_id", "new_image_id", "created_at"),
        ((r.v["image"].id, r.v["post"].id, r.v["user_id"], r.v["new_image"].id, ts(r.t))
         for r in sorted(h.reuses, key=lambda r: r.t)))
    h.events.sort(key=lambda e: e[0])  # rows arrive in time order, as they would have in production
    n["analytics_events"] = w.write("analytics_events", ("name", "user_id", "session_id", "properties", "created_at"),
                                    ((str(name), user, session, props, ts(t))
                                     for t, name, user, session, props in h.events))
    w.bump_sequences(("users", "credit_holds", "generated_images", "credit_ledger", "purchases", "community_posts",
                      "post_reports"))
    return n
