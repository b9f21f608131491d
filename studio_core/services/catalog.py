"""Categories and prompt templates: the starter catalog, what the studio reads, and the admins' editing.

The studio only ever sees active templates in active categories. Deactivating hides an item from creators but
never deletes it: images made from a template keep pointing at it (their recipes and the usage figures stay
whole). Every admin method checks the actor's role in the database, in the same transaction as the change.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from importlib import resources

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from studio_core.config import Settings
from studio_core.db import Database
from studio_core.models import (
    AnalyticsDailyGenerationSources,
    CommunityPost,
    GeneratedImage,
    ImageCategory,
    ImageTemplate,
    utcnow,
)
from studio_core.services.access import require_admin
from studio_core.services.accounts import UserView
from studio_core.services.kept import Kept

SUBJECT_SLOT = "{subject}"
_IN_FLIGHT = ("queued", "running")  # not in the generation rollup until they end


@dataclass(frozen=True)
class CategoryView:
    id: int
    slug: str
    name: str
    description: str
    active: bool
    sort_order: int = 0


@dataclass(frozen=True)
class TemplateView:
    id: int
    category_id: int
    title: str
    prompt_pattern: str
    negative_prompt: str
    style_notes: str
    default_tier: str
    active: bool
    example_image_id: int | None = None
    sort_order: int = 0
    use_count: int = 0

    def fill(self, subject: str) -> str:
        """The pattern with the subject in its slot."""
        return fill_pattern(self.prompt_pattern, subject)


def _category(c: ImageCategory) -> CategoryView:
    return CategoryView(c.id, c.slug, c.name, c.description, c.active, sort_order=c.sort_order)


def _template(t: ImageTemplate) -> TemplateView:
    return TemplateView(t.id, t.category_id, t.title, t.prompt_pattern, t.negative_prompt, t.style_notes,
                        t.default_tier, t.active, example_image_id=t.example_image_id, sort_order=t.sort_order,
                        use_count=t.use_count)


def fill_pattern(pattern: str, subject: str) -> str:
    """What a pattern gives for a subject: the studio and the catalog's live preview both use this.
    (str.replace, not str.format: a subject or pattern may contain other braces.)"""
    return pattern.replace(SUBJECT_SLOT, subject.strip() or "your subject")


@dataclass(frozen=True)
class TemplateUsage:
    generations: int = 0
    succeeded: int = 0
    failed: int = 0
    publishes: int = 0
    likes: int = 0

    @property
    def success_rate(self) -> float | None:
        """Succeeded out of finished (canceled jobs are the user's choice, not a failure); None before any."""
        finished = self.succeeded + self.failed
        return self.succeeded / finished if finished else None


@dataclass(frozen=True)
class UsageReport:
    """Every template's usage as of a moment (a template never used has none)."""

    as_of: datetime
    by_template: Mapping[int, TemplateUsage]

    def of(self, template_id: int) -> TemplateUsage:
        return self.by_template.get(template_id, TemplateUsage())


@dataclass(frozen=True)
class ExampleCandidate:
    image_id: int
    prompt: str
    image_key: str | None


def _one_line(text: str) -> str:
    return " ".join((text or "").split())


def slugify(name: str) -> str:
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-")[:60] or "category"


class CatalogError(ValueError):
    """An edit the catalog refuses; ``str(err)`` is for the admin."""


def starter_catalog() -> dict:
    return json.loads(resources.files("studio_core.seed").joinpath("starter_catalog.json").read_text())


class CatalogService:
    def __init__(self, db: Database, settings: Settings, *, clock: Callable[[], datetime] = utcnow) -> None:
        self.db = db
        self.settings = settings
        self.clock = clock
        self._usage: Kept[None, UsageReport] = Kept(settings.analytics_cache_s, size=1)  # see template_usage()

    def ensure_starter_catalog(self) -> int:
        """Give an empty catalog its starter categories and templates; returns how many templates were
        added (0 when any category already exists, so an admin's edits are never overwritten)."""
        with self.db.write() as s:
            if s.scalar(select(func.count()).select_from(ImageCategory)):
                return 0
            added = 0
            for ci, cat in enumerate(starter_catalog()["categories"]):
                category = ImageCategory(slug=cat["slug"], name=cat["name"], description=cat["description"],
                                         sort_order=ci)
                s.add(category)
                s.flush()
                for ti, t in enumerate(cat["templates"]):
                    tier = t["default_tier"] if t["default_tier"] in self.settings.tiers \
                        else self.settings.default_tier
                    s.add(ImageTemplate(category_id=category.id, title=t["title"],
                                        prompt_pattern=t["prompt_pattern"],
                                        negative_prompt=t["negative_prompt"], style_notes=t["style_notes"],
                                        default_tier=tier, sort_order=ti))
                    added += 1
            return added

    def categories(self, *, include_inactive: bool = False) -> list[CategoryView]:
        q = select(ImageCategory).order_by(ImageCategory.sort_order, ImageCategory.id)
        if not include_inactive:
            q = q.where(ImageCategory.active.is_(True))
        with self.db.read() as s:
            return [_category(c) for c in s.scalars(q)]

    def templates(self, category_id: int | None = None, *, include_inactive: bool = False
                  ) -> list[TemplateView]:
        q = (select(ImageTemplate).join(ImageCategory)
             .order_by(ImageCategory.sort_order, ImageTemplate.sort_order, ImageTemplate.id))
        if category_id is not None:
            q = q.where(ImageTemplate.category_id == category_id)
        if not include_inactive:
            q = q.where(ImageTemplate.active.is_(True), ImageCategory.active.is_(True))
        with self.db.read() as s:
            return [_template(t) for t in s.scalars(q)]

    # -- admin: categories ------------------------------------------------------------------------------------
    def create_category(self, actor: UserView, name: str, description: str = "") -> CategoryView:
        name, description = self._category_fields(name, description)
        with self.db.write() as s:
            require_admin(s, actor, "edit the catalog")
            slug, n = slugify(name), 1
            while s.scalar(select(ImageCategory.id).where(ImageCategory.slug == (candidate := (
                    slug if n == 1 else f"{slug}-{n}")))) is not None:
                n += 1
            last = s.scalar(select(func.max(ImageCategory.sort_order)))
            row = ImageCategory(name=name, slug=candidate, description=description,
                                sort_order=(last if last is not None else -1) + 1)
            s.add(row)
            s.flush()
            return _category(row)

    def update_category(self, actor: UserView, category_id: int, name: str, description: str = ""
                        ) -> CategoryView:
        name, description = self._category_fields(name, description)
        with self.db.write() as s:
            require_admin(s, actor, "edit the catalog")
            row = self._get(s, ImageCategory, category_id)
            row.name, row.description = name, description  # the slug stays: it may be in links
            s.flush()
            return _category(row)

    def set_category_active(self, actor: UserView, category_id: int, active: bool) -> CategoryView:
        with self.db.write() as s:
            require_admin(s, actor, "edit the catalog")
            row = self._get(s, ImageCategory, category_id)
            row.active = bool(active)
            s.flush()
            return _category(row)

    def move_category(self, actor: UserView, category_id: int, offset: int) -> None:
        """Move a category up (offset -1) or down (+1) in the order the studio lists them."""
        with self.db.write() as s:
            require_admin(s, actor, "edit the catalog")
            rows = list(s.scalars(select(ImageCategory).order_by(ImageCategory.sort_order, ImageCategory.id)))
            self._reorder(rows, category_id, offset)

    @staticmethod
    def _category_fields(name: str, description: str) -> tuple[str, str]:
        name = _one_line(name)
        if not name or len(name) > 80:
            raise CatalogError("A category needs a name of at most 80 characters.")
        description = (description or "").strip()
        if len(description) > 500:
            raise CatalogError("Keep the description under 500 characters.")
        return name, description

    # -- admin: templates -------------------------------------------------------------------------------------
    def create_template(self, actor: UserView, *, category_id: int, title: str, prompt_pattern: str,
                        negative_prompt: str = "", style_notes: str = "", default_tier: str | None = None,
                        example_image_id: int | None = None) -> TemplateView:
        """A new active template, last in its category (the catalog screen, and the Prompt Lab saving a
        winning prompt, come here)."""
        fields = self._template_fields(title, prompt_pattern, negative_prompt, style_notes, default_tier)
        with self.db.write() as s:
            require_admin(s, actor, "add templates")
            self._check_refs(s, actor, category_id, example_image_id)
            last = s.scalar(select(func.max(ImageTemplate.sort_order))
                            .where(ImageTemplate.category_id == category_id))
            row = ImageTemplate(category_id=category_id, example_image_id=example_image_id,
                                sort_order=(last if last is not None else -1) + 1, **fields)
            s.add(row)
            s.flush()
            return _template(row)

    def update_template(self, actor: UserView, template_id: int, *, category_id: int, title: str,
                        prompt_pattern: str, negative_prompt: str = "", style_notes: str = "",
                        default_tier: str | None = None, example_image_id: int | None = None) -> TemplateView:
        fields = self._template_fields(title, prompt_pattern, negative_prompt, style_notes, default_tier)
        with self.db.write() as s:
            require_admin(s, actor, "edit templates")
            row = self._get(s, ImageTemplate, template_id)
            self._check_refs(s, actor, category_id, example_image_id,
                             keep_example=row.example_image_id)
            if row.category_id != category_id:  # moved: last in its new category
                last = s.scalar(select(func.max(ImageTemplate.sort_order))
                                .where(ImageTemplate.category_id == category_id))
                row.sort_order = (last if last is not None else -1) + 1
            row.category_id, row.example_image_id = category_id, example_image_id
            for key, value in fields.items():
                setattr(row, key, value)
            s.flush()
            return _template(row)

    def set_template_active(self, actor: UserView, template_id: int, active: bool) -> TemplateView:
        with self.db.write() as s:
            require_admin(s, actor, "edit templates")
            row = self._get(s, ImageTemplate, template_id)
            row.active = bool(active)
            s.flush()
            return _template(row)

    def move_template(self, actor: UserView, template_id: int, offset: int) -> None:
        """Move a template up (-1) or down (+1) within its category."""
        with self.db.write() as s:
            require_admin(s, actor, "edit templates")
            row = self._get(s, ImageTemplate, template_id)
            rows = list(s.scalars(select(ImageTemplate).where(ImageTemplate.category_id == row.category_id)
                                  .order_by(ImageTemplate.sort_order, ImageTemplate.id)))
            self._reorder(rows, template_id, offset)

    def template_usage(self, actor: UserView, *, fresh: bool = False) -> UsageReport:
        """Per template: images generated from it, how many succeeded / failed, how many were published and
        the likes those posts got.

        Added up at most every ``analytics_cache_s`` seconds and shared by every admin of this process, as the
        analytics dashboard is (``as_of`` says when; ``fresh`` adds up again now): on a year of history that is
        several milliseconds, which every click on the catalog would otherwise pay again for the same figures.
        The role is checked on every call.

        Ended generations come from the daily rollup the generation service keeps as each job ends
        (``analytics_daily_generation_sources``: days x templates x statuses rows, however many images there
        are), the few still queued or running from their index; posts are counted from the posts alone, by the
        template each post copied from its image when it was made (looking up every post's image took several
        times as long)."""
        with self.db.read() as s:
            require_admin(s, actor, "see template usage")
            return self._usage.get(None, self.clock(),
                                   lambda now: UsageReport(as_of=now, by_template=self._add_up_usage(s)), fresh=fresh)

    @staticmethod
    def _add_up_usage(s: Session) -> dict[int, TemplateUsage]:
        G, P, R = GeneratedImage, CommunityPost, AnalyticsDailyGenerationSources
        counts: dict[int, list[int]] = {}  # template -> [generations, succeeded, failed]
        ended = s.execute(select(R.template_id, func.sum(R.n),
                                 func.sum(case((R.status == "succeeded", R.n), else_=0)),
                                 func.sum(case((R.status == "failed", R.n), else_=0)))
                          .where(R.template_id != 0).group_by(R.template_id)).all()
        for tid, n, ok, bad in ended:
            counts[tid] = [int(n), int(ok or 0), int(bad or 0)]
        for tid, n in s.execute(select(G.template_id, func.count())
                                .where(G.status.in_(_IN_FLIGHT), G.template_id.is_not(None))
                                .group_by(G.template_id)):
            counts.setdefault(tid, [0, 0, 0])[0] += n
        posts = {r[0]: (r[1], r[2]) for r in s.execute(
            select(P.template_id, func.count(), func.coalesce(func.sum(P.like_count), 0))
            .where(P.status != "unpublished", P.template_id.is_not(None)).group_by(P.template_id))}
        return {tid: TemplateUsage(generations=n, succeeded=ok, failed=bad, publishes=posts.get(tid, (0, 0))[0],
                                   likes=int(posts.get(tid, (0, 0))[1]))
                for tid, (n, ok, bad) in counts.items()}

    def example_candidates(self, actor: UserView, limit: int = 30) -> list[ExampleCandidate]:
        """The admin's own finished images, newest first: what a template's example may be."""
        G = GeneratedImage
        with self.db.read() as s:
            require_admin(s, actor, "edit templates")
            rows = s.execute(select(G.id, G.final_prompt, G.image_key)
                             .where(G.owner_id == actor.id, G.status == "succeeded", G.deleted_at.is_(None))
                             .order_by(G.created_at.desc(), G.id.desc()).limit(limit)).all()
        return [ExampleCandidate(r.id, r.final_prompt, r.image_key) for r in rows]

    # -- helpers ----------------------------------------------------------------------------------------------
    def _template_fields(self, title: str, pattern: str, negative: str, notes: str, tier: str | None) -> dict:
        title, pattern, negative = _one_line(title), _one_line(pattern), _one_line(negative)
        limit = self.settings.prompt_max_chars
        if not title or len(title) > 120:
            raise CatalogError("A template needs a title of at most 120 characters.")
        if SUBJECT_SLOT not in pattern:
            raise CatalogError("The prompt pattern needs a {subject} slot, where the creator's subject goes.")
        if len(pattern) > limit or len(negative) > limit:
            raise CatalogError(f"Prompts are at most {limit} characters.")
        tier = tier or self.settings.default_tier
        if tier not in self.settings.tiers:
            raise CatalogError(f"Unknown quality tier {tier!r}.")
        return {"title": title, "prompt_pattern": pattern, "negative_prompt": negative,
                "style_notes": (notes or "").strip()[:500], "default_tier": tier}

    @staticmethod
    def _check_refs(s: Session, actor: UserView, category_id: int, example_image_id: int | None,
                    keep_example: int | None = None) -> None:
        if s.get(ImageCategory, category_id) is None:
            raise CatalogError("That category does not exist.")
        if example_image_id is None or example_image_id == keep_example:
            return
        image = s.execute(select(GeneratedImage.owner_id, GeneratedImage.status, GeneratedImage.deleted_at)
                          .where(GeneratedImage.id == example_image_id)).first()
        if image is None or image.owner_id != actor.id or image.status != "succeeded" or image.deleted_at:
            raise CatalogError("The example must be one of your own finished images.")

    @staticmethod
    def _get(s: Session, model, row_id: int):
        row = s.get(model, row_id)
        if row is None:
            raise CatalogError("That item no longer exists.")
        return row

    @staticmethod
    def _reorder(rows: list, row_id: int, offset: int) -> None:
        """Move one row by ``offset`` places and renumber all of them 0..n-1 (gaps and ties disappear)."""
        index = next((i for i, r in enumerate(rows) if r.id == row_id), None)
        if index is None:
            raise CatalogError("That item no longer exists.")
        target = max(0, min(len(rows) - 1, index + offset))
        rows.insert(target, rows.pop(index))
        for position, row in enumerate(rows):
            row.sort_order = position
