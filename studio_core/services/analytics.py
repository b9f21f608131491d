"""Product analytics: events, and the figures of the admin dashboard, computed in the database.

Events: ``track()`` writes one ``analytics_events`` row and never raises -- a failure is logged and swallowed,
so a page never breaks because analytics did. Event names are the ``Event`` constants below; screens that are
still being built call them as they arrive (download, publish, like, ...).

Dashboard: every figure is one aggregate SQL statement over an indexed ``created_at`` range, grouped by a time
bucket; the application only ever receives aggregated rows (a few thousand at most), never raw events. Only
three things differ between SQLite and PostgreSQL and each lives in one small construct below:
``time_bucket`` (strftime / date_trunc), ``seconds_between`` (julianday / epoch) and ``percentile_select``
(window functions / percentile_cont).
"""

from __future__ import annotations

import json
import logging
import re
import threading
from collections import OrderedDict, defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Literal

from sqlalchemy import (
    Float,
    Integer,
    String,
    and_,
    case,
    cast,
    func,
    insert,
    literal_column,
    null,
    select,
    text,
    union_all,
)
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.functions import FunctionElement

from studio_core.config import Settings
from studio_core.db import Database
from studio_core.models import (
    LEDGER_KINDS,
    AnalyticsEvent,
    CommunityPost,
    CreditLedgerEntry,
    GeneratedImage,
    ImageCategory,
    ImageTemplate,
    PostLike,
    PostReport,
    PromptReuseEvent,
    Purchase,
    User,
    utcnow,
)
from studio_core.services.accounts import AccessDenied, UserView

if TYPE_CHECKING:
    from studio_core.services.generation import JobView

log = logging.getLogger(__name__)


# == events ==================================================================================================
class Event(StrEnum):
    """Every product event. Screens call ``track(Event.X, ...)``; the dashboard reads them by these names."""

    PAGE_VIEW = "page_view"
    SIGN_UP = "sign_up"
    SIGN_IN = "sign_in"
    ENHANCE_REQUESTED = "enhance_requested"
    ENHANCE_ACCEPTED = "enhance_accepted"  # generated from the enhanced prompt as the enhancer wrote it
    ENHANCE_EDITED = "enhance_edited"  # generated from the enhanced prompt after editing it
    ENHANCE_REJECTED = "enhance_rejected"  # generated from the original prompt instead
    TIER_SELECTED = "tier_selected"
    GENERATE_CONFIRMED = "generate_confirmed"
    GENERATION_SUCCEEDED = "generation_succeeded"  # service side (GenerationService.on_succeeded)
    GENERATION_FAILED = "generation_failed"  # service side (GenerationService.on_failed)
    DOWNLOAD = "download"
    PUBLISH = "publish"
    LIKE = "like"
    REPORT = "report"
    REMIX = "remix"
    PACK_PURCHASE_STARTED = "pack_purchase_started"
    PACK_PURCHASE_COMPLETED = "pack_purchase_completed"
    PACK_PURCHASE_FAILED = "pack_purchase_failed"
    REFERRAL_JOINED = "referral_joined"
    # Rollups maintained by track() itself: a signed-in user's first tracked activity of a UTC day / ISO week /
    # month. Counting them per bucket reads a few index entries instead of every event of the range.
    ACTIVE_DAY = "active_day"
    ACTIVE_WEEK = "active_week"
    ACTIVE_MONTH = "active_month"


ACTIVITY_MARKERS: dict[str, Event] = {"day": Event.ACTIVE_DAY, "week": Event.ACTIVE_WEEK,
                                      "month": Event.ACTIVE_MONTH}

EVENT_NAME_RE = re.compile(r"^[a-z][a-z0-9_]{1,59}$")
MAX_PROPERTIES_BYTES = 2_000  # events describe what happened; they are no place for prompts or payloads
MAX_SESSION_ID = 64
MARKER_CACHE_SIZE = 50_000
PG_WORK_MEM = "64MB"


def clean_properties(properties: Mapping[str, Any] | None) -> dict[str, Any]:
    """JSON-safe properties: unknown types become strings, an oversized set is replaced by a marker."""
    if not properties:
        return {}
    cleaned = json.loads(json.dumps({str(k): v for k, v in properties.items()}, default=str))
    if len(json.dumps(cleaned, separators=(",", ":"))) > MAX_PROPERTIES_BYTES:
        return {"truncated": True, "keys": sorted(cleaned)[:20]}
    return cleaned


# == periods and results =====================================================================================
Granularity = Literal["day", "week", "month"]
GRANULARITIES: tuple[Granularity, ...] = ("day", "week", "month")
MAX_RANGE_DAYS = 3 * 366


class InvalidPeriod(ValueError):
    """The date range or granularity cannot be used; ``str(err)`` is for the admin."""


def bucket_start(day: date, granularity: Granularity) -> date:
    """The first day of the bucket holding ``day`` (weeks start on Monday, like date_trunc('week'))."""
    if granularity == "week":
        return day - timedelta(days=day.weekday())
    if granularity == "month":
        return day.replace(day=1)
    return day


