"""A clinic session to book into, through the real server: where the clinic, reminder and
no-show tests start; and two server processes' services on one database, for the background
tasks that must act once however many processes run them."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from server.clock import FakeClock
from server.state import SERVICES, Services, open_services
from tests.conftest import SignIn, make_settings
from tests.integration.visit_support import Client, Clinic, create_patient, ok_json, set_up_clinic

BASE = "/api/v1/clinics"


@dataclass(frozen=True)
class ClinicSession:
    clinic: Clinic
    session: dict[str, Any]  # as the API returned it: three 20-minute slots
    patient_id: int  # Sam Lee, with an email address, on the care manager's caseload

    @property
    def svc(self) -> Services:
        return self.clinic.client.app[SERVICES]

    @property
    def outbox(self) -> Path:
        """The folder the server's mail goes to (one .eml file per message)."""
        return self.svc.settings.paths.var_dir / "outbox"

    async def book(self, slot: int = 0, patient_id: int | None = None) -> Any:
        """The care manager books the patient (Sam unless said) into the session's ``slot``."""
        response = await self.clinic.care_manager.post(
            f"{BASE}/sessions/{self.session['id']}/bookings",
            json={
                "patient_id": patient_id or self.patient_id,
                "slot_start": self.session["slots"][slot],
            },
        )
        return await ok_json(response, 201)


async def set_up_clinic_session(
    client: Client, clock: FakeClock, sign_in: SignIn, starts_in: timedelta
) -> ClinicSession:
    """The visit tests' clinic, Sam Lee, and the psychiatrist's one-hour session "Tuesday
    consults" starting ``starts_in`` from now, made by the care manager."""
    clinic = await set_up_clinic(client, clock, sign_in)
    patient = await create_patient(
        clinic.psychiatrist, given_name="Sam", family_name="Lee", email="sam@example.org"
    )
    added = await clinic.psychiatrist.post(
        f"/api/v1/patients/{patient['id']}/care-team",
        json={"user_id": clinic.care_manager.user_id, "role_on_team": "care_manager"},
    )
    await ok_json(added, 201)
    start = clock.now + starts_in
    session = await ok_json(
        await clinic.care_manager.post(
            f"{BASE}/sessions",
            json={
                "psychiatrist_id": clinic.psychiatrist.user_id,
                "title": "Tuesday consults",
                "starts_at": start.isoformat(),
                "ends_at": (start + timedelta(hours=1)).isoformat(),
                "slot_minutes": 20,
            },
        ),
        201,
    )
    return ClinicSession(clinic, session, patient["id"])


async def poll(check: Callable[[], Awaitable[bool]], attempts: int = 500) -> None:
    """A bounded poll (at least 10 s) for something the server does in its own time."""
    for _ in range(attempts):
        if await check():
            return
        await asyncio.sleep(0.02)
    pytest.fail("the condition never held")


@asynccontextmanager
async def two_processes(
    database_url: str, tmp_path: Path, clock: FakeClock, **env: str
) -> AsyncIterator[tuple[Services, Services]]:
    """Two processes' services on one database (and one outbox folder), with these settings."""
    async with AsyncExitStack() as stack:
        settings = make_settings(tmp_path, LIAISON_DATABASE__URL=database_url, **env)
        a = await stack.enter_async_context(open_services(settings, clock))
        b = await stack.enter_async_context(open_services(settings, clock))
        yield a, b
