"""Demo data for `make demo`: one account per role. Safe to run again (nothing is duplicated)."""

from __future__ import annotations

from dataclasses import dataclass

from server.auth.roles import Role
from server.settings import Settings
from server.state import open_services

# A demo password is printed for anyone to see: never use demo data in a real deployment.
DEMO_PASSWORD = "liaison-demo-password"


@dataclass(frozen=True)
class DemoAccount:
    username: str
    display_name: str
    role: Role


DEMO_ACCOUNTS = (
    DemoAccount("admin", "Avery Admin", Role.ADMIN),
    DemoAccount("dr.rivera", "Dr. Sofia Rivera", Role.PSYCHIATRIST),
    DemoAccount("dr.okafor", "Dr. James Okafor", Role.PSYCHIATRIST),
    DemoAccount("dr.chen", "Dr. Mei Chen", Role.PCP),
    DemoAccount("t.nguyen", "Tran Nguyen, LCSW", Role.THERAPIST),
    DemoAccount("cm.patel", "Priya Patel, RN", Role.CARE_MANAGER),
)


async def seed_demo(settings: Settings) -> str:
    """Create what is missing and return the text to show the user."""
    async with open_services(settings) as svc:
        async with svc.db() as db:
            existing = {
                a.username for a in DEMO_ACCOUNTS if await svc.users.by_username(db, a.username)
            }
        for account in DEMO_ACCOUNTS:
            if account.username not in existing:
                await svc.users.create(
                    account.username, account.display_name, account.role, DEMO_PASSWORD
                )
    url = settings.server.public_url
    lines = [
        "",
        f"Liaison demo at {url}/login",
        f"Every demo account's password: {DEMO_PASSWORD}",
        *(f"  {a.role.value:<13} {a.username:<12} {a.display_name}" for a in DEMO_ACCOUNTS),
        "",
    ]
    return "\n".join(lines)
