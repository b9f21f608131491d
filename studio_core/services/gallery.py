"""My Creations: one user's images (finished, failed and in progress), their search, filters and deletion.

Listing is keyset-paginated on ``ix_generated_images_owner_created`` (owner, created_at, id), newest or oldest
first; prompt search goes through the full-text index (``fulltext.image_match``). Deleting is a soft delete:
the row keeps the recipe and the ledger keeps every entry that mentions it, but the picture itself is removed
from storage, a shared post of it is taken down and it stops being any template's example.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import exists, func, select, tuple_, update
from sqlalchemy.orm import Session

from studio_core.config import Settings
from studio_core.db import Database
from studio_core.models import JOB_STATUSES, CommunityPost, GeneratedImage, ImageTemplate, utcnow
from studio_core.ports import ImageStore, ProviderError
from studio_core.services import fulltext
from studio_core.services.community import STATUS_LABELS, RemixOrigin, remix_origins
from studio_core.services.generation import ACTIVE, JobView, _view, _with_template
from studio_core.services.paging import Page, decode_cursor, encode_cursor, page_of

log = logging.getLogger(__name__)

PAGE_SIZE = 12  # full rows of the grid at 2, 3, 4 or 6 cards a row
MAX_PAGE_SIZE = 100
SORTS = {"newest": "Newest first", "oldest": "Oldest first"}
STATUS_FILTERS = {"succeeded": "Finished", "failed": "Failed", "canceled": "Canceled", "active": "In progress"}

G = GeneratedImage
P = CommunityPost


class GalleryError(Exception):
    """A request about the user's images was refused; ``str(err)`` is for the user."""


class ImageNotFound(GalleryError, LookupError):
    pass


@dataclass(frozen=True)
class GalleryFilter:
    text: str = ""
    statuses: tuple[str, ...] = ()  # from STATUS_FILTERS; empty = all
    tier: str | None = None
    template_id: int | None = None
    date_from: date | None = None  # inclusive UTC calendar days
    date_to: date | None = None
    published: bool | None = None  # None = either
    sort: str = "newest"


@dataclass(frozen=True)
class PostBadge:
    post_id: int
    title: str
    status: str
    like_count: int
    remix_count: int
    category_id: int | None = None

    @property
    def status_label(self) -> str:
        return STATUS_LABELS.get(self.status, self.status)


@dataclass(frozen=True)
class GalleryItem:
    job: JobView
    post: PostBadge | None  # None: never shared; a post with status "unpublished" was taken down
    remixed_from: RemixOrigin | None = None

    @property
    def is_published(self) -> bool:
        return self.post is not None and self.post.status != "unpublished"


def day_bounds(day_from: date | None, day_to: date | None) -> tuple[datetime | None, datetime | None]:
    """Inclusive UTC calendar days -> a [start, end) range of instants."""
    start = datetime.combine(day_from, time.min, tzinfo=UTC) if day_from else None
    end = datetime.combine(day_to + timedelta(days=1), time.min, tzinfo=UTC) if day_to else None
    return start, end


