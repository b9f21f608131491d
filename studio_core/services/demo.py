"""Demo data for trying the app: the starter catalog and a few accounts with a published password."""

from __future__ import annotations

from studio_core.bootstrap import Studio

DEMO_PASSWORD = "Demo-Studio-2026"
DEMO_USERS = (  # the admin first: on an empty database the first account becomes the admin anyway
    ("admin@demo.studio", "Demo Admin", "admin"),
    ("ada@demo.studio", "Ada Lovelace", "creator"),
    ("grace@demo.studio", "Grace Hopper", "creator"),
)


def seed_demo(studio: Studio) -> list[str]:
    """Idempotent: existing accounts and a non-empty catalog are left exactly as they are."""
    report = []
    added = studio.catalog.ensure_starter_catalog()
    report.append(f"Catalog: {added} starter templates added." if added else "Catalog: already present.")
    for email, name, role in DEMO_USERS:
        if studio.accounts.by_email(email) is not None:
            report.append(f"{email}: already exists.")
            continue
        user = studio.accounts.sign_up(email, name, DEMO_PASSWORD)
        studio.accounts.set_role(user.id, role)
        report.append(f"{email}: created as {role} (password {DEMO_PASSWORD}).")
    return report
