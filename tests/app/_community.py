"""Helpers for the My Creations / Community / Moderation / Catalog AppTests: a second Studio object on the same
data directory (what another replica would be) makes images synchronously and acts as other users."""

from __future__ import annotations

from studio_core.bootstrap import Studio, build_studio
from studio_core.config import load_settings
from studio_core.services.accounts import UserView
from studio_core.services.generation import GenerateRequest, JobView, new_request_key

PASSWORD = "Correct-Horse-42"


def backend() -> Studio:
    """Reads the same STUDIO_* environment as the app under test (see the app_env fixture). Jobs run in the
    test's own thread (``image``), never in a worker pool as well."""
    studio = build_studio(load_settings(), start_workers=False)
    studio.generation.dispatch = None
    return studio


def user(studio: Studio, email: str, name: str | None = None) -> UserView:
    found = studio.accounts.by_email(email)
    return found or studio.accounts.sign_up(email, name or email.split("@")[0].title(), PASSWORD)


def image(studio: Studio, who: UserView, prompt: str, *, canceled: bool = False,
          remixed_from: int | None = None) -> JobView:
    """A finished image made through the real service (offline renderer), or a canceled one (never charged)."""
    studio.ledger.ensure_monthly_allowance(who.id)
    job = studio.generation.submit(who.id, GenerateRequest(prompt=prompt, tier="standard",
                                                           remixed_from_id=remixed_from), new_request_key())
    if canceled:
        studio.generation.cancel(who.id, job.id)  # ends it unpaid with a reason, as a failure would
    else:
        studio.generation.run_job(job.id)
    return studio.generation.get(who.id, job.id)


def published(studio: Studio, who: UserView, title: str, prompt: str | None = None) -> int:
    job = image(studio, who, prompt or f"{title.lower()}, soft light")
    return studio.community.publish(who.id, job.id, title).id


def image_alts(at) -> list[str]:
    """The alt text of every image on the page (every image must have one)."""
    return [img.alt for element in at.image for img in element.proto.imgs]


def first_admin(studio: Studio) -> UserView:
    from sqlalchemy import select

    from studio_core.models import User

    with studio.db.read() as s:
        admin_id = s.scalar(select(User.id).where(User.role == "admin").order_by(User.id).limit(1))
    return studio.accounts.get(admin_id)


def open_reports(studio: Studio) -> int:
    return studio.moderation.open_report_count(first_admin(studio))


def page_titles(at) -> set[str]:
    """The titles in the navigation this run built (AppTest keeps the registered pages)."""
    return {info["page_name"] for info in at._registered_pages.values()}


def events(studio: Studio, name: str) -> list[dict]:
    """The properties of every analytics event of that name (what the dashboard will count)."""
    from sqlalchemy import select

    from studio_core.models import AnalyticsEvent

    with studio.db.read() as s:
        return list(s.scalars(select(AnalyticsEvent.properties).where(AnalyticsEvent.name == name)
                              .order_by(AnalyticsEvent.id)))
