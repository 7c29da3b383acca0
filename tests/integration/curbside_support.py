"""Builders for the curbside tests: the clinic's personas (visit_support.set_up_clinic) plus
psychiatrists on call, their dashboards (real socket.io clients, signaling/probe.py) with an
inbox of curbside events, and a PCP's socket for live status."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from aiohttp import ClientResponse
from yarl import URL

from server.auth.roles import Role
from signaling import events as ev
from signaling.curbside_events import CURBSIDE_SCHEDULER
from signaling.probe import ProbeClient
from tests.conftest import Persona, SignIn
from tests.integration.visit_support import Client, Clinic, ok_json

CURBSIDE_EVENTS = (
    ev.CURBSIDE_RING,
    ev.CURBSIDE_TAKEN,
    ev.CURBSIDE_STOP,
    ev.CURBSIDE_STATUS,
    ev.CURBSIDE_CONNECTED,
)
QUESTION = "Sertraline 100 mg for 8 weeks, PHQ-9 still 18: switch, augment, or refer?"


def session_cookie(persona: Persona) -> dict[str, str]:
    jar = persona.http.cookie_jar.filter_cookies(URL(persona.base_url))
    return {"liaison_session": jar["liaison_session"].value}


class Dashboard:
    """One signed-in socket and every curbside event it received, in order."""

    def __init__(self, persona: Persona, probe: ProbeClient) -> None:
        self.persona = persona
        self.probe = probe
        self.events: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self._changed = asyncio.Event()
        for name in CURBSIDE_EVENTS:
            probe.sio.on(name, self._recorder(name), namespace=ev.NAMESPACE)

    def _recorder(self, name: str) -> Callable[[dict[str, Any]], Any]:
        async def record(data: dict[str, Any]) -> None:
            self.events[name].append(data)
            self._changed.set()

        return record

    async def wait(
        self,
        name: str,
        where: Callable[[dict[str, Any]], bool] | None = None,
        seconds: float = 15,
    ) -> dict[str, Any]:
        """The first ``name`` event matching ``where``, waiting for it if need be."""
        async with asyncio.timeout(seconds):
            while True:
                self._changed.clear()
                for data in self.events[name]:
                    if where is None or where(data):
                        return data
                await self._changed.wait()

    async def status(self, request_id: int, status: str) -> dict[str, Any]:
        return await self.wait(
            ev.CURBSIDE_STATUS, lambda d: d["request_id"] == request_id and d["status"] == status
        )

    async def ring(self, request_id: int) -> dict[str, Any]:
        return await self.wait(ev.CURBSIDE_RING, lambda d: d["request"]["id"] == request_id)

    def rung_for(self, request_id: int) -> bool:
        return any(d["request"]["id"] == request_id for d in self.events[ev.CURBSIDE_RING])

    async def watch(self) -> dict[str, Any]:
        """Say this socket rings its psychiatrist, as the dashboard page does on every connect."""
        return await self.probe.request(ev.CURBSIDE_WATCH)

    async def send(self, event: str, request_id: int) -> dict[str, Any]:
        return await self.probe.request(event, {"request_id": request_id})


@dataclass
class Curbside:
    clinic: Clinic
    sign_in: SignIn
    dashboards: list[Dashboard] = field(default_factory=list)

    @property
    def client(self) -> Client:
        return self.clinic.client

    @property
    def base(self) -> str:
        return str(self.client.make_url("")).rstrip("/")

    async def psychiatrist(
        self,
        username: str,
        tier: str = "primary",
        states: tuple[str, ...] = ("CA",),
        *,
        hours: float = 8,
    ) -> Persona:
        """A psychiatrist on call from now, licensed in ``states``."""
        persona = await self.sign_in(Role.PSYCHIATRIST, username)
        await ok_json(await persona.put("/api/v1/curbside/licenses", json={"states": states}))
        now = self.clinic.clock.now
        shift = {
            "psychiatrist_id": persona.user_id,
            "tier": tier,
            "starts_at": (now - timedelta(minutes=5)).isoformat(),
            "ends_at": (now + timedelta(hours=hours)).isoformat(),
        }
        await ok_json(await self.clinic.admin.post("/api/v1/curbside/shifts", json=shift), 201)
        return persona

    async def dashboard(self, persona: Persona, *, watch: bool | None = None) -> Dashboard:
        """A signed-in socket; a psychiatrist's watches (it is their on-call dashboard), the
        PCP's does not unless ``watch`` says so. ``watch=False``: another page, a visit's."""
        probe = ProbeClient(self.base, session_cookie(persona))
        dashboard = Dashboard(persona, probe)
        self.dashboards.append(dashboard)
        await probe.connect()
        if watch if watch is not None else persona is not self.clinic.pcp:
            await dashboard.watch()
        return dashboard

    async def post_request(self, by: Persona | None = None, **fields: Any) -> ClientResponse:
        """POST a curbside request (Jordan, urgent, call now unless ``fields`` say otherwise)."""
        body = {
            "patient_id": self.clinic.patient_id,
            "question": QUESTION,
            "urgency": "urgent",
            "mode": "call_now",
            "patient_consented": True,
        } | fields
        return await (by or self.clinic.pcp).post("/api/v1/curbside/requests", json=body)

    async def ask(self, by: Persona | None = None, **fields: Any) -> Any:
        return await ok_json(await self.post_request(by, **fields), 201)

    async def get(self, request_id: int, by: Persona | None = None) -> Any:
        persona = by or self.clinic.pcp
        return await ok_json(await persona.get(f"/api/v1/curbside/requests/{request_id}"))

    async def tick(self) -> int:
        """What each server process's scheduler does every second, now."""
        return await self.client.app[CURBSIDE_SCHEDULER].tick()

    async def advance(self, seconds: float) -> None:
        self.clinic.clock.advance(seconds)
        await self.tick()

    async def close(self) -> None:
        for dashboard in self.dashboards:
            await dashboard.probe.close()
