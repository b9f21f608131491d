"""The Community feed: publishing, the feed and its sorts, likes, reports and remixes.

Visibility: the feed shows ``visible`` posts only, to everyone (admins included; they review the rest in
moderation). A hidden, removed or unpublished post is "not found" for everyone but its author, who sees it
with its status.

Counts are cached on the post row and changed in the same transaction as the row they count: ``like_count`` =
its likes, ``report_count`` = its *open* reports (so a post restored by a moderator starts afresh), and
``remix_count`` = images other people generated from it. A remix is counted when its image is generated (the
generation service's ``on_succeeded`` hook), not when Remix is clicked: a click that never becomes an image is
not a remix, and counting clicks would let anyone pump a post up for free. Clicking Remix records a
``prompt_reuse_events`` row; the finished image completes it (``new_image_id``), once per image.

Feed pages are keyset-paginated on indexes (see ``paging``); "Top" over a time window merges one index range
per UTC day (``ix_community_posts_top_day``), so its cost does not grow with the number of posts either.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Date, Integer, Select, bindparam, func, select, tuple_, union_all, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session, aliased

from studio_core.config import Settings
from studio_core.db import Database
from studio_core.models import (
    REPORT_REASONS,
    CommunityPost,
    GeneratedImage,
    ImageCategory,
    ModerationAction,
    PostLike,
    PostReport,
    PromptReuseEvent,
    User,
    UTCDateTime,
    utcnow,
)
from studio_core.ports import ImageStore
from studio_core.services import fulltext
from studio_core.services.generation import JobView, _view, _with_template, clean_text
from studio_core.services.paging import Page, decode_cursor, encode_cursor, page_of

log = logging.getLogger(__name__)

SORTS = {"new": "New", "top": "Top", "remixed": "Most remixed"}
WINDOWS = {"day": "Today", "week": "This week", "month": "This month", "all": "All time"}
WINDOW_DAYS = {"day": 1, "week": 7, "month": 30}
REASON_LABELS = {"spam": "Spam", "nsfw": "Sexual or graphic content", "hateful": "Hateful or harassing",
                 "copyright": "Copyright infringement", "other": "Something else"}
STATUS_LABELS = {"visible": "Published", "hidden": "Hidden pending review", "removed": "Removed by moderators",
                 "unpublished": "Unpublished"}
PAGE_SIZE = 12  # full rows of the grid at 2, 3, 4 or 6 cards a row
MAX_PAGE_SIZE = 100
TITLE_MAX = 120
DETAILS_MAX = 1000

P = CommunityPost
G = GeneratedImage


class CommunityError(Exception):
    """An action was refused; ``str(err)`` is written for the user."""


class PostNotFound(CommunityError, LookupError):
    pass


class AlreadyReported(CommunityError):
    pass


@dataclass(frozen=True)
class RemixOrigin:
    """Where a remix came from, as far as the viewer may know: a link target only when they may see it."""

    image_id: int
    post_id: int | None  # set when the source is a post the viewer can open
    title: str | None
    author_name: str | None
    own_image: bool  # the viewer's own image (shown in My Creations)

    @property
    def subject(self) -> str:
        if self.post_id is not None:
            return f"“{self.title}” by {self.author_name}"
        if self.own_image:
            return "one of your images"
        return "an image that is no longer shared"

    @property
    def label(self) -> str:
        return f"Remixed from {self.subject}"


@dataclass(frozen=True)
class PostView:
    id: int
    image_id: int
    author_id: int
    author_name: str
    title: str
    category_id: int | None
    category_name: str | None
    status: str
    like_count: int
    remix_count: int
    report_count: int
    created_at: datetime
    image_key: str | None
    thumbnail_key: str | None
    prompt: str
    liked: bool = False  # by the viewer
    reported: bool = False  # by the viewer
    is_mine: bool = False
    remixed_from: RemixOrigin | None = None

    @property
    def status_label(self) -> str:
        return STATUS_LABELS.get(self.status, self.status)

    @property
    def is_visible(self) -> bool:
        return self.status == "visible"


@dataclass(frozen=True)
class FeedQuery:
    sort: str = "new"  # new / top / remixed
    window: str = "week"  # day / week / month / all (Top only)
    category_id: int | None = None
    text: str = ""
    mine: bool = False  # only the viewer's own posts, in every status but unpublished


@dataclass(frozen=True)
class ReportResult:
    hidden_now: bool  # this report crossed the threshold and hid the post pending review


@dataclass(frozen=True)
class RemixStart:
    """What the studio needs to open a remix: the source's recipe and where it came from."""

    recipe: JobView
    post: PostView
    event_id: int