def _next_bucket(day: date, granularity: Granularity) -> date:
    if granularity == "month":
        return (day.replace(day=1) + timedelta(days=32)).replace(day=1)
    return day + timedelta(days=7 if granularity == "week" else 1)


@dataclass(frozen=True)
class Period:
    """Whole UTC days from ``start`` to ``end`` (both included), read in buckets of ``granularity``. The
    previous period is the same number of days right before ``start``."""

    start: date
    end: date
    granularity: Granularity = "day"

    def __post_init__(self) -> None:
        if self.granularity not in GRANULARITIES:
            raise InvalidPeriod(f"Granularity must be one of {', '.join(GRANULARITIES)}.")
        if self.end < self.start:
            raise InvalidPeriod("The end date is before the start date.")
        if self.days > MAX_RANGE_DAYS:
            raise InvalidPeriod(f"Choose at most {MAX_RANGE_DAYS} days.")

    @classmethod
    def last(cls, days: int, today: date, granularity: Granularity = "day") -> Period:
        return cls(today - timedelta(days=days - 1), today, granularity)

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    @property
    def start_at(self) -> datetime:
        return datetime.combine(self.start, time(), tzinfo=UTC)

    @property
    def end_at(self) -> datetime:
        """Exclusive: midnight after ``end``."""
        return datetime.combine(self.end + timedelta(days=1), time(), tzinfo=UTC)

    @property
    def previous(self) -> Period:
        return Period(self.start - timedelta(days=self.days), self.start - timedelta(days=1), self.granularity)

    def buckets(self) -> list[date]:
        """Every bucket that overlaps the period, in order (the first and last may be partial)."""
        out, day = [], bucket_start(self.start, self.granularity)
        while day <= self.end:
            out.append(day)
            day = _next_bucket(day, self.granularity)
        return out


@dataclass(frozen=True)
class Table:
    """One chart's data: named columns and plain rows (what the CSV download contains)."""

    columns: tuple[str, ...]
    rows: tuple[tuple[Any, ...], ...] = ()

    @property
    def empty(self) -> bool:
        return not self.rows

    def column(self, name: str) -> list[Any]:
        i = self.columns.index(name)
        return [r[i] for r in self.rows]

    def records(self) -> list[dict[str, Any]]:
        return [dict(zip(self.columns, r, strict=True)) for r in self.rows]


@dataclass(frozen=True)
class Kpi:
    key: str
    label: str
    value: float | None
    previous: float | None
    unit: Literal["count", "percent", "credits", "money"] = "count"
    help: str = ""
    currency: str | None = None
    trend: tuple[float, ...] = ()  # the value per bucket of the period (a sparkline)

    @property
    def change(self) -> float | None:
        """Against the previous period: percentage points for rates, a relative change otherwise; None when
        there is nothing to compare with."""
        if self.value is None or self.previous is None:
            return None
        if self.unit == "percent":
            return self.value - self.previous
        if self.previous == 0:
            return None
        return (self.value - self.previous) / self.previous


@dataclass(frozen=True)
class Dashboard:
    period: Period
    kpis: tuple[Kpi, ...]
    active_users: Table  # bucket, active_users (distinct users per bucket)
    daily_active_users: Table  # day, active_users
    generations: Table  # bucket, tier, status, generations
    failure_rate: Table  # bucket, finished, failed, failure_rate
    error_codes: Table  # error_code, failures
    latency: Table  # provider, tier, generations, p50_seconds, p95_seconds
    credits: Table  # bucket, flow, credits
    revenue: Table  # bucket, pack, currency, purchases, revenue
    funnel: Table  # stage, count
    enhancement_choices: Table  # choice, count (accepted as is / edited / rejected)
    templates: Table  # category, template, uses, succeeded, success_rate, publishes, likes, remixes
    categories: Table  # category, uses, succeeded, success_rate, publishes, likes, remixes
    community: Table  # bucket, posts, likes, reports
    moderation: Table  # bucket, resolved, p50_hours, p95_hours
    moderation_overall: Table  # reports, resolved, open, p50_hours, p95_hours

    @property
    def has_activity(self) -> bool:
        return any(not getattr(self, f).empty for f in
                   ("daily_active_users", "generations", "credits", "revenue", "community"))


# == the dialect helpers =====================================================================================
class _Bucket(FunctionElement):
    type = String()
    inherit_cache = True


class day_bucket(_Bucket):
    name = "day_bucket"
    inherit_cache = True


class week_bucket(_Bucket):
    name = "week_bucket"
    inherit_cache = True


class month_bucket(_Bucket):
    name = "month_bucket"
    inherit_cache = True


class seconds_between(FunctionElement):
    """``end - start`` in seconds, as a float."""

    type = Float()
    name = "seconds_between"
    inherit_cache = True


_BUCKETS: dict[str, type[_Bucket]] = {"day": day_bucket, "week": week_bucket, "month": month_bucket}
# SQLite stores timestamps as 'YYYY-MM-DD HH:MM:SS.ffffff' text, so a day or a month is a prefix of it (much
# cheaper per row than parsing with strftime); a week needs the date modifiers: 'weekday 0' moves forward to
# Sunday (or stays), '-6 days' lands on that week's Monday.
_SQLITE_BUCKET = {"day_bucket": "substr({}, 1, 10)", "week_bucket": "strftime('%Y-%m-%d', {}, 'weekday 0', '-6 days')",
                  "month_bucket": "(substr({}, 1, 7) || '-01')"}


