"""Categories and prompt templates: the starter catalog and what the studio reads.

Admin editing (create, reorder, activate) arrives with the catalog screen; this module is its one home.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources

from sqlalchemy import func, select

from studio_core.config import Settings
from studio_core.db import Database
from studio_core.models import ImageCategory, ImageTemplate

SUBJECT_SLOT = "{subject}"


@dataclass(frozen=True)
class CategoryView:
    id: int
    slug: str
    name: str
    description: str
    active: bool


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

    def fill(self, subject: str) -> str:
        """The pattern with the subject in its slot (str.replace: a subject may contain braces)."""
        return self.prompt_pattern.replace(SUBJECT_SLOT, subject.strip() or "your subject")


def _category(c: ImageCategory) -> CategoryView:
    return CategoryView(c.id, c.slug, c.name, c.description, c.active)


def _template(t: ImageTemplate) -> TemplateView:
    return TemplateView(t.id, t.category_id, t.title, t.prompt_pattern, t.negative_prompt, t.style_notes,
                        t.default_tier, t.active)


def starter_catalog() -> dict:
    return json.loads(resources.files("studio_core.seed").joinpath("starter_catalog.json").read_text())


class CatalogService:
    def __init__(self, db: Database, settings: Settings) -> None:
        self.db = db
        self.settings = settings

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
