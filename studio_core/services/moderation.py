"""Moderation (admins only): the queue of reported posts, the four actions, and their history.

Every method checks the actor's role in the database first (``access.require_admin``). Every action writes a
``moderation_actions`` row with the admin's note, in the same transaction as the change it records.

Actions on a post and what they do to its open reports:
  hide     -> status hidden (out of the feed; its author still sees it), reports actioned
  restore  -> status visible, reports dismissed (the post was fine)
  remove   -> status removed (for good, unless restored later), reports actioned
  dismiss  -> status unchanged, reports dismissed (e.g. one unfounded report on a visible post)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import bindparam, func, select, tuple_, update
from sqlalchemy.orm import aliased

from studio_core.config import Settings
from studio_core.db import Database
from studio_core.models import (
    CommunityPost,
    GeneratedImage,
    ImageCategory,
    ModerationAction,
    PostReport,
    User,
    utcnow,
)
from studio_core.ports import ImageStore
from studio_core.services.access import require_admin
from studio_core.services.accounts import AccessDenied, UserView
from studio_core.services.community import STATUS_LABELS, CommunityError, PostNotFound
from studio_core.services.generation import clean_text
from studio_core.services.paging import Page, decode_cursor, encode_cursor, page_of

ACTIONS = {"hide": "Hide", "restore": "Restore", "remove": "Remove", "dismiss": "Dismiss reports"}
ACTION_LABELS = {**ACTIONS, "auto_hide": "Hidden automatically"}
# The count, or no row at all unless the actor is an enabled admin (require_admin's rule, in one statement).
_OPEN_REPORTS = (select(select(func.count()).select_from(PostReport).where(PostReport.status == "open")
                        .scalar_subquery().label("open_reports"))
                 .select_from(User).where(User.id == bindparam("p_actor"), User.role == "admin",
                                          User.disabled.is_(False)))
_NEW_STATUS = {"hide": "hidden", "restore": "visible", "remove": "removed", "dismiss": None}
_REPORTS_BECOME = {"hide": "actioned", "restore": "dismissed", "remove": "actioned", "dismiss": "dismissed"}
NOTE_MAX = 1000

P = CommunityPost
# The queue's posts and their open reports (``ids``: the page of the queue), as plain columns.
_author = aliased(User)
_QUEUE_POSTS = (select(P.id, P.title, P.status, P.created_at, _author.display_name.label("author_name"),
                       ImageCategory.name.label("category_name"), GeneratedImage.image_key,
                       GeneratedImage.thumbnail_key, GeneratedImage.final_prompt, GeneratedImage.deleted_at)
                .join(_author, _author.id == P.author_id).join(GeneratedImage, GeneratedImage.id == P.image_id)
                .outerjoin(ImageCategory, ImageCategory.id == P.category_id)
                .where(P.id.in_(bindparam("ids", expanding=True))))
_QUEUE_REPORTS = (select(PostReport.id, PostReport.post_id, PostReport.reason, PostReport.details,
                         PostReport.created_at, User.display_name)
                  .join(User, User.id == PostReport.reporter_id)
                  .where(PostReport.post_id.in_(bindparam("ids", expanding=True)), PostReport.status == "open")
                  .order_by(PostReport.created_at, PostReport.id))


class ModerationError(CommunityError):
    pass


@dataclass(frozen=True)
class ReportView:
    id: int
    reporter_name: str
    reason: str
    details: str
    created_at: datetime


@dataclass(frozen=True)
class QueueItem:
    post_id: int
    title: str
    author_name: str
    category_name: str | None
    status: str
    image_key: str | None
    thumbnail_key: str | None
    prompt: str
    created_at: datetime
    reports: list[ReportView]  # the open ones, oldest first

    @property
    def status_label(self) -> str:
        return STATUS_LABELS.get(self.status, self.status)

    @property
    def reason_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for r in self.reports:
            counts[r.reason] = counts.get(r.reason, 0) + 1
        return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


@dataclass(frozen=True)
class ActionView:
    id: int
    actor_name: str
    action: str
    post_id: int | None
    post_title: str | None
    target_name: str | None
    note: str
    created_at: datetime

    @property
    def label(self) -> str:
        return ACTION_LABELS.get(self.action, self.action)


@dataclass(frozen=True)
class ModerationQueue:
    items: list[QueueItem]  # the worst first, as many as asked for
    waiting_posts: int  # posts with an open report in all, however many ``items`` holds


class ModerationService:
    def __init__(self, db: Database, settings: Settings, store: ImageStore, *,
                 clock: Callable[[], datetime] = utcnow) -> None:
        self.db = db
        self.settings = settings
        self.store = store
        self.clock = clock

    def open_report_count(self, actor: UserView) -> int:
        """Open reports in all (one index range on (status, post_id)): every admin page's navigation shows it,
        so it is one prebuilt statement on a plain connection, the role checked in the same statement."""
        with self.db.connection() as conn:
            row = conn.execute(_OPEN_REPORTS, {"p_actor": actor.id}).first()
        if row is None:
            raise AccessDenied("Only admins can see reports.")
        return row.open_reports

    def queue(self, actor: UserView, *, limit: int = 50) -> ModerationQueue:
        """Posts with open reports, worst first (most open reports, then the longest waiting), and how many posts
        wait in all: counted over the groups before the limit (a window), so both come from one snapshot."""
        with self.db.read() as s:
            require_admin(s, actor, "see reports")
            grouped = s.execute(select(PostReport.post_id, func.count().label("n"),
                                       func.min(PostReport.created_at).label("first"),
                                       func.count().over().label("waiting"))
                                .where(PostReport.status == "open").group_by(PostReport.post_id)
                                .order_by(func.count().desc(), func.min(PostReport.created_at), PostReport.post_id)
                                .limit(limit)).all()
            ids = [g.post_id for g in grouped]
            if not ids:
                return ModerationQueue([], 0)
            # columns, not ORM objects: a queue page loads dozens of posts and their reports on every run
            posts = {r.id: r for r in s.execute(_QUEUE_POSTS, {"ids": ids})}
            reports: dict[int, list[ReportView]] = {i: [] for i in ids}
            for r in s.execute(_QUEUE_REPORTS, {"ids": ids}):
                reports[r.post_id].append(ReportView(r.id, r.display_name, r.reason, r.details, r.created_at))
        items = []
        for post_id in ids:
            post = posts[post_id]
            items.append(QueueItem(post_id=post.id, title=post.title, author_name=post.author_name,
                                   category_name=post.category_name, status=post.status,
                                   image_key=None if post.deleted_at else post.image_key,
                                   thumbnail_key=None if post.deleted_at else post.thumbnail_key,
                                   prompt=post.final_prompt, created_at=post.created_at, reports=reports[post_id]))
        return ModerationQueue(items, grouped[0].waiting)

    def thumbnail_url(self, item: QueueItem) -> str | None:
        return self.store.thumbnail_url(item.image_key) if item.image_key else None

    def act(self, actor: UserView, post_id: int, action: str, note: str) -> str:
        """Apply one action to a post and resolve its open reports; returns the post's status afterwards."""
        if action not in ACTIONS:
            raise ModerationError(f"Unknown action {action!r}.")
        note = clean_text(note)
        if not note:
            raise ModerationError("Write a short note: it is kept in the moderation history.")
        if len(note) > NOTE_MAX:
            raise ModerationError(f"Keep the note under {NOTE_MAX} characters.")
        now = self.clock()
        with self.db.write() as s:
            actor_id = require_admin(s, actor, "moderate posts")
            post = s.execute(select(P.status, P.author_id).where(P.id == post_id)).first()
            if post is None:
                raise PostNotFound("That post does not exist.")
            if action == "restore" and post.status == "unpublished":
                raise ModerationError("Its author unpublished this post; it cannot be restored for them.")
            new_status = _NEW_STATUS[action]
            values: dict = {"report_count": 0}  # report_count counts open reports; they are all resolved now
            if new_status is not None:
                values["status"] = new_status
            s.execute(update(PostReport).where(PostReport.post_id == post_id, PostReport.status == "open")
                      .values(status=_REPORTS_BECOME[action], resolved_by_id=actor_id, resolved_at=now))
            s.execute(update(P).where(P.id == post_id).values(**values))
            s.add(ModerationAction(actor_id=actor_id, action=action, post_id=post_id,
                                   target_user_id=post.author_id, note=note, created_at=now))
            return new_status or post.status

    def history(self, actor: UserView, cursor: str | None = None, limit: int = 50) -> Page[ActionView]:
        """Every moderation action, newest first."""
        actor_user, target = aliased(User), aliased(User)
        stmt = (select(ModerationAction, actor_user.display_name, target.display_name, P.title)
                .join(actor_user, actor_user.id == ModerationAction.actor_id)
                .outerjoin(target, target.id == ModerationAction.target_user_id)
                .outerjoin(P, P.id == ModerationAction.post_id))
        after = decode_cursor(cursor, "history", (datetime, int))
        if after:
            stmt = stmt.where(tuple_(ModerationAction.created_at, ModerationAction.id) < after)
        stmt = stmt.order_by(ModerationAction.created_at.desc(), ModerationAction.id.desc()).limit(limit + 1)
        with self.db.read() as s:
            require_admin(s, actor, "see the moderation history")
            rows = s.execute(stmt).all()
        page, nxt = page_of(rows, limit, lambda r: encode_cursor("history", r[0].created_at, r[0].id))
        return Page([ActionView(id=a.id, actor_name=actor_name, action=a.action, post_id=a.post_id,
                                post_title=title, target_name=target_name, note=a.note, created_at=a.created_at)
                     for a, actor_name, target_name, title in page], nxt)