def time_bucket(granularity: str, column: Any) -> ColumnElement[str]:
    """The first day of the day / week (Monday, as date_trunc) / month holding a timestamp column: 'YYYY-MM-DD'
    text on SQLite, the truncated timestamp on PostgreSQL (grouping by it is cheaper than by formatted text).
    ``bucket_day()`` reads either."""
    try:
        return _BUCKETS[granularity](column)
    except KeyError:
        raise InvalidPeriod(f"Granularity must be one of {', '.join(GRANULARITIES)}.") from None


def _arg(element: FunctionElement, compiler, i: int = 0, **kw) -> str:
    return compiler.process(list(element.clauses)[i], **kw)


@compiles(_Bucket, "sqlite")
def _bucket_sqlite(element, compiler, **kw):
    return _SQLITE_BUCKET[element.name].format(_arg(element, compiler, **kw))


@compiles(_Bucket, "postgresql")
def _bucket_pg(element, compiler, **kw):
    return f"date_trunc('{element.name.split('_')[0]}', {_arg(element, compiler, **kw)})"


def bucket_day(value: Any) -> date:
    """A ``time_bucket`` value as a date, whichever database produced it."""
    if isinstance(value, datetime):
        return value.date()
    return value if isinstance(value, date) else date.fromisoformat(str(value)[:10])


@compiles(seconds_between, "sqlite")
def _seconds_sqlite(element, compiler, **kw):
    start, end = _arg(element, compiler, 0, **kw), _arg(element, compiler, 1, **kw)
    return f"((julianday({end}) - julianday({start})) * 86400.0)"


@compiles(seconds_between, "postgresql")
def _seconds_pg(element, compiler, **kw):
    start, end = _arg(element, compiler, 0, **kw), _arg(element, compiler, 1, **kw)
    return f"CAST(EXTRACT(EPOCH FROM ({end} - {start})) AS DOUBLE PRECISION)"


def percentile_select(dialect: str, value: ColumnElement, groups: Mapping[str, ColumnElement],
                      where: Sequence[ColumnElement], percentiles: Sequence[float] = (0.5, 0.95),
                      select_from: Any = None):
    """SELECT <groups>, n, p50, p95 ... : continuous percentiles (linear interpolation, like percentile_cont)
    of ``value`` per group, computed in the database.

    PostgreSQL has ``percentile_cont``. SQLite has no percentile aggregate, so each row is ranked within its
    group by a window function and the two rows around the percentile's position are interpolated: the
    database sorts, the application still receives one row per group.
    """
    names = [f"p{round(p * 100)}" for p in percentiles]
    if dialect == "postgresql":
        stmt = select(*[g.label(k) for k, g in groups.items()], func.count().label("n"),
                      *[func.percentile_cont(p).within_group(value).label(n)
                        for p, n in zip(percentiles, names, strict=True)]).where(*where)
        if select_from is not None:
            stmt = stmt.select_from(select_from)
        return stmt.group_by(*groups) if groups else stmt
    values = select(*[g.label(k) for k, g in groups.items()], value.label("v")).where(*where)
    if select_from is not None:
        values = values.select_from(select_from)
    vs = values.subquery("vals")  # the value is computed once per row, then ranked
    partition = [vs.c[k] for k in groups] or None
    r = select(*[vs.c[k] for k in groups], vs.c.v,
               (func.row_number().over(partition_by=partition, order_by=vs.c.v) - 1).label("i"),
               func.count().over(partition_by=partition).label("n")).subquery("ranked")
    outs = []
    for p, name in zip(percentiles, names, strict=True):
        h = (r.c.n - 1) * p  # the 0-based position of the percentile between two ranked rows
        lo = cast(h, Integer)  # non-negative, so the cast is floor()
        frac = h - lo
        outs.append((func.sum(case((r.c.i == lo, r.c.v * (1 - frac)), else_=0.0))
                     + func.sum(case((r.c.i == lo + 1, r.c.v * frac), else_=0.0))).label(name))
    cols = [r.c[k] for k in groups]
    stmt = select(*cols, func.max(r.c.n).label("n"), *outs)
    return stmt.group_by(*cols) if cols else stmt


# == the dashboard's statements ==============================================================================
_ev = AnalyticsEvent.__table__
_gen = GeneratedImage.__table__
_led = CreditLedgerEntry.__table__
_pur = Purchase.__table__
_post = CommunityPost.__table__
_like = PostLike.__table__
_rep = PostReport.__table__
_reuse = PromptReuseEvent.__table__
_tpl = ImageTemplate.__table__
_cat = ImageCategory.__table__
_users = User.__table__


def _const(value: str):
    # Inline SQL literals (never user input): a bound parameter in a UNION's select list has no type on
    # PostgreSQL.
    return literal_column(f"'{value}'", String())


def _current(column, p: Period):
    """1 for rows of the period, 0 for rows of the previous period (queries read both in one pass)."""
    return case((column >= p.start_at, 1), else_=0)


