"""Accounts: sign up, sign in (with throttling), OIDC matching, roles.

The first account ever created becomes the admin. Failed sign-ins are counted per email in the database, so
every replica enforces the same lockout. Messages never reveal whether an email exists.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import bindparam, func, select, tuple_, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from studio_core.config import Settings
from studio_core.db import Database
from studio_core.models import CreditAccount, LoginThrottle, User, utcnow
from studio_core.services.paging import Page, decode_cursor, encode_cursor, page_of

EMAIL_RE = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
                      r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$")
USERS_PAGE_SIZE = 15  # Admin · Users: a page of the table; the search finds anyone else
REFERRAL_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: codes get read aloud and typed
COMMON_PASSWORDS = {"password", "password1", "password123", "1234567890", "qwertyuiop", "letmein123",
                    "iloveyou12", "admin12345", "welcome123", "passw0rd12"}


class AccountError(ValueError):
    """A sign-up or sign-in was refused; ``str(err)`` is safe to show the user."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class AccessDenied(PermissionError):
    """The signed-in user may not do this (checked again in services, not only by hiding pages)."""


@dataclass(frozen=True)
class UserView:
    id: int
    email: str
    display_name: str
    role: str
    referral_code: str
    created_at: datetime
    disabled: bool = False

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


_USER_BY_ID = select(User.__table__).where(User.id == bindparam("p_user"))


def _view(user: User) -> UserView:
    return UserView(id=user.id, email=user.email, display_name=user.display_name, role=user.role,
                    referral_code=user.referral_code, created_at=user.created_at, disabled=user.disabled)


def normalise_email(email: str) -> str:
    return (email or "").strip().lower()


def validate_email(email: str) -> str:
    email = normalise_email(email)
    if not email:
        raise AccountError("Please enter your email address.", field="email")
    if len(email) > 254 or not EMAIL_RE.match(email):
        raise AccountError("That doesn't look like an email address (example: ada@example.com).", field="email")
    return email


def password_problem(password: str, *, min_length: int, email: str = "") -> str | None:
    """Why a password is too weak, or None. A floor, not a puzzle: length, variety, not common."""
    if len(password) < min_length:
        return f"Use at least {min_length} characters."
    if len(password) > 256:
        return "Use at most 256 characters."
    if password.lower() in COMMON_PASSWORDS or len(set(password)) < 5:
        return "That password is too easy to guess."
    classes = sum(bool(re.search(p, password)) for p in (r"[a-z]", r"[A-Z]", r"\d", r"[^A-Za-z0-9]"))
    if classes < 2:
        return "Mix at least two of: lower case, upper case, digits, symbols."
    local = email.split("@")[0]
    if local and len(local) >= 4 and local in password.lower():
        return "Don't use your email name in the password."
    return None