def _insert(db: Database, model):
    return (sqlite_insert if db.is_sqlite else pg_insert)(model)


def _after_desc(columns: tuple, values: tuple):
    """Rows strictly after ``values`` in descending (a, b) order: a row-value comparison that both engines
    serve as one index range (a plain tuple on the right takes the columns' types, e.g. UTCDateTime)."""
    return tuple_(*columns) < tuple(values)


class CommunityService:
    def __init__(self, db: Database, settings: Settings, store: ImageStore, *,
                 clock: Callable[[], datetime] = utcnow) -> None:
        self.db = db
        self.settings = settings
        self.store = store
        self.clock = clock

    # -- URLs (the port decides: local path or CDN URL) ----------------------------------------------------------
    def thumbnail_url(self, post: PostView) -> str | None:
        return self.store.thumbnail_url(post.image_key) if post.image_key else None

    def image_url(self, post: PostView) -> str | None:
        return self.store.url(post.image_key) if post.image_key else None

    # -- publishing --------------------------------------------------------------------------------------------
    def publish(self, user_id: int, image_id: int, title: str, category_id: int | None = None) -> PostView:
        """Share one of the user's finished images (or update its title and category if already shared).

        A post under moderation (hidden or removed) cannot be edited or re-published by its author."""
        title = clean_text(title)
        if not title:
            raise CommunityError("Give your post a title.")
        if len(title) > TITLE_MAX:
            raise CommunityError(f"Titles are at most {TITLE_MAX} characters.")
        with self.db.write() as s:
            image = s.execute(select(G.owner_id, G.status, G.deleted_at, G.template_id)
                              .where(G.id == image_id)).first()
            if image is None or image.owner_id != user_id or image.deleted_at is not None:
                raise PostNotFound("That image does not exist or is not yours.")
            if image.status != "succeeded":
                raise CommunityError("Only finished images can be published.")
            if category_id is not None and not s.scalar(
                    select(ImageCategory.active).where(ImageCategory.id == category_id)):
                raise CommunityError("That category is not available; pick another one.")
            post = s.scalar(select(P).where(P.image_id == image_id))
            if post is None:
                post = P(image_id=image_id, author_id=user_id, title=title, category_id=category_id,
                         template_id=image.template_id, status="visible", created_at=self.clock())
                s.add(post)
            elif post.status in ("hidden", "removed"):
                raise CommunityError(f"This post is {post.status} by moderation and cannot be changed.")
            else:
                # Re-publishing keeps the original date: taking a post down and up again never bumps it.
                post.title, post.category_id, post.status = title, category_id, "visible"
            s.flush()
            post_id = post.id
        return self.get_post(user_id, post_id)

    def unpublish(self, user_id: int, post_id: int) -> PostView:
        with self.db.write() as s:
            post = s.execute(select(P.author_id, P.status).where(P.id == post_id)).first()
            if post is None or post.author_id != user_id:
                raise PostNotFound("That post does not exist or is not yours.")
            if post.status in ("hidden", "removed"):
                raise CommunityError(f"This post is {STATUS_LABELS[post.status].lower()}; moderators decide "
                                     "what happens to it. You can still delete the image.")
            s.execute(update(P).where(P.id == post_id).values(status="unpublished"))
        return self.get_post(user_id, post_id)

    # -- reading -----------------------------------------------------------------------------------------------
    def get_post(self, viewer_id: int, post_id: int) -> PostView:
        """A visible post, or any post of the viewer's own (with its status); others' are not found."""
        with self.db.read() as s:
            found = self._hydrate(s, viewer_id, [post_id])
        post = found[0] if found else None
        if post is None or not (post.is_visible or post.author_id == viewer_id):
            raise PostNotFound("That post does not exist or is no longer shared.")
        return post

    def post_for_image(self, viewer_id: int, image_id: int) -> PostView | None:
        """The viewer's own post of one of their images, in any status (for My Creations)."""
        with self.db.read() as s:
            post_id = s.scalar(select(P.id).where(P.image_id == image_id, P.author_id == viewer_id))
            found = self._hydrate(s, viewer_id, [post_id]) if post_id is not None else []
        return found[0] if found else None

    def recipe(self, viewer_id: int, post_id: int) -> JobView:
        """The full recipe of a post's image (shared posts share their recipe: that is what remixing uses)."""
        post = self.get_post(viewer_id, post_id)
        with self.db.read() as s:
            row = s.execute(_with_template().where(G.id == post.image_id)).first()
        if row is None:
            raise PostNotFound("That post's image is gone.")
        return _view(*row)

    def feed(self, viewer_id: int, query: FeedQuery = FeedQuery(), cursor: str | None = None,
             limit: int = PAGE_SIZE) -> Page[PostView]:
        if query.sort not in SORTS:
            raise CommunityError(f"Unknown sort {query.sort!r}.")
        if query.window not in WINDOWS:
            raise CommunityError(f"Unknown time window {query.window!r}.")
        limit = max(1, min(limit, MAX_PAGE_SIZE))
        with self.db.read() as s:
            ids, next_cursor = self._page_ids(s, viewer_id, query, cursor, limit)
            posts = self._hydrate(s, viewer_id, ids)
        return Page(posts, next_cursor)

    def _page_ids(self, s: Session, viewer_id: int, q: FeedQuery, cursor: str | None, limit: int
                  ) -> tuple[list[int], str | None]:
        match = fulltext.post_match(self.db, q.text) if q.text.strip() else None
        if q.text.strip() and match is None:
            return [], None  # only punctuation or spaces: nothing can match (and nothing is "everything")
        where = [P.category_id == q.category_id] if q.category_id is not None else []
        if q.mine:
            where += [P.author_id == viewer_id, P.status != "unpublished"]
        else:
            where.append(P.status == "visible")
        cutoff = None
        if q.sort == "top" and q.window in WINDOW_DAYS:
            cutoff = self.clock() - timedelta(days=WINDOW_DAYS[q.window])

        if q.sort == "new" and match is not None and not q.mine:
            # Newest matches first, straight from the search index (highest id first, no sort).
            ordering = "search-new"
            after = decode_cursor(cursor, ordering, (int,))
            stmt = (select(P.id).select_from(match.index).join(P, P.id == match.key)
                    .where(match.condition, *where).order_by(match.key.desc()).limit(limit + 1))
            if after:
                stmt = stmt.where(match.key < after[0])
            rows = s.execute(stmt).all()
            page, nxt = page_of(rows, limit, lambda r: encode_cursor(ordering, r.id))
            return [r.id for r in page], nxt

        if q.sort == "top" and cutoff is not None and match is None and not q.mine:
            return self._top_window_ids(s, q.category_id, q.window, cutoff, cursor, limit)

        if q.sort == "new":
            ordering, keys, kinds = "new", (P.created_at, P.id), (datetime, int)
        elif q.sort == "top":
            ordering, keys, kinds = f"top-{q.window}", (P.like_count, P.id), (int, int)
        else:
            ordering, keys, kinds = "remixed", (P.remix_count, P.id), (int, int)
        if cutoff is not None:
            where.append(P.created_at >= cutoff)
        stmt = select(*keys).where(*where)
        if match is not None:
            # Sorted by likes or remixes (or the author's own list): every match is ranked, so this one costs
            # O(matches), unlike the plain feed and the newest-first search.
            stmt = stmt.where(P.id.in_(select(match.key).select_from(match.index).where(match.condition)))
        after = decode_cursor(cursor, ordering, kinds)
        if after:
            stmt = stmt.where(_after_desc(keys, after))
        rows = s.execute(stmt.order_by(*(k.desc() for k in keys)).limit(limit + 1)).all()
        page, nxt = page_of(rows, limit, lambda r: encode_cursor(ordering, *r))
        return [r.id for r in page], nxt

    def _top_window_ids(self, s: Session, category_id: int | None, window: str, cutoff: datetime,
                        cursor: str | None, limit: int) -> tuple[list[int], str | None]:
        """Most liked posts published since ``cutoff``: one range of ``ix_community_posts_top_day`` per UTC day,
        each already in (likes, id) order and cut at the page size, merged. O(days x page), however many posts
        those days hold."""
        ordering = f"top-{window}"
        after = decode_cursor(cursor, ordering, (int, int))
        first_day = cutoff.date()
        days = (self.clock().date() - first_day).days + 1
        params = {f"day_{n}": first_day + timedelta(days=n) for n in range(days)}
        params.update(cutoff=cutoff, page_limit=limit + 1, category_id=category_id)
        if after:
            params.update(after_likes=after[0], after_id=after[1])
        rows = s.execute(_top_window_statement(days, category_id is not None, bool(after)), params).all()
        page, nxt = page_of(rows, limit, lambda r: encode_cursor(ordering, r.like_count, r.id))
        return [r.id for r in page], nxt

    def _hydrate(self, s: Session, viewer_id: int, ids: list[int]) -> list[PostView]:
        """Full cards for a page of ids, in the same order (one query per kind of data, never per card)."""
        if not ids:
            return []
        rows = s.execute(
            select(P, User.display_name, ImageCategory.name, G.image_key, G.thumbnail_key, G.final_prompt,
                   G.remixed_from_id, G.deleted_at)
            .join(User, User.id == P.author_id).join(G, G.id == P.image_id)
            .outerjoin(ImageCategory, ImageCategory.id == P.category_id)
            .where(P.id.in_(ids))).all()
        liked = set(s.scalars(select(PostLike.post_id).where(PostLike.user_id == viewer_id,
                                                             PostLike.post_id.in_(ids))))
        reported = set(s.scalars(select(PostReport.post_id).where(PostReport.reporter_id == viewer_id,
                                                                  PostReport.post_id.in_(ids))))
        origins = remix_origins(s, viewer_id, [r.remixed_from_id for r in rows if r.remixed_from_id])
        by_id = {}
        for post, author, category, image_key, thumb_key, prompt, remixed_from, deleted_at in rows:
            by_id[post.id] = PostView(
                id=post.id, image_id=post.image_id, author_id=post.author_id, author_name=author,
                title=post.title, category_id=post.category_id, category_name=category, status=post.status,
                like_count=post.like_count, remix_count=post.remix_count, report_count=post.report_count,
                created_at=post.created_at, image_key=None if deleted_at else image_key,
                thumbnail_key=None if deleted_at else thumb_key, prompt=prompt, liked=post.id in liked,
                reported=post.id in reported, is_mine=post.author_id == viewer_id,
                remixed_from=origins.get(remixed_from) if remixed_from else None)
        return [by_id[i] for i in ids if i in by_id]

    # -- likes -------------------------------------------------------------------------------------------------
    def like(self, user_id: int, post_id: int) -> int:
        """Like a visible post of someone else; liking twice changes nothing. Returns the like count."""
        with self.db.write() as s:
            post = self._visible_post(s, post_id)
            if post.author_id == user_id:
                raise CommunityError("You can't like your own post.")
            inserted = s.scalar(_insert(self.db, PostLike)
                                .values(post_id=post_id, user_id=user_id, created_at=self.clock())
                                .on_conflict_do_nothing(index_elements=["post_id", "user_id"])
                                .returning(PostLike.id))
            if inserted is not None:
                s.execute(update(P).where(P.id == post_id).values(like_count=P.like_count + 1))
            return s.scalar(select(P.like_count).where(P.id == post_id))

    def unlike(self, user_id: int, post_id: int) -> int:
        with self.db.write() as s:
            if s.scalar(select(P.id).where(P.id == post_id)) is None:
                raise PostNotFound("That post does not exist.")
            removed = s.execute(PostLike.__table__.delete().where(PostLike.post_id == post_id,
                                                                  PostLike.user_id == user_id)).rowcount
            if removed:
                s.execute(update(P).where(P.id == post_id).values(like_count=P.like_count - 1))
            return s.scalar(select(P.like_count).where(P.id == post_id))

    # -- reports -----------------------------------------------------------------------------------------------
    def report(self, user_id: int, post_id: int, reason: str, details: str = "") -> ReportResult:
        """Report a visible post (once per user and post). At ``report_hide_threshold`` open reports the post
        is hidden at once, pending a moderator's review."""
        if reason not in REPORT_REASONS:
            raise CommunityError("Choose a reason for the report.")
        details = clean_text(details)
        if len(details) > DETAILS_MAX:
            raise CommunityError(f"Please keep the details under {DETAILS_MAX} characters.")
        if reason == "other" and not details:
            raise CommunityError("Tell the moderators what is wrong (the details are required for “other”).")
        now = self.clock()
        with self.db.write() as s:
            post = self._visible_post(s, post_id)
            if post.author_id == user_id:
                raise CommunityError("You can't report your own post.")
            report_id = s.scalar(_insert(self.db, PostReport)
                                 .values(post_id=post_id, reporter_id=user_id, reason=reason, details=details,
                                         status="open", created_at=now)
                                 .on_conflict_do_nothing(index_elements=["post_id", "reporter_id"])
                                 .returning(PostReport.id))
            if report_id is None:
                raise AlreadyReported("You already reported this post; moderators will look at it.")
            s.execute(update(P).where(P.id == post_id).values(report_count=P.report_count + 1))
            threshold = self.settings.report_hide_threshold
            hidden = s.execute(update(P).where(P.id == post_id, P.status == "visible",
                                               P.report_count >= threshold)
                               .values(status="hidden")).rowcount
            if hidden:
                # The audit trail names the report that tipped it over (moderation_actions needs an actor).
                s.add(ModerationAction(actor_id=user_id, action="auto_hide", post_id=post_id, report_id=report_id,
                                       target_user_id=post.author_id, created_at=now,
                                       note=f"Hidden automatically at {threshold} open reports, pending review."))
        return ReportResult(hidden_now=bool(hidden))

    # -- remixes -----------------------------------------------------------------------------------------------
    def start_remix(self, user_id: int, post_id: int) -> RemixStart:
        """Someone opens a post's recipe in their studio: record the reuse, hand back the recipe."""
        post = self.get_post(user_id, post_id)
        recipe = self.recipe(user_id, post_id)
        with self.db.write() as s:
            event = PromptReuseEvent(source_image_id=post.image_id, source_post_id=post.id, user_id=user_id,
                                     created_at=self.clock())
            s.add(event)
            s.flush()
            event_id = event.id
        return RemixStart(recipe=recipe, post=post, event_id=event_id)

    def on_generation_succeeded(self, job: JobView) -> None:
        """GenerationService's ``on_succeeded`` hook: link a finished remix to its reuse event and count it on
        the source post. Idempotent per image (a resumed job may report success twice)."""
        if job.remixed_from_id is None:
            return
        with self.db.write() as s:
            self.db.serialize(s, f"studio:remix:{job.id}")
            if s.scalar(select(PromptReuseEvent.id).where(PromptReuseEvent.new_image_id == job.id)) is not None:
                return
            source_owner = s.scalar(select(G.owner_id).where(G.id == job.remixed_from_id))
            if source_owner is None:
                return
            post_id = s.scalar(select(P.id).where(P.image_id == job.remixed_from_id))
            event = s.scalar(select(PromptReuseEvent)
                             .where(PromptReuseEvent.user_id == job.owner_id,
                                    PromptReuseEvent.source_image_id == job.remixed_from_id,
                                    PromptReuseEvent.new_image_id.is_(None))
                             .order_by(PromptReuseEvent.id.desc()).limit(1))
            if event is None:  # remixed without a recorded click (e.g. a retried remix): still lineage
                s.add(PromptReuseEvent(source_image_id=job.remixed_from_id, source_post_id=post_id,
                                       user_id=job.owner_id, new_image_id=job.id, created_at=self.clock()))
            else:
                event.new_image_id = job.id
            if post_id is not None and source_owner != job.owner_id:  # remixing yourself is not popularity
                s.execute(update(P).where(P.id == post_id).values(remix_count=P.remix_count + 1))

    def remix_origin(self, viewer_id: int, image_id: int) -> RemixOrigin | None:
        with self.db.read() as s:
            return remix_origins(s, viewer_id, [image_id]).get(image_id)

    # -- helpers -----------------------------------------------------------------------------------------------
    @staticmethod
    def _visible_post(s: Session, post_id: int):
        post = s.execute(select(P.author_id, P.status).where(P.id == post_id)).first()
        if post is None or post.status != "visible":
            raise PostNotFound("That post does not exist or is no longer shared.")
        return post