def _both_periods(column, p: Period):
    return and_(column >= p.previous.start_at, column < p.end_at)


def _this_period(column, p: Period):
    return and_(column >= p.start_at, column < p.end_at)


def _markers_per_bucket(kind: str, granularity: Granularity, start: datetime, end: datetime):
    """Distinct active users per bucket = activity markers per bucket: a range of the (name, created_at)
    index, never the events themselves."""
    return (select(_const(kind).label("kind"), time_bucket(granularity, _ev.c.created_at).label("period_start"),
                   func.count().label("n"))
            .where(_ev.c.name == str(ACTIVITY_MARKERS[granularity]), _ev.c.created_at >= start,
                   _ev.c.created_at < end)
            .group_by("period_start"))


def _users_active(start: datetime, end: datetime):
    """Distinct users with any event in [start, end): one (user_id, created_at) index probe per account, so the
    cost follows the number of accounts, not the number of events."""
    seen = (select(_ev.c.id).where(_ev.c.user_id == _users.c.id, _ev.c.created_at >= start,
                                   _ev.c.created_at < end).exists())
    return select(func.count()).select_from(_users).where(seen).scalar_subquery()


def _q_active_users(p: Period, dialect: str):
    """Active users per bucket (whole buckets, so a week's figure is that week's), per day, and over the
    period and the previous one."""
    buckets = p.buckets()
    parts = [_markers_per_bucket("bucket", p.granularity, datetime.combine(buckets[0], time(), tzinfo=UTC),
                                 datetime.combine(_next_bucket(buckets[-1], p.granularity), time(), tzinfo=UTC))]
    if p.granularity != "day":
        parts.append(_markers_per_bucket("day", "day", p.start_at, p.end_at))
    parts.append(select(_const("current"), null(), _users_active(p.start_at, p.end_at)))
    parts.append(select(_const("previous"), null(), _users_active(p.previous.start_at, p.start_at)))
    return union_all(*parts)


def _q_generations(p: Period, dialect: str):
    """Generations of the period per bucket, tier, status, error code and template (with how many came from an
    enhanced prompt), and the previous period's per status: one pass over each period's rows feeds the
    generation charts, the error codes, the funnel's generated stage and the template uses."""
    enhanced = func.sum(case((_gen.c.enhanced_prompt.is_not(None), 1), else_=0))
    current = (select(_const("current").label("kind"), time_bucket(p.granularity, _gen.c.created_at)
                      .label("period_start"), _gen.c.tier, _gen.c.status, _gen.c.error_code, _gen.c.template_id,
                      func.count().label("n"), enhanced.label("enhanced"))
               .where(_this_period(_gen.c.created_at, p))
               .group_by("period_start", _gen.c.tier, _gen.c.status, _gen.c.error_code, _gen.c.template_id))
    previous = (select(_const("previous"), null(), null(), _gen.c.status, null(), null(), func.count(), null())
                .where(_this_period(_gen.c.created_at, p.previous)).group_by(_gen.c.status))
    return union_all(current, previous)


def _q_latency(p: Period, dialect: str):
    return percentile_select(
        dialect, seconds_between(_gen.c.created_at, _gen.c.finished_at),
        {"provider": _gen.c.provider, "tier": _gen.c.tier},
        [_this_period(_gen.c.created_at, p), _gen.c.status == "succeeded", _gen.c.finished_at.is_not(None)])


def _q_credits(p: Period, dialect: str):
    # Listing every kind lets both databases range-scan the (kind, created_at) index.
    kinds = _led.c.kind.in_(LEDGER_KINDS)
    current = (select(_const("current").label("kind_of_row"), time_bucket(p.granularity, _led.c.created_at)
                      .label("period_start"), _led.c.kind, func.sum(_led.c.amount).label("amount"))
               .where(kinds, _this_period(_led.c.created_at, p)).group_by("period_start", _led.c.kind))
    previous = (select(_const("previous"), null(), _led.c.kind, func.sum(_led.c.amount))
                .where(kinds, _this_period(_led.c.created_at, p.previous)).group_by(_led.c.kind))
    return union_all(current, previous)


def _q_revenue(p: Period, dialect: str):
    paid_at = func.coalesce(_pur.c.completed_at, _pur.c.created_at)
    paid = _pur.c.status == "paid"
    current = (select(_const("current").label("kind"), time_bucket(p.granularity, paid_at).label("period_start"),
                      _pur.c.pack_id, _pur.c.currency, func.count().label("n"),
                      func.sum(_pur.c.price_cents).label("cents"))
               .where(paid, _this_period(paid_at, p))
               .group_by("period_start", _pur.c.pack_id, _pur.c.currency))
    previous = (select(_const("previous"), null(), null(), _pur.c.currency, func.count(), func.sum(_pur.c.price_cents))
                .where(paid, _this_period(paid_at, p.previous)).group_by(_pur.c.currency))
    return union_all(current, previous)


_FUNNEL_EVENTS = (Event.ENHANCE_REQUESTED, Event.ENHANCE_ACCEPTED, Event.ENHANCE_EDITED, Event.ENHANCE_REJECTED)


