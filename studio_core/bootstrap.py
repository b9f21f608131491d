"""Settings -> database + adapters + services: the one object the UI holds (``st.cache_resource``).

Adapters and the services that need them are built on first use, so a screen that never touches payments
never constructs a Stripe client, and a misconfigured provider fails at startup (``resolve_providers``)
rather than halfway through a page.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from studio_core.config import ProviderChoice, Settings, resolve_providers
from studio_core.db import Database
from studio_core.migrate import upgrade_to_head
from studio_core.services.accounts import AccountService

log = logging.getLogger(__name__)


@dataclass
class Studio:
    settings: Settings
    db: Database
    providers: dict[str, ProviderChoice] = field(default_factory=dict)

    @property
    def notices(self) -> list[str]:
        """Provider fallbacks the UI shows (development only; production refuses to start instead)."""
        return [c.notice for c in self.providers.values() if c.notice]

    # -- services ----------------------------------------------------------------------------------------
    @cached_property
    def accounts(self) -> AccountService:
        service = AccountService(self.db, self.settings)
        # a new account gets its credit account's first allowance, then any referral bonus
        service.after_signup += [self.ledger.on_signup, self.referrals.on_signup]
        return service

    @cached_property
    def referrals(self):
        from studio_core.services.referrals import ReferralService

        # the referrer is rewarded when the referred user's first generation succeeds (hook below)
        return ReferralService(self.db, self.settings, self.ledger, reward_referrer_at_signup=False)

    @cached_property
    def wallet(self):
        from studio_core.services.wallet import WalletService

        return WalletService(self.db, self.settings, self.ledger, self.payments)

    @cached_property
    def catalog(self):
        from studio_core.services.catalog import CatalogService

        return CatalogService(self.db, self.settings)

    @cached_property
    def ledger(self):
        from studio_core.services.ledger import LedgerService

        return LedgerService(self.db, self.settings)

    @cached_property
    def gallery(self):
        from studio_core.services.gallery import GalleryService

        return GalleryService(self.db, self.settings, self.store)

    @cached_property
    def community(self):
        from studio_core.services.community import CommunityService

        return CommunityService(self.db, self.settings, self.store)

    @cached_property
    def moderation(self):
        from studio_core.services.moderation import ModerationService

        return ModerationService(self.db, self.settings, self.store)

    @cached_property
    def prompts(self):
        from studio_core.services.prompts import PromptService

        return PromptService(self.enhancer, max_chars=self.settings.prompt_max_chars)

    @cached_property
    def generation(self):
        from studio_core.services.generation import GenerationService

        service = GenerationService(self.db, self.settings, self.ledger, self.generator, self.store,
                                    fallback=self.offline_generator)
        service.dispatch = lambda job_id: self.jobs.enqueue(job_id)
        # analytics: generation succeeded / failed events, recorded by the worker (never by Streamlit)
        service.on_succeeded = service.on_failed = self.analytics.track_generation
        # community: a finished remix is linked to its source and counted on the source post
        service.on_succeeded = _each(service.on_succeeded, self.community.on_generation_succeeded,
                                     lambda job: self.referrals.on_first_generation_succeeded(job.owner_id))
        return service

    @cached_property
    def analytics(self):
        from studio_core.services.analytics import AnalyticsService

        return AnalyticsService(self.db, self.settings)

    @cached_property
    def jobs(self):
        """The process's worker pool; starting it resumes jobs a previous process left unfinished."""
        from studio_core.services.jobs import JobRunner

        runner = JobRunner(self.generation, workers=self.settings.worker_threads,
                           maintenance_s=self.settings.job_maintenance_s)
        runner.resume_unfinished()
        return runner

    @cached_property
    def experiments(self):
        """The Prompt Lab; its driver thread keeps running experiments filling while no page watches."""
        from studio_core.services.experiments import ExperimentService

        return ExperimentService(self.db, self.settings, self.generation, self.prompts, self.ledger,
                                 wildcards_dir=self.settings.data_dir / "wildcards", driver_interval_s=1.0)

    @cached_property
    def payments(self):
        from studio_core.adapters.payments import build_payment_gateway

        return build_payment_gateway(self.settings, self.providers["payments"])

    # -- adapters ----------------------------------------------------------------------------------------
    @cached_property
    def enhancer(self):
        from studio_core.adapters import build_enhancer

        return build_enhancer(self.settings, self.providers["enhancer"])

    @cached_property
    def generator(self):
        from studio_core.adapters import build_generator

        return build_generator(self.settings, self.providers["generator"])

    @cached_property
    def offline_generator(self):
        """The offline renderer, kept beside a real generator so people can keep working through an outage."""
        from studio_core.adapters import build_generator
        from studio_core.config import ProviderChoice

        return build_generator(self.settings, ProviderChoice("generator", "local", True))

    @cached_property
    def store(self):
        from studio_core.adapters import build_store

        return build_store(self.settings, self.providers["storage"])


def _each(*hooks: Callable[[Any], None] | None) -> Callable[[Any], None]:
    """Several listeners in one hook slot: each runs, and one that fails does not stop the others."""
    listeners = [h for h in hooks if h is not None]

    def call(value: Any) -> None:
        for listener in listeners:
            try:
                listener(value)
            except Exception:  # noqa: BLE001 - a follow-up never fails the work that triggered it
                log.exception("hook %r failed", listener)

    return call


def build_studio(settings: Settings, *, migrate: bool = True, seed_catalog: bool = True,
                 start_workers: bool = False) -> Studio:
    """Check providers, reach the database, upgrade it to head, and give a fresh database its starter
    catalog. Raises ConfigError / DatabaseUnavailable with messages meant for the person starting the app."""
    providers = resolve_providers(settings)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    db = Database(settings.resolved_database_url, echo=settings.sql_echo)
    db.ping()
    if migrate:
        before, after = upgrade_to_head(db)
        if before != after:
            log.info("database upgraded from %s to %s", before or "empty", after)
    studio = Studio(settings=settings, db=db, providers=providers)
    if seed_catalog:
        studio.catalog.ensure_starter_catalog()
    if start_workers:  # the app: resume what a previous process left unfinished
        studio.jobs  # noqa: B018 - building the pool starts it
    return studio
