"""Role checks inside admin services, read from the database in the same transaction as the work.

Pages are only registered for admins, but a service must not trust that (or a stale UserView): a demoted or
disabled admin is refused at the next call.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from studio_core.models import User
from studio_core.services.accounts import AccessDenied, UserView


def require_admin(session: Session, actor: UserView, what: str = "do this") -> int:
    row = session.execute(select(User.role, User.disabled).where(User.id == actor.id)).first()
    if row is None or row.role != "admin" or row.disabled:
        raise AccessDenied(f"Only admins can {what}.")
    return actor.id