def _image_of(post_id_column, value) -> Any:
    """A column of the image behind a post, as a correlated scalar subquery: one primary-key look-up per post,
    which PostgreSQL cannot turn into a scan of every image the way it plans a join or EXISTS."""
    return select(value).where(_gen.c.id == post_id_column).scalar_subquery()


def _q_funnel(p: Period, dialect: str):
    """Enhancement events of the period by name, and the posts of the period whose image was generated from an
    enhanced prompt (the generated stage comes with the generations statement)."""
    return union_all(
        # (name, created_at) index: one range scan per name, never touching the events themselves
        select(_ev.c.name.label("stage"), func.count().label("n"))
        .where(_ev.c.name.in_([str(e) for e in _FUNNEL_EVENTS]), _this_period(_ev.c.created_at, p))
        .group_by(_ev.c.name),
        select(_const("published"), func.count())
        .where(_this_period(_post.c.created_at, p),
               _image_of(_post.c.image_id, _gen.c.enhanced_prompt.is_not(None))))


def _q_templates(p: Period, dialect: str):
    """Per template: the publishes, likes and remixes of the period whose image came from it (its uses come
    with the generations statement; the catalog's names with the catalog statement)."""
    post_template = _image_of(_post.c.image_id, _gen.c.template_id)
    pubs = (select(_const("publishes").label("measure"), post_template.label("template_id"),
                   func.count().label("n"))
            .where(_this_period(_post.c.created_at, p)).group_by("template_id"))
    liked_post_template = (select(_gen.c.template_id).select_from(_post.join(_gen, _gen.c.id == _post.c.image_id))
                           .where(_post.c.id == _like.c.post_id).scalar_subquery())
    likes = (select(_const("likes"), liked_post_template.label("template_id"), func.count())
             .where(_this_period(_like.c.created_at, p)).group_by("template_id"))
    remixes = (select(_const("remixes"), _image_of(_reuse.c.source_image_id, _gen.c.template_id).label("template_id"),
                      func.count())
               # a remix counts once its image exists (CommunityService completes the row then)
               .where(_this_period(_reuse.c.created_at, p), _reuse.c.new_image_id.is_not(None))
               .group_by("template_id"))
    return union_all(pubs, likes, remixes)


def _q_catalog(p: Period, dialect: str):
    return (select(_tpl.c.id, _cat.c.name.label("category"), _tpl.c.title.label("template"))
            .select_from(_tpl.join(_cat, _cat.c.id == _tpl.c.category_id))
            .order_by(_cat.c.sort_order, _cat.c.id, _tpl.c.sort_order, _tpl.c.id))


def _q_community(p: Period, dialect: str):
    def per_bucket(kind: str, column):
        return (select(_const(kind).label("kind"), time_bucket(p.granularity, column).label("period_start"),
                       func.count().label("n")).where(_this_period(column, p)).group_by("period_start"))

    return union_all(per_bucket("posts", _post.c.created_at), per_bucket("likes", _like.c.created_at),
                     per_bucket("reports", _rep.c.created_at))


def _moderation_where(p: Period):
    return [_this_period(_rep.c.created_at, p), _rep.c.resolved_at.is_not(None), _rep.c.status != "open"]


def _q_moderation(p: Period, dialect: str):
    return percentile_select(dialect, seconds_between(_rep.c.created_at, _rep.c.resolved_at) / 3600.0,
                             {"period_start": time_bucket(p.granularity, _rep.c.created_at)}, _moderation_where(p))


def _q_moderation_overall(p: Period, dialect: str):
    return percentile_select(dialect, seconds_between(_rep.c.created_at, _rep.c.resolved_at) / 3600.0, {},
                             _moderation_where(p))


QueryBuilder = Callable[[Period, str], Any]
# Every statement the dashboard runs, once each, in this order (the benchmark times exactly these).
DASHBOARD_QUERIES: dict[str, QueryBuilder] = {
    "active_users": _q_active_users,
    "generations": _q_generations,
    "latency": _q_latency,
    "credits": _q_credits,
    "revenue": _q_revenue,
    "funnel": _q_funnel,
    "templates": _q_templates,
    "catalog": _q_catalog,
    "community": _q_community,
    "moderation": _q_moderation,
    "moderation_overall": _q_moderation_overall,
}

# How ledger kinds read on the credits chart (signs flipped so every flow is a positive amount).
CREDIT_FLOWS: dict[str, tuple[str, int]] = {
    "allowance_grant": ("granted", 1), "signup_bonus": ("granted", 1), "referral_bonus": ("granted", 1),
    "purchase": ("purchased", 1), "generation": ("spent", -1), "refund": ("refunded", 1),
    "allowance_expiry": ("expired", -1), "admin_adjustment": ("adjusted", 1),
}
FLOW_ORDER = ("granted", "purchased", "spent", "refunded", "expired", "adjusted")
FUNNEL_STAGES = (("requested", "Enhancement requested"), ("accepted", "Enhanced prompt used"),
                 ("generated", "Image generated"), ("published", "Published"))


def _rate(part: float, whole: float) -> float | None:
    return part / whole if whole else None