class GalleryService:
    def __init__(self, db: Database, settings: Settings, store: ImageStore, *,
                 clock: Callable[[], datetime] = utcnow) -> None:
        self.db = db
        self.settings = settings
        self.store = store
        self.clock = clock

    # -- listing -----------------------------------------------------------------------------------------------
    def list(self, user_id: int, filters: GalleryFilter = GalleryFilter(), cursor: str | None = None,
             limit: int = PAGE_SIZE) -> Page[GalleryItem]:
        if filters.sort not in SORTS:
            raise GalleryError(f"Unknown sort {filters.sort!r}.")
        if filters.date_from and filters.date_to and filters.date_from > filters.date_to:
            raise GalleryError("The start date is after the end date.")
        limit = max(1, min(limit, MAX_PAGE_SIZE))
        stmt = _with_template().where(G.owner_id == user_id, G.deleted_at.is_(None))
        if filters.text.strip():
            match = fulltext.image_match(self.db, filters.text, user_id)
            if match is None:  # nothing but punctuation: matches nothing (never "everything")
                return Page([], None)
            stmt = stmt.where(G.id.in_(select(match.key).select_from(match.index).where(match.condition)))
        if filters.statuses:
            unknown = set(filters.statuses) - set(STATUS_FILTERS)
            if unknown:
                raise GalleryError(f"Unknown status filter {sorted(unknown)}.")
            wanted = {s for s in filters.statuses if s in JOB_STATUSES}
            if "active" in filters.statuses:
                wanted |= set(ACTIVE)
            stmt = stmt.where(G.status.in_(sorted(wanted)))
        if filters.tier:
            stmt = stmt.where(G.tier == filters.tier)
        if filters.template_id is not None:
            stmt = stmt.where(G.template_id == filters.template_id)
        start, end = day_bounds(filters.date_from, filters.date_to)
        if start:
            stmt = stmt.where(G.created_at >= start)
        if end:
            stmt = stmt.where(G.created_at < end)
        if filters.published is not None:
            shared = exists().where(P.image_id == G.id, P.status != "unpublished")
            stmt = stmt.where(shared if filters.published else ~shared)
        keys, after = tuple_(G.created_at, G.id), decode_cursor(cursor, filters.sort, (datetime, int))
        if filters.sort == "newest":
            stmt = stmt.where(keys < after) if after else stmt
            stmt = stmt.order_by(G.created_at.desc(), G.id.desc())
        else:
            stmt = stmt.where(keys > after) if after else stmt
            stmt = stmt.order_by(G.created_at.asc(), G.id.asc())
        with self.db.read() as s:
            rows = s.execute(stmt.limit(limit + 1)).all()
            page, nxt = page_of(rows, limit, lambda r: encode_cursor(filters.sort, r[0].created_at, r[0].id))
            jobs = [_view(*r) for r in page]
            items = self._items(s, user_id, jobs)
        return Page(items, nxt)

    def get(self, user_id: int, image_id: int) -> GalleryItem:
        """One of the user's own images; anyone else's (or a deleted one) is not found."""
        with self.db.read() as s:
            row = s.execute(_with_template().where(G.id == image_id, G.owner_id == user_id,
                                                   G.deleted_at.is_(None))).first()
            if row is None:
                raise ImageNotFound("That image does not exist or is not yours.")
            return self._items(s, user_id, [_view(*row)])[0]

    def count(self, user_id: int) -> int:
        with self.db.read() as s:
            return s.scalar(select(func.count()).select_from(G)
                            .where(G.owner_id == user_id, G.deleted_at.is_(None)))

    def _items(self, s: Session, user_id: int, jobs: list[JobView]) -> list[GalleryItem]:
        ids = [j.id for j in jobs]
        posts = {r.image_id: PostBadge(r.id, r.title, r.status, r.like_count, r.remix_count, r.category_id)
                 for r in s.execute(
            select(P.id, P.image_id, P.title, P.status, P.like_count, P.remix_count, P.category_id)
            .where(P.image_id.in_(ids), P.author_id == user_id))} if ids else {}
        origins = remix_origins(s, user_id, [j.remixed_from_id for j in jobs if j.remixed_from_id])
        return [GalleryItem(job=j, post=posts.get(j.id),
                            remixed_from=origins.get(j.remixed_from_id) if j.remixed_from_id else None)
                for j in jobs]

    # -- files -------------------------------------------------------------------------------------------------
    def thumbnail_url(self, item: GalleryItem) -> str | None:
        return self.store.thumbnail_url(item.job.image_key) if item.job.image_key else None

    def image_url(self, item: GalleryItem) -> str | None:
        return self.store.url(item.job.image_key) if item.job.image_key else None

    def image_bytes(self, user_id: int, image_id: int) -> bytes:
        item = self.get(user_id, image_id)
        if item.job.status != "succeeded" or not item.job.image_key:
            raise ImageNotFound("This image has no file.")
        return self.store.read(item.job.image_key)

    # -- deleting ----------------------------------------------------------------------------------------------
    def delete(self, user_id: int, image_id: int) -> None:
        """Soft-delete one of the user's images and remove its file. Credits are untouched: a charge stays a
        charge, and the ledger entries keep pointing at the (deleted) row."""
        with self.db.write() as s:
            row = s.execute(select(G.status, G.image_key).where(G.id == image_id, G.owner_id == user_id,
                                                                G.deleted_at.is_(None))).first()
            if row is None:
                raise ImageNotFound("That image does not exist or is not yours.")
            if row.status in ACTIVE:
                raise GalleryError("This image is still being generated. Cancel it in the Studio first.")
            s.execute(update(G).where(G.id == image_id).values(deleted_at=self.clock()))
            # A shared post comes down with it; one under moderation keeps its status for the audit trail.
            s.execute(update(P).where(P.image_id == image_id, P.status == "visible").values(status="unpublished"))
            s.execute(update(ImageTemplate).where(ImageTemplate.example_image_id == image_id)
                      .values(example_image_id=None))
            image_key = row.image_key
        if image_key:
            # After the commit: a failure here leaves an orphan file (logged), never a row without its file.
            try:
                self.store.delete(image_key)
            except ProviderError as exc:
                log.warning("image %s deleted but its file %s could not be removed: %s", image_id, image_key, exc)

