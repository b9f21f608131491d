"""Product analytics: events, and the figures of the admin dashboard, computed in the database.

Events: ``track()`` writes one ``analytics_events`` row and never raises -- a failure is logged and swallowed,
so a page never breaks because analytics did. Event names are the ``Event`` constants below; screens that are
still being built call them as they arrive (download, publish, like, ...).

Dashboard: every figure is an aggregate SQL statement over an indexed ``created_at`` range (or a rollup's day
range), grouped by a time bucket; the application only ever receives aggregated rows (a few thousand at most),
never raw events. Only three things differ between SQLite and PostgreSQL and each lives in one small construct
below: ``time_bucket`` (strftime / date_trunc), ``seconds_between`` (julianday / epoch) and
``percentile_select`` (window functions / percentile_cont).

Rollups, kept in the same transaction as the data they count, so the dashboard reads a few rows per day
instead of every row (and each is also bulk-filled by the demo seeder and backfilled by migration 0003):
* activity markers (``track()``: a user's first event of a day / week / month) for the active-user counts;
* ``analytics_daily_events``: the funnel's events and the markers per day (``count_events``, from ``track()``);
* ``analytics_daily_generations`` (per tier, status, provider, error code) and
  ``analytics_daily_generation_sources`` (per template, status, enhanced or not): ended generations per day
  of their request (``count_ended_generations``, from the update that ends each job); jobs still queued or
  running are read live;
* ``generated_images.latency_ms``, in an index ordered by latency per (status, provider, tier): a percentile
  is the entry at its position in an index walk (exact, nothing sorted), the position from the rollup's count.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from collections import OrderedDict, defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Literal

from sqlalchemy import (
    Date,
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
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.functions import FunctionElement

from studio_core.config import Settings
from studio_core.db import Database
from studio_core.models import (
    LEDGER_KINDS,
    AnalyticsDailyEvents,
    AnalyticsDailyGenerations,
    AnalyticsDailyGenerationSources,
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
    utcnow,
)
from studio_core.services.accounts import AccessDenied, UserView
from studio_core.services.kept import Kept

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
FUNNEL_EVENTS = (Event.ENHANCE_REQUESTED, Event.ENHANCE_ACCEPTED, Event.ENHANCE_EDITED, Event.ENHANCE_REJECTED)
# Counted per day in analytics_daily_events as they are recorded: what the dashboard counts per bucket. Page
# views and the like are not (a row every visitor updates would be a hot spot, and nothing reads it).
DAILY_COUNTED_EVENTS = frozenset(str(e) for e in (*FUNNEL_EVENTS, *ACTIVITY_MARKERS.values()))

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
    as_of: datetime | None = None  # when these figures were added up

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
    """The first day of the day / week (Monday, as date_trunc) / month holding a timestamp (or date) column:
    'YYYY-MM-DD' text on SQLite, the truncated timestamp (or a date) on PostgreSQL (grouping by it is cheaper
    than by formatted text). ``bucket_day()`` reads either."""
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
    unit, column = element.name.split("_")[0], _arg(element, compiler, **kw)
    if isinstance(list(element.clauses)[0].type, Date):  # a rollup's day: stay a date, whatever the time zone
        return column if unit == "day" else f"CAST(date_trunc('{unit}', CAST({column} AS TIMESTAMP)) AS DATE)"
    return f"date_trunc('{unit}', {column})"


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


# == the generations rollups ================================================================================
_ev = AnalyticsEvent.__table__
_gen = GeneratedImage.__table__
_outcomes = AnalyticsDailyGenerations.__table__
_sources = AnalyticsDailyGenerationSources.__table__
_daily_events = AnalyticsDailyEvents.__table__
# GenerationService's ACTIVE / TERMINAL (it imports this module, so the names are repeated, not imported)
_LIVE_STATUSES = ("queued", "running")
_ENDED_STATUSES = ("succeeded", "failed", "canceled")


def generation_latency_ms(created_at: datetime, finished_at: datetime) -> int:
    """What the user waited for a job, request to end, in whole milliseconds (the dashboard's latency)."""
    return max(0, (finished_at - created_at + timedelta(microseconds=500)) // timedelta(milliseconds=1))


def _const(value: str):
    # Inline SQL literals (never user input): a bound parameter in a UNION's select list has no type on
    # PostgreSQL.
    return literal_column(f"'{value}'", String())


_ZERO = literal_column("0", Integer)  # inline, so a GROUP BY matches the same expression in the select list


def _rollup_keys(table) -> dict[str, ColumnElement]:
    """How a generated_images row is keyed in each rollup (no error code / template: '' / 0)."""
    day = func.date(_gen.c.created_at)
    if table is _outcomes:
        return {"day": day, "tier": _gen.c.tier, "status": _gen.c.status, "provider": _gen.c.provider,
                "error_code": func.coalesce(_gen.c.error_code, _const(""))}
    return {"day": day, "template_id": func.coalesce(_gen.c.template_id, _ZERO), "status": _gen.c.status,
            "enhanced": _gen.c.enhanced_prompt.is_not(None)}


def _add_counts(s: Session, table, key: Mapping[str, ColumnElement], where: Sequence[ColumnElement[bool]]) -> None:
    """rollup[key] += COUNT(*) of the source rows matching ``where``, grouped by ``key``: INSERT ... SELECT ...
    ON CONFLICT DO UPDATE, the same statement on both databases (the SELECT always has a WHERE, which SQLite's
    parser needs to tell the upsert's ON from a join's)."""
    insert_for = postgresql.insert if s.get_bind().dialect.name == "postgresql" else sqlite.insert
    rows = select(*[v.label(k) for k, v in key.items()], func.count().label("n")).where(*where) \
        .group_by(*key.values())
    upsert = insert_for(table).from_select([*key, "n"], rows)
    s.execute(upsert.on_conflict_do_update(index_elements=list(key), set_={"n": table.c.n + upsert.excluded.n}))


def count_ended_generations(s: Session, *where: ColumnElement[bool]) -> None:
    """Add the ended generations that match ``where`` to the daily rollups: the one place that keeps them.
    Each job must be added exactly once, in the transaction that ends it: GenerationService calls this only
    when its guarded terminal UPDATE changed the row (a retrying worker's second attempt changes nothing, so
    adds nothing); the demo seeder once for the jobs it bulk-inserted."""
    for table in (_outcomes, _sources):
        _add_counts(s, table, _rollup_keys(table), [_gen.c.status.in_(_ENDED_STATUSES), *where])


def count_events(s: Session, *where: ColumnElement[bool]) -> None:
    """Add the recorded events that match ``where`` (those of DAILY_COUNTED_EVENTS) to analytics_daily_events,
    exactly once each: ``track()`` in the transaction that records them, the demo seeder for its bulk insert."""
    _add_counts(s, _daily_events, {"day": func.date(_ev.c.created_at), "name": _ev.c.name},
                [_ev.c.name.in_(sorted(DAILY_COUNTED_EVENTS)), *where])


def _rollup_days(column, p: Period):
    return and_(column >= p.start, column < p.end + timedelta(days=1))


# == the dashboard's statements ==============================================================================
_led = CreditLedgerEntry.__table__
_pur = Purchase.__table__
_post = CommunityPost.__table__
_like = PostLike.__table__
_rep = PostReport.__table__
_reuse = PromptReuseEvent.__table__
_tpl = ImageTemplate.__table__
_cat = ImageCategory.__table__


def _this_period(column, p: Period):
    return and_(column >= p.start_at, column < p.end_at)


def _markers_per_bucket(kind: str, granularity: Granularity, start: date, end: date):
    """Distinct active users per bucket = activity markers per bucket, summed from the daily event counts of
    [start, end)."""
    d = _daily_events.c
    return (select(_const(kind).label("kind"), time_bucket(granularity, d.day).label("period_start"),
                   func.sum(d.n).label("n"))
            .where(d.name == str(ACTIVITY_MARKERS[granularity]), d.day >= start, d.day < end)
            .group_by("period_start"))


def _users_active(p: Period):
    """Distinct users with any tracked activity in the period = distinct users among its day markers: a range
    of the (name, created_at, user_id) index, read alone."""
    return (select(func.count(_ev.c.user_id.distinct()))
            .where(_ev.c.name == str(Event.ACTIVE_DAY), _this_period(_ev.c.created_at, p)).scalar_subquery())


def _q_active_users(p: Period, dialect: str):
    """Active users per bucket (whole buckets, so a week's figure is that week's), per day, and over the
    period and the previous one."""
    buckets = p.buckets()
    parts = [_markers_per_bucket("bucket", p.granularity, buckets[0], _next_bucket(buckets[-1], p.granularity))]
    if p.granularity != "day":
        parts.append(_markers_per_bucket("day", "day", p.start, p.end + timedelta(days=1)))
    parts.append(select(_const("current"), null(), _users_active(p)))
    parts.append(select(_const("previous"), null(), _users_active(p.previous)))
    return union_all(*parts)


@dataclass(frozen=True)
class _Steps:
    """A figure that takes more than one statement: ``run(session)`` returns its rows."""

    run: Callable[[Session], list[Any]]


def _q_generations(p: Period, dialect: str) -> _Steps:
    """Generations requested in the period per bucket, tier and status; its failures per error code; per
    template and status (template uses and success); the ones from an enhanced prompt that succeeded (the
    funnel's generated stage); and the previous period's per status. Ended jobs come from the rollups, the few
    still queued or running from the table itself (the status index), in the same read snapshot."""
    o, src, prev_days = _outcomes.c, _sources.c, _rollup_days(_outcomes.c.day, p.previous)
    no_text, no_id = cast(null(), String), cast(null(), Integer)  # typed: PostgreSQL matches UNION columns pairwise
    ended = union_all(
        select(_const("current").label("kind"), time_bucket(p.granularity, o.day).label("period_start"),
               o.tier, o.status, no_text.label("error_code"), no_id.label("template_id"), func.sum(o.n).label("n"))
        .where(_rollup_days(o.day, p)).group_by("period_start", o.tier, o.status),
        select(_const("errors"), null(), null(), o.status, o.error_code, no_id, func.sum(o.n))
        .where(_rollup_days(o.day, p), o.status == "failed").group_by(o.status, o.error_code),
        select(_const("templates"), null(), null(), src.status, no_text, src.template_id, func.sum(src.n))
        .where(_rollup_days(src.day, p), src.template_id != _ZERO).group_by(src.status, src.template_id),
        select(_const("enhanced"), null(), null(), src.status, no_text, no_id, func.sum(src.n))
        .where(_rollup_days(src.day, p), src.status == "succeeded", src.enhanced).group_by(src.status),
        select(_const("previous"), null(), null(), o.status, no_text, no_id, func.sum(o.n))
        .where(prev_days).group_by(o.status))
    live = (select(_gen.c.created_at, _gen.c.tier, _gen.c.status, _gen.c.template_id)
            .where(_gen.c.status.in_(_LIVE_STATUSES), _gen.c.created_at >= p.previous.start_at,
                   _gen.c.created_at < p.end_at))

    def run(s: Session) -> list[Any]:
        rows = list(s.execute(ended).all())
        for created_at, tier, status, template_id in s.execute(live).all():
            if created_at < p.start_at:
                rows.append(("previous", None, None, status, None, None, 1))
                continue
            rows.append(("current", bucket_start(created_at.date(), p.granularity), tier, status, None, None, 1))
            if template_id is not None:
                rows.append(("templates", None, None, status, None, template_id, 1))
        return rows

    return _Steps(run)


LATENCY_PERCENTILES = (0.5, 0.95)


def _q_latency(p: Period, dialect: str) -> _Steps:
    """p50 / p95 of succeeded jobs' latency per provider and tier, exact (interpolated between the two nearest
    values, like percentile_cont): the count per group comes from the outcomes rollup, then each percentile's
    one or two values are read at their position in a walk of the (status, provider, tier, latency_ms,
    created_at) index from its nearer end -- nothing is sorted. One small statement per walk: the same two
    shapes each time, so they are compiled (and on PostgreSQL planned) once, not as one long union."""

    def walk(s: Session, provider: str, tier: str, n: int, q: float) -> float | None:
        h = (n - 1) * q
        lo = int(h)
        count = 2 if lo + 1 < n else 1  # the values at positions lo and lo + 1 (if there is one)
        ascending = lo <= n - lo - count
        got = sorted(s.scalars(
            select(_gen.c.latency_ms)
            .where(_gen.c.status == "succeeded", _gen.c.provider == provider, _gen.c.tier == tier,
                   _gen.c.latency_ms.is_not(None), _this_period(_gen.c.created_at, p))
            .order_by(_gen.c.latency_ms if ascending else _gen.c.latency_ms.desc())
            .limit(count).offset(lo if ascending else n - lo - count)))
        if not got:
            return None
        return (got[0] + (got[1] - got[0]) * (h - lo) if len(got) == 2 else got[0]) / 1000.0

    def run(s: Session) -> list[Any]:
        d = _outcomes.c
        groups = s.execute(select(d.provider, d.tier, func.sum(d.n))
                           .where(d.status == "succeeded", _rollup_days(d.day, p))
                           .group_by(d.provider, d.tier).order_by(d.provider, d.tier)).all()
        return [(provider, tier, n, *(walk(s, provider, tier, n, q) for q in LATENCY_PERCENTILES))
                for provider, tier, n in groups]

    return _Steps(run)


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


def _image_of(post_id_column, value) -> Any:
    """A column of the image behind a post, as a correlated scalar subquery: one primary-key look-up per post,
    which PostgreSQL cannot turn into a scan of every image the way it plans a join or EXISTS."""
    return select(value).where(_gen.c.id == post_id_column).scalar_subquery()


def _q_funnel(p: Period, dialect: str):
    """Enhancement events of the period by name (the generated stage comes with the generations statement, the
    published one with the templates statement)."""
    d = _daily_events.c
    return (select(d.name.label("stage"), func.sum(d.n).label("n"))
            .where(d.name.in_([str(e) for e in FUNNEL_EVENTS]), _rollup_days(d.day, p)).group_by(d.name))


def _q_templates(p: Period, dialect: str):
    """Per template: the publishes, likes and remixes of the period whose image came from it, and the publishes
    whose image came from an enhanced prompt (the funnel's published stage). The template uses come with the
    generations statement, the catalog's names with the catalog statement."""
    # One look-up of each post's image gives both its template and whether its prompt was enhanced, packed in
    # one number that _published_source unpacks: 2 x template id (0 for none) + 1 if enhanced.
    post_source = _image_of(_post.c.image_id, func.coalesce(_gen.c.template_id, _ZERO) * 2
                            + case((_gen.c.enhanced_prompt.is_not(None), 1), else_=0))
    # (labelled "source", not "template_id": GROUP BY a name that is also one of the posts' columns groups by
    # the column on PostgreSQL)
    pubs = (select(_const("publishes").label("measure"), post_source.label("source"), func.count().label("n"))
            .where(_this_period(_post.c.created_at, p)).group_by("source"))
    # likes and remixes counted per post / source image first: one look-up per post, not per like
    liked = (select(_like.c.post_id, func.count().label("n")).where(_this_period(_like.c.created_at, p))
             .group_by(_like.c.post_id).subquery("liked"))
    liked_post_template = (select(_gen.c.template_id).select_from(_post.join(_gen, _gen.c.id == _post.c.image_id))
                           .where(_post.c.id == liked.c.post_id).scalar_subquery())
    likes = (select(_const("likes"), liked_post_template.label("source"), cast(func.sum(liked.c.n), Integer))
             .group_by("source"))
    # a remix counts once its image exists (CommunityService completes the row then)
    remixed = (select(_reuse.c.source_image_id, func.count().label("n"))
               .where(_this_period(_reuse.c.created_at, p), _reuse.c.new_image_id.is_not(None))
               .group_by(_reuse.c.source_image_id).subquery("remixed"))
    remixes = (select(_const("remixes"), _image_of(remixed.c.source_image_id, _gen.c.template_id)
                      .label("source"), cast(func.sum(remixed.c.n), Integer))
               .group_by("source"))
    return union_all(pubs, likes, remixes)


def _published_source(packed: int) -> tuple[int | None, bool]:
    """(template id or None, enhanced) of a "publishes" row of _q_templates."""
    template_id, enhanced = divmod(packed, 2)
    return template_id or None, bool(enhanced)


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
    """Hours from report to decision for the period's reports, per bucket and over the whole period."""
    hours = seconds_between(_rep.c.created_at, _rep.c.resolved_at) / 3600.0
    per_bucket = percentile_select(dialect, hours, {"period_start": time_bucket(p.granularity, _rep.c.created_at)},
                                   _moderation_where(p)).subquery("per_bucket")
    overall = percentile_select(dialect, hours, {}, _moderation_where(p)).subquery("overall")
    return union_all(
        select(_const("bucket").label("kind"), per_bucket.c.period_start, per_bucket.c.n, per_bucket.c.p50,
               per_bucket.c.p95),
        select(_const("overall"), null(), overall.c.n, overall.c.p50, overall.c.p95))


QueryBuilder = Callable[[Period, str], Any]  # a statement, or _Steps for a figure that takes several


def _run(s: Session, built: Any) -> list[Any]:
    return built.run(s) if isinstance(built, _Steps) else list(s.execute(built).all())

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
KEPT_DASHBOARDS = 8  # periods (range and granularity) whose figures are kept, newest first


class AnalyticsService:
    def __init__(self, db: Database, settings: Settings, clock: Callable[[], datetime] = utcnow) -> None:
        self.db = db
        self.settings = settings
        self.clock = clock
        # (user, marker, bucket) already known to be in the database: spares the look-up on every later event.
        # Only a shortcut -- the database check below is what keeps markers unique across processes.
        self._marked: OrderedDict[tuple[int, str, date], None] = OrderedDict()
        self._marked_lock = threading.Lock()
        # Dashboards added up lately, by period (see dashboard()); the newest few periods only.
        self._boards: Kept[Period, Dashboard] = Kept(settings.analytics_cache_s, size=KEPT_DASHBOARDS)

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
                event_id = s.execute(insert(_ev).returning(_ev.c.id), row).scalar_one()
                marked, counted = self._mark_activity(s, user_id, row["session_id"], now) \
                    if user_id is not None else ([], [])
                if name in DAILY_COUNTED_EVENTS:
                    counted.append(event_id)
                if counted:
                    count_events(s, _ev.c.id.in_(counted))
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
                       ) -> tuple[list[tuple[int, str, date]], list[int]]:
        """Write the user's first-activity markers for this day, week and month where they are missing;
        returns the markers now known to exist and the ids of the rows written."""
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
            return [], []
        # PostgreSQL: one transaction per user at a time past this point, so two replicas never both insert.
        self.db.serialize(s, f"analytics:activity:{user_id}")
        written: list[int] = []
        for granularity, marker, bucket, _key in todo:
            start = datetime.combine(bucket, time(), tzinfo=UTC)
            end = datetime.combine(_next_bucket(bucket, granularity), time(), tzinfo=UTC)  # type: ignore[arg-type]
            exists = s.execute(select(_ev.c.id).where(_ev.c.user_id == user_id, _ev.c.created_at >= start,
                                                      _ev.c.created_at < end, _ev.c.name == str(marker))
                               .limit(1)).first()
            if exists is None:
                written.append(s.execute(insert(_ev).returning(_ev.c.id), {
                    "name": str(marker), "user_id": user_id, "properties": {}, "session_id": session_id,
                    "created_at": now}).scalar_one())
        return [key for *_, key in todo], written

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
                # One snapshot for every statement (SQLite's read transaction is one already), so figures read by
                # separate statements agree: a job that ends meanwhile is counted once, live or in the rollup.
                s.connection(execution_options={"isolation_level": "REPEATABLE READ"})
                # Short aggregate queries whose costs the planner overestimates: JIT compilation would cost more
                # than the query itself, and the default work_mem sends their sorts to disk.
                s.execute(text(f"SELECT set_config('jit', 'off', true), set_config('work_mem', '{PG_WORK_MEM}', true)"))
            yield s

    def run_query(self, actor: UserView, name: str, period: Period) -> list[Any]:
        """One of the dashboard's statements, as rows (the benchmark times each of them)."""
        self._require_admin(actor)
        with self._reading() as s:
            return _run(s, DASHBOARD_QUERIES[name](period, self.db.dialect))

    def dashboard(self, actor: UserView, period: Period, *, fresh: bool = False) -> Dashboard:
        """Every figure of the analytics page for ``period`` (and the previous period, for the KPIs).

        Added up at most every ``analytics_cache_s`` seconds per period and shared by every admin of this process
        (``as_of`` says when; ``fresh`` adds up again now): on a year of events that takes a noticeable moment,
        and every click on the page would otherwise pay it again for the same figures."""
        self._require_admin(actor)

        def add_up(now: datetime) -> Dashboard:
            with self._reading() as s:
                raw = {name: _run(s, build(period, self.db.dialect)) for name, build in DASHBOARD_QUERIES.items()}
            return replace(_assemble(period, raw, self._currency()), as_of=now)

        return self._boards.get(period, self.clock(), add_up, fresh=fresh)

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
    for kind, bucket, tier, status, error_code, template_id, n in raw["generations"]:
        if kind in ("current", "previous"):
            totals[int(kind == "current")][status] += n
        if kind == "current":
            cells[(bucket_day(bucket), tier, status)] += n
            per_bucket_status[bucket_day(bucket)][status] += n
        elif kind == "errors":
            errors[error_code or "unknown"] += n
        elif kind == "templates":
            measures[template_id]["uses"] += n
            measures[template_id]["ok"] += n if status == "succeeded" else 0
            measures[template_id]["finished"] += n if status in ("succeeded", "failed") else 0
        elif kind == "enhanced":
            generated_enhanced += n
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
                     "generated": generated_enhanced,
                     "published": sum(n for measure, packed, n in raw["templates"]
                                      if measure == "publishes" and _published_source(packed)[1])}
    funnel = Table(("stage", "count"), tuple((label, funnel_counts[k]) for k, label in FUNNEL_STAGES)
                   if any(funnel_counts.values()) else ())
    choices_raw = (("accepted as written", names.get(Event.ENHANCE_ACCEPTED, 0)),
                   ("edited, then used", names.get(Event.ENHANCE_EDITED, 0)),
                   ("rejected (original used)", names.get(Event.ENHANCE_REJECTED, 0)))
    choices = Table(("choice", "count"), choices_raw if any(n for _, n in choices_raw) else ())

    # templates and categories
    for measure, template_id, n in raw["templates"]:
        if measure == "publishes":
            template_id = _published_source(template_id)[0]
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
    moderation_rows = tuple(sorted((bucket_day(b), n, p50, p95) for kind, b, n, p50, p95 in raw["moderation"]
                                   if kind == "bucket" and n))
    reports_total = sum(c["reports"] for c in comm.values())
    overall = [r[2:] for r in raw["moderation"] if r[0] == "overall" and r[2]]
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