# == the service =============================================================================================
class AnalyticsService:
    def __init__(self, db: Database, settings: Settings, clock: Callable[[], datetime] = utcnow) -> None:
        self.db = db
        self.settings = settings
        self.clock = clock
        # (user, marker, bucket) already known to be in the database: spares the look-up on every later event.
        # Only a shortcut -- the database check below is what keeps markers unique across processes.
        self._marked: OrderedDict[tuple[int, str, date], None] = OrderedDict()
        self._marked_lock = threading.Lock()

    # -- events ------------------------------------------------------------------------------------------
    def track(self, name: str, user_id: int | None, properties: Mapping[str, Any] | None = None,
              session_id: str | None = None) -> bool:
        """Record one event. Never raises: a bad name or a database error is logged and False returned, so
        the page or worker that called it carries on."""
        try:
            name = str(name)
            if not EVENT_NAME_RE.match(name):
                raise ValueError(f"invalid event name {name!r}")
            now = self.clock()
            row = {"name": name, "user_id": user_id, "properties": clean_properties(properties),
                   "session_id": (session_id or None) and str(session_id)[:MAX_SESSION_ID], "created_at": now}
            with self.db.write() as s:
                s.execute(insert(_ev), row)
                marked = self._mark_activity(s, user_id, row["session_id"], now) if user_id is not None else []
            with self._marked_lock:  # remembered only once committed
                for key in marked:
                    self._marked[key] = None
                while len(self._marked) > MARKER_CACHE_SIZE:
                    self._marked.popitem(last=False)
            return True
        except Exception:  # noqa: BLE001 - analytics must never break the caller
            log.warning("analytics event %r was not recorded", name, exc_info=True)
            return False

    def _mark_activity(self, s: Session, user_id: int, session_id: str | None, now: datetime
                       ) -> list[tuple[int, str, date]]:
        """Write the user's first-activity markers for this day, week and month where they are missing;
        returns the markers now known to exist."""
        today = now.astimezone(UTC).date()
        todo = []
        for granularity, marker in ACTIVITY_MARKERS.items():
            bucket = bucket_start(today, granularity)  # type: ignore[arg-type]
            key = (user_id, str(marker), bucket)
            with self._marked_lock:
                if key in self._marked:
                    continue
            todo.append((granularity, marker, bucket, key))
        if not todo:
            return []
        # PostgreSQL: one transaction per user at a time past this point, so two replicas never both insert.
        self.db.serialize(s, f"analytics:activity:{user_id}")
        for granularity, marker, bucket, _key in todo:
            start = datetime.combine(bucket, time(), tzinfo=UTC)
            end = datetime.combine(_next_bucket(bucket, granularity), time(), tzinfo=UTC)  # type: ignore[arg-type]
            exists = s.execute(select(_ev.c.id).where(_ev.c.user_id == user_id, _ev.c.created_at >= start,
                                                      _ev.c.created_at < end, _ev.c.name == str(marker))
                               .limit(1)).first()
            if exists is None:
                s.execute(insert(_ev), {"name": str(marker), "user_id": user_id, "properties": {},
                                        "session_id": session_id, "created_at": now})
        return [key for *_, key in todo]

    def track_generation(self, job: JobView) -> None:
        """GenerationService's on_succeeded / on_failed hook (worker threads; never Streamlit)."""
        if job.status not in ("succeeded", "failed"):
            return
        latency = (job.finished_at - job.created_at).total_seconds() if job.finished_at else None
        self.track(Event.GENERATION_SUCCEEDED if job.status == "succeeded" else Event.GENERATION_FAILED,
                   job.owner_id, {"job_id": job.id, "tier": job.tier, "provider": job.provider,
                                  "latency_s": round(latency, 3) if latency is not None else None,
                                  "error_code": job.error_code, "cost": job.cost,
                                  "template_id": job.template_id, "enhanced": job.enhanced_prompt is not None})

    # -- the dashboard -----------------------------------------------------------------------------------
    @staticmethod
    def _require_admin(actor: UserView) -> None:
        if actor is None or not actor.is_admin:
            raise AccessDenied("Only admins can read analytics.")

    def today(self) -> date:
        return self.clock().astimezone(UTC).date()

    @contextmanager
    def _reading(self) -> Iterator[Session]:
        with self.db.read() as s:
            if not self.db.is_sqlite:
                # Short aggregate queries whose costs the planner overestimates: JIT compilation would cost more
                # than the query itself, and the default work_mem sends their sorts to disk.
                s.execute(text("SET LOCAL jit = off"))
                s.execute(text(f"SET LOCAL work_mem = '{PG_WORK_MEM}'"))
            yield s

    def run_query(self, actor: UserView, name: str, period: Period) -> list[Any]:
        """One of the dashboard's statements, as rows (the benchmark times each of them)."""
        self._require_admin(actor)
        with self._reading() as s:
            return list(s.execute(DASHBOARD_QUERIES[name](period, self.db.dialect)).all())

    def dashboard(self, actor: UserView, period: Period) -> Dashboard:
        """Every figure of the analytics page for ``period`` (and the previous period, for the KPIs)."""
        self._require_admin(actor)
        with self._reading() as s:
            raw = {name: list(s.execute(build(period, self.db.dialect)).all())
                   for name, build in DASHBOARD_QUERIES.items()}
        return _assemble(period, raw, self._currency())

    def _currency(self) -> str:
        packs = self.settings.credit_packs
        return packs[0].currency if packs else "usd"


