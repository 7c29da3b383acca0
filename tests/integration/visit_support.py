"""Builders for the visit, join and patient tests: a clinic of personas, a patient on a care
team, a scheduled visit, and link holders with browsers (cookie jars) of their own."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestClient
from yarl import URL

from server.auth.roles import Role
from server.clock import FakeClock
from server.state import SERVICES
from tests.conftest import Persona, SignIn
from tests.conftest import error_code as error_code  # the visit tests import it from here

Client = TestClient[web.Request, web.Application]

DOB = "1988-04-12"
JOIN = "/api/v1/join"


async def ok_json(response: aiohttp.ClientResponse, status: int = 200) -> Any:
    assert response.status == status, await response.text()
    return await response.json()


@dataclass
class Clinic:
    """healthchecks-style personas around one patient, Jordan, who prefers Spanish."""

    client: Client
    clock: FakeClock
    psychiatrist: Persona  # treating psychiatrist: created Jordan, so on the care team
    pcp: Persona  # on Jordan's care team (added by the psychiatrist)
    outsider: Persona  # a psychiatrist who is not on Jordan's care team
    care_manager: Persona  # not on the team either
    patient_user: Persona  # an account with the patient role
    admin: Persona
    patient_id: int

    async def schedule(
        self,
        by: Persona | None = None,
        *,
        start_in: timedelta = timedelta(minutes=10),
        duration: int = 30,
        clinicians: list[int] | None = None,
        patient_id: int | None = None,
    ) -> Any:
        """Schedule a visit; returns the response body (visit + patient_link)."""
        by = by or self.psychiatrist
        response = await by.post(
            "/api/v1/visits",
            json={
                "patient_id": patient_id or self.patient_id,
                "scheduled_start": (self.clock.now + start_in).isoformat(),
                "duration_minutes": duration,
                "clinician_ids": clinicians or [self.psychiatrist.user_id],
            },
        )
        return await ok_json(response, 201)

    async def wait(self, minutes: float) -> None:
        """Let time pass, with the clinicians active enough that their sessions stay open."""
        step = 10.0
        while minutes > 0:
            self.clock.advance(60 * min(step, minutes))
            minutes -= step
            for persona in (self.psychiatrist, self.pcp, self.outsider, self.admin):
                assert (await persona.get("/api/v1/auth/session")).status == 200

    @property
    def db_file(self) -> Path:
        url = self.client.app[SERVICES].settings.database.url
        return Path(url.split("///", 1)[1])

    def database_bytes(self) -> bytes:
        files = [self.db_file, self.db_file.with_name(self.db_file.name + "-wal")]
        return b"".join(p.read_bytes() for p in files if p.exists())


async def create_patient(by: Persona, **fields: Any) -> Any:
    body = {
        "given_name": "Jordan",
        "family_name": "Alvarez",
        "date_of_birth": DOB,
        "preferred_language": "es",
        "state": "CA",
        "phone": "+1 (415) 555-0134",
    } | fields
    return await ok_json(await by.post("/api/v1/patients", json=body), 201)


async def set_up_clinic(client: Client, clock: FakeClock, sign_in: SignIn) -> Clinic:
    psychiatrist = await sign_in(Role.PSYCHIATRIST, "dr.rivera")
    pcp = await sign_in(Role.PCP, "dr.chen")
    outsider = await sign_in(Role.PSYCHIATRIST, "dr.okafor")
    care_manager = await sign_in(Role.CARE_MANAGER, "cm.patel")
    patient_user = await sign_in(Role.PATIENT, "jordan")
    admin = await sign_in(Role.ADMIN, "admin")
    patient = await create_patient(psychiatrist)
    added = await psychiatrist.post(
        f"/api/v1/patients/{patient['id']}/care-team",
        json={"user_id": pcp.user_id, "role_on_team": "pcp"},
    )
    await ok_json(added, 201)
    return Clinic(
        client, clock, psychiatrist, pcp, outsider, care_manager, patient_user, admin, patient["id"]
    )


def token_of(url: str) -> str:
    parts = urlsplit(url)
    assert parts.path == "/join" and not parts.query and parts.fragment, url
    return parts.fragment


@dataclass
class Holder:
    """Whoever opened a join link: a browser of their own, no account."""

    http: aiohttp.ClientSession
    base_url: str
    csrf_token: str = ""
    cookie_name: str = "liaison_visit"

    async def exchange(self, url_or_token: str) -> aiohttp.ClientResponse:
        token = token_of(url_or_token) if "#" in url_or_token else url_or_token
        response = await self.http.post(self.base_url + f"{JOIN}/exchange", json={"token": token})
        if response.status == 200:
            self.csrf_token = (await response.json())["csrf_token"]
        return response

    async def join(self, url: str) -> Any:
        """Exchange the link and return the status body."""
        return await ok_json(await self.exchange(url))

    async def get(self, path: str) -> aiohttp.ClientResponse:
        return await self.http.get(self.base_url + JOIN + path)

    async def post(self, path: str, json: Any, *, csrf: bool = True) -> aiohttp.ClientResponse:
        headers = {"X-CSRF-Token": self.csrf_token} if csrf else {}
        return await self.http.post(self.base_url + JOIN + path, json=json, headers=headers)

    async def verify(self, dob: str = DOB) -> aiohttp.ClientResponse:
        return await self.post("/verify", {"date_of_birth": dob})

    async def consent(self, accepted: bool = True, version: str | None = None) -> Any:
        if version is None:
            version = (await ok_json(await self.get("/consent-text")))["version"]
        return await self.post("/consent", {"consent_version": version, "accepted": accepted})

    async def locate(self, **fields: Any) -> aiohttp.ClientResponse:
        body = {"state": "CA", "callback_phone": "415-555-0134"} | fields
        return await self.post("/location", {k: v for k, v in body.items() if v is not None})

    @property
    def session_token(self) -> str:
        cookies = self.http.cookie_jar.filter_cookies(URL(self.base_url))
        return cookies[self.cookie_name].value


@dataclass
class Holders:
    client: Client
    sessions: list[aiohttp.ClientSession] = field(default_factory=list)

    def __call__(self) -> Holder:
        http = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
        self.sessions.append(http)
        return Holder(http, str(self.client.make_url("")).rstrip("/"))

    async def __aenter__(self) -> Holders:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for http in self.sessions:
            await http.close()


async def ready_patient(clinic: Clinic, holders: Holders, url: str) -> Holder:
    """A patient who has opened the link and passed every step."""
    holder = holders()
    await holder.join(url)
    await ok_json(await holder.verify())
    await ok_json(await holder.consent())
    await ok_json(await holder.locate())
    return holder


def later(clock: FakeClock, **delta: float) -> datetime:
    return clock.now + timedelta(**delta)