class AccountService:
    def __init__(self, db: Database, settings: Settings, *,
                 clock: Callable[[], datetime] = utcnow,
                 hasher: PasswordHasher | None = None) -> None:
        self.db = db
        self.settings = settings
        self.clock = clock
        self.hasher = hasher or PasswordHasher()
        # Called after a user is committed: (user_id, referrer_id or None). The referral/credit services
        # subscribe here so accounts stays ignorant of the ledger.
        self.after_signup: list[Callable[[int, int | None], None]] = []

    # -- sign up ---------------------------------------------------------------------------------------
    def sign_up(self, email: str, display_name: str, password: str, referral_code: str | None = None
                ) -> UserView:
        email = validate_email(email)
        display_name = " ".join((display_name or "").split())
        if not display_name:
            raise AccountError("Please choose a display name.", field="display_name")
        if len(display_name) > 80:
            raise AccountError("Display names are at most 80 characters.", field="display_name")
        problem = password_problem(password or "", min_length=self.settings.password_min_length, email=email)
        if problem:
            raise AccountError(f"Password too weak: {problem}", field="password")
        password_hash = self.hasher.hash(password)
        return self._create(email=email, display_name=display_name, password_hash=password_hash,
                            oidc_subject=None, referral_code=referral_code)

    def _create(self, *, email: str, display_name: str, password_hash: str | None, oidc_subject: str | None,
                referral_code: str | None) -> UserView:
        code = (referral_code or "").strip().upper() or None
        try:
            with self.db.write() as s:
                # One sign-up at a time decides "is this the first account?" (SQLite: BEGIN IMMEDIATE
                # already; PostgreSQL: an advisory lock), so two first sign-ups never both become admin.
                self.db.serialize(s, "studio:sign-up")
                if s.scalar(select(User.id).where(User.email == email)) is not None:
                    raise AccountError("An account with this email already exists. Sign in instead.",
                                       field="email")
                referrer_id = None
                if code:
                    referrer_id = s.scalar(select(User.id).where(User.referral_code == code))
                    if referrer_id is None:
                        raise AccountError(f"The referral code {code!r} is not valid. Check it or leave it "
                                           "empty.", field="referral_code")
                is_first = s.scalar(select(func.count()).select_from(User)) == 0
                user = User(email=email, display_name=display_name, password_hash=password_hash,
                            oidc_subject=oidc_subject, role="admin" if is_first else "creator",
                            referral_code=self._unique_code(s), referred_by_id=referrer_id,
                            created_at=self.clock())
                s.add(user)
                s.flush()
                s.add(CreditAccount(user_id=user.id))
                s.flush()
                view = _view(user)
        except IntegrityError as exc:
            raise AccountError("An account with this email already exists. Sign in instead.",
                               field="email") from exc
        for hook in self.after_signup:
            hook(view.id, referrer_id)
        return view

    @staticmethod
    def _unique_code(s: Session) -> str:
        while True:
            code = "".join(secrets.choice(REFERRAL_ALPHABET) for _ in range(8))
            if s.scalar(select(User.id).where(User.referral_code == code)) is None:
                return code

    # -- sign in ---------------------------------------------------------------------------------------
    def sign_in(self, email: str, password: str) -> UserView:
        email = normalise_email(email)
        generic = AccountError("Wrong email or password.")
        now = self.clock()
        with self.db.read() as s:
            throttle = s.get(LoginThrottle, email)
            if throttle and throttle.locked_until and throttle.locked_until > now:
                wait = int((throttle.locked_until - now).total_seconds()) + 1
                raise AccountError(f"Too many failed sign-ins. Try again in {_human_seconds(wait)}.")
            user = s.scalar(select(User).where(User.email == email))
            view = _view(user) if user else None
            password_hash = user.password_hash if user else None
        if view is None or not password_hash:
            # Spend the same time as a real check so timing does not reveal which emails exist.
            self._dummy_verify(password)
            self._record_failure(email, now)
            raise generic
        try:
            self.hasher.verify(password_hash, password or "")
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            self._record_failure(email, now)
            raise generic from None
        if view.disabled:
            raise AccountError("This account is disabled. Contact an admin.")
        with self.db.write() as s:
            s.execute(update(User).where(User.id == view.id).values(last_login_at=now))
            if self.hasher.check_needs_rehash(password_hash):
                s.execute(update(User).where(User.id == view.id)
                          .values(password_hash=self.hasher.hash(password)))
            throttle = s.get(LoginThrottle, email)
            if throttle is not None:
                s.delete(throttle)
        return view

    _dummy_hash: str | None = None

    def _dummy_verify(self, password: str) -> None:
        if AccountService._dummy_hash is None:
            AccountService._dummy_hash = self.hasher.hash("not-a-real-password")
        try:
            self.hasher.verify(AccountService._dummy_hash, password or "x")
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            pass

    def _record_failure(self, email: str, now: datetime) -> None:
        if not email:
            return
        window = timedelta(seconds=self.settings.login_lockout_s)
        with self.db.write() as s:
            t = s.get(LoginThrottle, email)
            if t is None:
                t = LoginThrottle(email=email, failures=0, first_failure_at=now)
                s.add(t)
            if t.first_failure_at is None or now - t.first_failure_at > window:
                t.failures, t.first_failure_at = 0, now
            t.failures += 1
            if t.failures >= self.settings.login_max_failures:
                t.locked_until = now + window
                t.failures, t.first_failure_at = 0, None

    # -- OIDC ------------------------------------------------------------------------------------------
    def sign_in_oidc(self, *, subject: str, email: str | None, email_verified: bool, name: str | None
                     ) -> UserView:
        """Match by OIDC subject, else by verified email; otherwise create the account."""
        if not subject:
            raise AccountError("The identity provider did not return a subject.")
        with self.db.read() as s:
            user = s.scalar(select(User).where(User.oidc_subject == subject))
            view = _view(user) if user else None
        if view is None:
            if not email or not email_verified:
                raise AccountError("Your identity provider did not confirm a verified email address.")
            email = validate_email(email)
            with self.db.write() as s:
                user = s.scalar(select(User).where(User.email == email))
                if user is not None:
                    user.oidc_subject = subject
                    view = _view(user)
            if view is None:
                return self._create(email=email, display_name=(name or email.split("@")[0])[:80],
                                    password_hash=None, oidc_subject=subject, referral_code=None)
        if view.disabled:
            raise AccountError("This account is disabled. Contact an admin.")
        return view

    # -- lookups and admin -----------------------------------------------------------------------------
    def get(self, user_id: int) -> UserView | None:
        with self.db.connection() as conn:  # the shell reads the signed-in user on every run
            user = conn.execute(_USER_BY_ID, {"p_user": user_id}).first()
        return _view(user) if user else None

    def active_user(self, user_id: int) -> UserView | None:
        """The user for a session, or None if the account is gone or disabled (forces sign-out)."""
        user = self.get(user_id)
        return user if user and not user.disabled else None

    def by_email(self, email: str) -> UserView | None:
        with self.db.read() as s:
            user = s.scalar(select(User).where(User.email == normalise_email(email)))
            return _view(user) if user else None

    def by_referral_code(self, code: str) -> UserView | None:
        with self.db.read() as s:
            user = s.scalar(select(User).where(User.referral_code == (code or "").strip().upper()))
            return _view(user) if user else None

    def count(self) -> int:
        with self.db.read() as s:
            return s.scalar(select(func.count()).select_from(User)) or 0

    def create_admin(self, email: str, display_name: str, password: str) -> UserView:
        """CLI: create an admin account, or promote an existing account to admin (password unused then)."""
        email = validate_email(email)
        with self.db.write() as s:
            user = s.scalar(select(User).where(User.email == email))
            if user is not None:
                user.role = "admin"
                return _view(user)
        view = self.sign_up(email, display_name, password)
        self.set_role(view.id, "admin")
        return self.get(view.id)  # type: ignore[return-value]

    def set_role(self, user_id: int, role: str) -> None:
        if role not in ("creator", "admin"):
            raise AccountError(f"Unknown role {role!r}.")
        with self.db.write() as s:
            s.execute(update(User).where(User.id == user_id).values(role=role))

    def users_page(self, actor: UserView, *, query: str = "", cursor: str | None = None,
                   limit: int = USERS_PAGE_SIZE) -> Page[UserView]:
        """One page of the accounts matching ``query``, newest first; ``next_cursor`` leads to the next one."""
        if not actor.is_admin:
            raise AccessDenied("Only admins can list users.")
        limit = max(1, min(limit, 200))
        q = _users_matching(query)
        after = decode_cursor(cursor, "users", (datetime, int))
        if after:
            q = q.where(tuple_(User.created_at, User.id) < after)
        with self.db.read() as s:
            rows = list(s.scalars(q.order_by(User.created_at.desc(), User.id.desc()).limit(limit + 1)))
        page, nxt = page_of(rows, limit, lambda u: encode_cursor("users", u.created_at, u.id))
        return Page([_view(u) for u in page], nxt)

    def change_role(self, actor: UserView, user_id: int, role: str) -> None:
        if not actor.is_admin:
            raise AccessDenied("Only admins can change roles.")
        if actor.id == user_id:
            raise AccountError("You cannot change your own role.")
        self.set_role(user_id, role)

    def set_disabled(self, actor: UserView, user_id: int, disabled: bool) -> None:
        if not actor.is_admin:
            raise AccessDenied("Only admins can disable accounts.")
        if actor.id == user_id:
            raise AccountError("You cannot disable your own account.")
        with self.db.write() as s:
            s.execute(update(User).where(User.id == user_id).values(disabled=disabled))


def _users_matching(query: str):
    """Accounts whose email or display name contains ``query`` (case-insensitive, wildcards literal)."""
    q = select(User)
    term = query.strip().lower()
    if term:
        like = "%" + term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        q = q.where(func.lower(User.email).like(like, escape="\\")
                    | func.lower(User.display_name).like(like, escape="\\"))
    return q


def _human_seconds(seconds: int) -> str:
    if seconds < 60:
        return f"{seconds} seconds"
    minutes = (seconds + 59) // 60
    return f"{minutes} minute{'s' if minutes != 1 else ''}"