# == from aggregated rows to the dashboard (small data: at most a few thousand rows) =========================
def _assemble(p: Period, raw: dict[str, list[Any]], currency: str) -> Dashboard:
    buckets = p.buckets()
    days = Period(p.start, p.end, "day").buckets()

    # active users
    au: dict[str, dict[date | None, int]] = defaultdict(dict)
    for kind, bucket, n in raw["active_users"]:
        au[kind][bucket_day(bucket) if bucket is not None else None] = n
    per_day = au["bucket"] if p.granularity == "day" else au["day"]
    active_users = Table(("bucket", "active_users"), tuple((b, au["bucket"].get(b, 0)) for b in buckets))
    daily = Table(("day", "active_users"), tuple((d, per_day.get(d, 0)) for d in days))
    active_cur, active_prev = au["current"].get(None, 0), au["previous"].get(None, 0)

    # generations (and the error codes and the funnel's generated stage, read in the same pass)
    cells: dict[tuple[date, str, str], int] = defaultdict(int)
    totals = {0: defaultdict(int), 1: defaultdict(int)}
    per_bucket_status: dict[date, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    errors: dict[str, int] = defaultdict(int)
    generated_enhanced = 0
    measures: dict[int, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for kind, bucket, tier, status, error_code, template_id, n, enhanced in raw["generations"]:
        cur = int(kind == "current")
        totals[cur][status] += n
        if cur and template_id is not None:
            measures[template_id]["uses"] += n
            measures[template_id]["ok"] += n if status == "succeeded" else 0
            measures[template_id]["finished"] += n if status in ("succeeded", "failed") else 0
        if cur:
            cells[(bucket_day(bucket), tier, status)] += n
            per_bucket_status[bucket_day(bucket)][status] += n
            if status == "failed":
                errors[error_code or "unknown"] += n
            if status == "succeeded":
                generated_enhanced += int(enhanced or 0)
    gen_rows = sorted((b, tier, status, n) for (b, tier, status), n in cells.items())
    top_errors = sorted(errors.items(), key=lambda e: (-e[1], e[0]))[:10]
    failure_rows = []
    for b in buckets:
        counts = per_bucket_status.get(b, {})
        finished = counts.get("succeeded", 0) + counts.get("failed", 0)
        failure_rows.append((b, finished, counts.get("failed", 0), _rate(counts.get("failed", 0), finished)))
    has_generations = bool(gen_rows)

    def success(t: dict[str, int]) -> float | None:
        return _rate(t["succeeded"], t["succeeded"] + t["failed"])

    # credits
    flows = {0: defaultdict(int), 1: defaultdict(int)}
    credit_cells: dict[tuple[date, str], int] = defaultdict(int)
    for row_kind, bucket, kind, amount in raw["credits"]:
        cur = int(row_kind == "current")
        flow, sign = CREDIT_FLOWS.get(kind, ("adjusted", 1))
        flows[cur][flow] += sign * int(amount or 0)
        if cur:
            credit_cells[(bucket_day(bucket), flow)] += sign * int(amount or 0)
    present_flows = [f for f in FLOW_ORDER if f in flows[1] or f in ("granted", "purchased", "spent", "refunded")]
    credit_rows = tuple((b, f, credit_cells.get((b, f), 0)) for b in buckets for f in present_flows) \
        if credit_cells else ()

    # revenue
    revenue = {0: defaultdict(int), 1: defaultdict(int)}
    revenue_rows = []
    for kind, bucket, pack, cur_code, n, cents in raw["revenue"]:
        cur = int(kind == "current")
        revenue[cur][cur_code] += int(cents or 0)
        if cur:
            revenue_rows.append((bucket_day(bucket), pack, cur_code.upper(), n, round(int(cents or 0) / 100, 2)))
    revenue_rows.sort(key=lambda r: (r[0], r[1]))

    # funnel
    names = {stage: n for stage, n in raw["funnel"]}
    funnel_counts = {"requested": names.get(Event.ENHANCE_REQUESTED, 0),
                     "accepted": names.get(Event.ENHANCE_ACCEPTED, 0) + names.get(Event.ENHANCE_EDITED, 0),
                     "generated": generated_enhanced, "published": names.get("published", 0)}
    funnel = Table(("stage", "count"), tuple((label, funnel_counts[k]) for k, label in FUNNEL_STAGES)
                   if any(funnel_counts.values()) else ())
    choices_raw = (("accepted as written", names.get(Event.ENHANCE_ACCEPTED, 0)),
                   ("edited, then used", names.get(Event.ENHANCE_EDITED, 0)),
                   ("rejected (original used)", names.get(Event.ENHANCE_REJECTED, 0)))
    choices = Table(("choice", "count"), choices_raw if any(n for _, n in choices_raw) else ())

    # templates and categories
    for measure, template_id, n in raw["templates"]:
        if template_id is not None:
            measures[template_id][measure] += int(n or 0)
    tpl_rows, cat_sums = [], {}
    for template_id, category, template in raw["catalog"]:
        m = measures.get(template_id, {})
        uses, ok, finished, pubs, likes, remixes = (m.get(k, 0) for k in ("uses", "ok", "finished", "publishes",
                                                                          "likes", "remixes"))
        if uses or pubs or likes or remixes:
            tpl_rows.append((category, template, uses, ok, _rate(ok, finished), pubs, likes, remixes))
        c = cat_sums.setdefault(category, [0, 0, 0, 0, 0, 0])
        for i, v in enumerate((uses, ok, finished, pubs, likes, remixes)):
            c[i] += int(v or 0)
    tpl_rows.sort(key=lambda r: (-r[2], r[0], r[1]))
    cat_rows = tuple((name, u, ok, _rate(ok, fin), pu, li, re_) for name, (u, ok, fin, pu, li, re_)
                     in cat_sums.items() if u or pu or li or re_)
    tpl_cols = ("uses", "succeeded", "success_rate", "publishes", "likes", "remixes")

    # community and moderation
    comm: dict[date, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for kind, bucket, n in raw["community"]:
        comm[bucket_day(bucket)][kind] += n
    community_rows = tuple((b, comm[b]["posts"], comm[b]["likes"], comm[b]["reports"]) for b in buckets) \
        if comm else ()
    moderation_rows = tuple(sorted((bucket_day(b), n, p50, p95) for b, n, p50, p95 in raw["moderation"] if n))
    reports_total = sum(c["reports"] for c in comm.values())
    overall = [r for r in raw["moderation_overall"] if r[0]]
    resolved = overall[0][0] if overall else 0
    moderation_overall = Table(
        ("reports", "resolved", "open", "p50_hours", "p95_hours"),
        ((reports_total, resolved, reports_total - resolved, overall[0][1] if overall else None,
          overall[0][2] if overall else None),) if reports_total else ())

    def spent(f: dict[str, int]) -> int:
        return f["spent"] - f["refunded"]

    def series(values: Iterable[float | None]) -> tuple[float, ...]:
        # a bucket without a rate (nothing finished) is left out rather than drawn as zero
        return tuple(float(v) for v in values if v is not None)

    kpis = (
        Kpi("active_users", "Active users", active_cur, active_prev,
            help="Signed-in people with any tracked activity in the period.",
            trend=series(r[1] for r in active_users.rows)),
        Kpi("generations", "Generations", sum(totals[1].values()), sum(totals[0].values()),
            help="Images requested in the period, whatever became of them.",
            trend=series(sum(per_bucket_status.get(b, {}).values()) for b in buckets)),
        Kpi("success_rate", "Success rate", success(totals[1]), success(totals[0]), unit="percent",
            help="Succeeded ÷ (succeeded + failed); canceled and unfinished jobs are left out. "
                 "The change is in percentage points.",
            trend=series(1 - r[3] if r[3] is not None else None for r in failure_rows)),
        Kpi("credits_spent", "Credits spent", spent(flows[1]), spent(flows[0]), unit="credits",
            help="Generation charges net of refunds.",
            trend=series(credit_cells.get((b, "spent"), 0) - credit_cells.get((b, "refunded"), 0)
                         for b in buckets)),
        Kpi("revenue", f"Revenue ({currency.upper()})", revenue[1][currency] / 100, revenue[0][currency] / 100,
            unit="money", currency=currency.upper(), help="Paid credit-pack purchases, by payment date.",
            trend=series(sum(r[4] for r in revenue_rows if r[0] == b and r[2] == currency.upper())
                         for b in buckets)),
    )
    return Dashboard(
        period=p, kpis=kpis, active_users=active_users if au["current"].get(None) else Table(active_users.columns),
        daily_active_users=daily if au["current"].get(None) else Table(daily.columns),
        generations=Table(("bucket", "tier", "status", "generations"), tuple(gen_rows)),
        failure_rate=Table(("bucket", "finished", "failed", "failure_rate"),
                           tuple(failure_rows) if has_generations else ()),
        error_codes=Table(("error_code", "failures"), tuple(top_errors)),
        latency=Table(("provider", "tier", "generations", "p50_seconds", "p95_seconds"),
                      tuple(sorted((pr, t, n, p50, p95) for pr, t, n, p50, p95 in raw["latency"] if n))),
        credits=Table(("bucket", "flow", "credits"), credit_rows),
        revenue=Table(("bucket", "pack", "currency", "purchases", "revenue"), tuple(revenue_rows)),
        funnel=funnel, enhancement_choices=choices,
        templates=Table(("category", "template", *tpl_cols), tuple(tpl_rows)),
        categories=Table(("category", *tpl_cols), cat_rows),
        community=Table(("bucket", "posts", "likes", "reports"), community_rows),
        moderation=Table(("bucket", "resolved", "p50_hours", "p95_hours"), moderation_rows),
        moderation_overall=moderation_overall,
    )


__all__ = ["DASHBOARD_QUERIES", "GRANULARITIES", "AnalyticsService", "Dashboard", "Event", "InvalidPeriod", "Kpi",
           "Period", "Table", "percentile_select", "seconds_between", "time_bucket"]