@functools.lru_cache(maxsize=64)
def _top_window_statement(days: int, by_category: bool, after: bool) -> Select:
    """The merged per-day statement, built once per shape and then only re-bound: building eight selects on
    every page view would cost more than running them."""
    day_of = func.date(P.created_at, type_=Date)
    branches = []
    for n in range(days):
        conditions = [P.status == "visible", day_of == bindparam(f"day_{n}", type_=Date)]
        if n == 0:
            conditions.append(P.created_at >= bindparam("cutoff", type_=UTCDateTime()))  # a partial first day
        if by_category:
            conditions.append(P.category_id == bindparam("category_id", type_=Integer))
        if after:
            conditions.append(tuple_(P.like_count, P.id) < tuple_(bindparam("after_likes", type_=Integer),
                                                                   bindparam("after_id", type_=Integer)))
        branch = (select(P.id, P.like_count).where(*conditions).order_by(P.like_count.desc(), P.id.desc())
                  .limit(bindparam("page_limit", type_=Integer)))
        branches.append(select(branch.subquery()))
    merged = union_all(*branches).subquery()
    return (select(merged.c.id, merged.c.like_count).order_by(merged.c.like_count.desc(), merged.c.id.desc())
            .limit(bindparam("page_limit", type_=Integer)))


@functools.cache
def _remix_origins_statement() -> Select:
    # built once: aliases and a select cost more to build than the statement takes to run (a grid asks every run)
    src, author = aliased(G), aliased(User)
    return (select(src.id, src.owner_id, src.deleted_at, P.id.label("post_id"), P.status, P.title,
                   author.display_name)
            .select_from(src).outerjoin(P, P.image_id == src.id).outerjoin(author, author.id == P.author_id)
            .where(src.id.in_(bindparam("ids", expanding=True))))


def remix_origins(s: Session, viewer_id: int, image_ids: Iterable[int]) -> dict[int, RemixOrigin]:
    """What the viewer may know about the sources of some remixes: a shared post, their own image, or nothing."""
    ids = sorted(set(image_ids))
    if not ids:
        return {}
    rows = s.execute(_remix_origins_statement(), {"ids": ids}).all()
    out = {}
    for r in rows:
        shared = r.post_id is not None and r.status == "visible" and r.deleted_at is None
        own = r.owner_id == viewer_id and r.deleted_at is None
        out[r.id] = RemixOrigin(image_id=r.id, post_id=r.post_id if shared or (own and r.post_id) else None,
                                title=r.title if shared or own else None,
                                author_name=r.display_name if shared or own else None, own_image=own)
    return out


__all__ = ["AlreadyReported", "CommunityError", "CommunityService", "FeedQuery", "PostNotFound", "PostView",
           "REASON_LABELS", "RemixOrigin", "RemixStart", "ReportResult", "SORTS", "STATUS_LABELS", "WINDOWS"]
