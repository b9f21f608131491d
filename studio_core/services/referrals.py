"""Referrals: a new user who signed up with someone's code gets the signup bonus; the referrer gets the
referral bonus once the new user's first generation succeeds (or at sign-up, while the constructor flag
``reward_referrer_at_signup`` is set). Each bonus is booked at most once -- the ledger keys ``signup:<user>`` and
``referral:<referred user>`` and the unique referred user of ``referral_events`` see to that -- and nobody can
refer themselves.

Wiring (bootstrap): ``accounts.after_signup.append(referrals.on_signup)`` and, from the generation service's
success hook, ``referrals.on_first_generation_succeeded(owner_id)``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import false, func, select, update
from sqlalchemy.exc import IntegrityError

from studio_core.config import Settings
from studio_core.db import Database
from studio_core.models import CreditLedgerEntry, ReferralEvent, User, utcnow
from studio_core.services.ledger import LedgerService

log = logging.getLogger(__name__)
_events = ReferralEvent.__table__


@dataclass(frozen=True)
class ReferralOutcome:
    status: str  # recorded / rewarded / refused / none
    detail: str = ""
    signup_bonus: int = 0
    referrer_bonus: int = 0


@dataclass(frozen=True)
class ReferralSummary:
    code: str
    link: str
    joined: int  # people who signed up with the code
    rewarded: int  # of those, how many earned the referrer a bonus
    pending: int  # signed up, bonus not earned yet (no successful generation yet)
    credits_earned: int


class ReferralService:
    def __init__(self, db: Database, settings: Settings, ledger: LedgerService, *,
                 reward_referrer_at_signup: bool = True, clock: Callable[[], datetime] = utcnow) -> None:
        self.db = db
        self.settings = settings
        self.ledger = ledger
        # Until the generation service calls on_first_generation_succeeded, the referrer is rewarded at sign-up.
        self.reward_referrer_at_signup = reward_referrer_at_signup
        self.clock = clock

    def referrer_for_code(self, code: str | None) -> int | None:
        """The user a ``?ref=CODE`` link points at, or None for an empty or unknown code."""
        code = (code or "").strip().upper()
        if not code:
            return None
        with self.db.read() as s:
            return s.scalar(select(User.id).where(User.referral_code == code, User.disabled == false()))

    def on_signup(self, user_id: int, referrer_id: int | None) -> ReferralOutcome:
        """AccountService.after_signup hook. Never raises for a refused referral: the account exists already."""
        if referrer_id is None:
            return ReferralOutcome("none")
        if referrer_id == user_id:
            log.warning("self-referral refused for user %s", user_id)
            return ReferralOutcome("refused", "You cannot refer yourself.")
        now = self.clock()
        try:
            with self.db.write() as s:
                users = {u.id: u for u in s.scalars(select(User).where(User.id.in_((user_id, referrer_id))))}
                referred, referrer = users.get(user_id), users.get(referrer_id)
                if referred is None or referrer is None or referrer.disabled:
                    return ReferralOutcome("refused", "The referral code is not valid.")
                if referred.referred_by_id not in (None, referrer_id):
                    return ReferralOutcome("refused", "This account was referred by someone else.")
                referred.referred_by_id = referrer_id
                event = s.scalar(select(ReferralEvent).where(ReferralEvent.referred_id == user_id))
                if event is None:
                    event = ReferralEvent(referrer_id=referrer_id, referred_id=user_id, kind="signup",
                                          status="pending", created_at=now)
                    s.add(event)
                    s.flush()
                elif event.referrer_id != referrer_id:
                    return ReferralOutcome("refused", "This account was referred by someone else.")
                signup_bonus = 0
                if self.settings.signup_bonus > 0:
                    entry = self.ledger.grant_in(s, user_id=user_id, kind="signup_bonus",
                                                 amount=self.settings.signup_bonus, key=f"signup:{user_id}",
                                                 reference=f"referral:{event.id}",
                                                 memo="welcome bonus for joining through a referral")
                    event.signup_bonus_entry_id = entry.id
                    signup_bonus = entry.amount
        except IntegrityError:
            # A concurrent call recorded this referral first (unique referred user); its outcome stands.
            return ReferralOutcome("recorded", "The referral was already recorded.")
        if self.reward_referrer_at_signup:
            rewarded = self.on_first_generation_succeeded(user_id)
            return ReferralOutcome(rewarded.status, rewarded.detail, signup_bonus, rewarded.referrer_bonus)
        return ReferralOutcome("recorded", signup_bonus=signup_bonus)

    def on_first_generation_succeeded(self, user_id: int) -> ReferralOutcome:
        """Reward the referrer of ``user_id`` (once). Cheap and harmless to call after every success."""
        with self.db.read() as s:
            pending = s.scalar(select(ReferralEvent.id).where(ReferralEvent.referred_id == user_id,
                                                              ReferralEvent.status == "pending"))
        if pending is None:
            return ReferralOutcome("none")
        now = self.clock()
        with self.db.write() as s:
            # The event row is locked first, then the referrer's account (inside grant_in): two successes of
            # the same new user queue here and the second finds the bonus paid.
            event = s.scalar(select(ReferralEvent).where(ReferralEvent.id == pending)
                             .with_for_update(key_share=True))
            if event is None or event.status != "pending":
                return ReferralOutcome("none")
            referrer = s.get(User, event.referrer_id)
            if referrer is None or referrer.disabled:
                event.status = "refused"
                return ReferralOutcome("refused", "The referrer's account is disabled.")
            bonus = 0
            if self.settings.referral_bonus > 0:
                entry = self.ledger.grant_in(s, user_id=event.referrer_id, kind="referral_bonus",
                                             amount=self.settings.referral_bonus, key=f"referral:{user_id}",
                                             reference=f"referral:{event.id}",
                                             memo="a friend you invited made their first image")
                event.referrer_bonus_entry_id = entry.id
                bonus = entry.amount
            s.execute(update(_events).where(_events.c.id == event.id)
                      .values(status="rewarded", rewarded_at=now))
        return ReferralOutcome("rewarded", referrer_bonus=bonus)

    def summary(self, user_id: int) -> ReferralSummary:
        with self.db.read() as s:
            code = s.scalar(select(User.referral_code).where(User.id == user_id))
            if code is None:
                raise LookupError(f"There is no user {user_id}.")
            counts = dict(s.execute(select(ReferralEvent.status, func.count())
                                    .where(ReferralEvent.referrer_id == user_id)
                                    .group_by(ReferralEvent.status)).all())
            earned = s.scalar(select(func.coalesce(func.sum(CreditLedgerEntry.amount), 0))
                              .where(CreditLedgerEntry.user_id == user_id,
                                     CreditLedgerEntry.kind == "referral_bonus"))
        return ReferralSummary(code=code, link=f"{self.settings.app_url.rstrip('/')}/?ref={code}",
                               joined=sum(counts.values()), rewarded=counts.get("rewarded", 0),
                               pending=counts.get("pending", 0), credits_earned=int(earned or 0))
