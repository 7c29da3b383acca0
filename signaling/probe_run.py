"""`liaison probe`: check a running Liaison from the outside, as a user's browser would.

Two ways in:

* as a signed-in user (``--user``): sign in over HTTP, run the device and network check
  against the server's echo peer, print the time to connected, the echoed video and the
  round-trip time and loss of the probe channel;
* as a patient with a join link (``--link`` and ``--dob``): exchange the link, pass the
  identity, consent and location steps, run the device check, join the visit's waiting room
  through the signaling server, wait to be admitted, connect media with whoever is in the call
  and print the time from admission to connected and the frames received.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from signaling.echo import EchoCheck, run_echo_check
from signaling.probe import ProbeClient

OFFER_PATH = "/api/v1/device-check/offer"


class ProbeFailed(Exception):
    """The server refused a step; the message says which and why."""


@dataclass(frozen=True)
class Report:
    lines: list[str]


async def _json(response: aiohttp.ClientResponse, step: str) -> Any:
    body = await response.json(content_type=None)
    if response.status >= 400:
        error = body.get("error", {}) if isinstance(body, dict) else {}
        raise ProbeFailed(
            f"{step}: {error.get('code', response.status)}: {error.get('message', '')}"
        )
    return body


def _echo_lines(check: EchoCheck) -> list[str]:
    rt = check.round_trips
    first_ms = (check.first_frame_s or 0) * 1000
    video_rt = check.video_round_trip_ms
    return [
        f"device check: connected in {check.connected_s * 1000:.0f} ms",
        f"  echoed video: {check.frames} frames, first after {first_ms:.0f} ms"
        + (f", round trip {video_rt:.0f} ms" if video_rt else ""),
        f"  network: {rt.received}/{rt.sent} pings answered, loss {rt.loss:.0%}, "
        f"median round trip {rt.rtt_median_ms or 0:.1f} ms",
    ]


async def probe_as_user(base_url: str, username: str, password: str, totp: str | None) -> Report:
    base_url = base_url.rstrip("/")
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        login = await http.post(
            base_url + "/api/v1/auth/login",
            json={"username": username, "password": password, "totp_code": totp},
        )
        csrf = (await _json(login, "sign in"))["csrf_token"]

        async def exchange(sdp: str) -> str:
            response = await http.post(
                base_url + OFFER_PATH,
                json={"sdp": sdp, "type": "offer"},
                headers={"X-CSRF-Token": csrf},
            )
            answer: str = (await _json(response, "device check"))["sdp"]
            return answer

        async with asyncio.timeout(30):
            check = await run_echo_check(exchange, frames=10, pings=20, ping_grace=2)
        await http.post(base_url + "/api/v1/auth/logout", headers={"X-CSRF-Token": csrf})
    return Report(_echo_lines(check))


async def probe_as_patient(
    link: str, date_of_birth: str, state: str, phone: str, wait_s: float
) -> Report:
    parts = urlsplit(link)
    if not parts.fragment:
        raise ProbeFailed("the join link has no token after '#'")
    base_url = f"{parts.scheme}://{parts.netloc}"
    lines: list[str] = []
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        status = await _json(
            await http.post(base_url + "/api/v1/join/exchange", json={"token": parts.fragment}),
            "open the link",
        )
        csrf = status["csrf_token"]
        headers = {"X-CSRF-Token": csrf}
        join = base_url + "/api/v1/join"
        await _json(
            await http.post(
                join + "/verify", json={"date_of_birth": date_of_birth}, headers=headers
            ),
            "identity check",
        )
        consent = await _json(await http.get(join + "/consent-text"), "consent text")
        await _json(
            await http.post(
                join + "/consent",
                json={"consent_version": consent["version"], "accepted": True},
                headers=headers,
            ),
            "consent",
        )
        status = await _json(
            await http.post(
                join + "/location", json={"state": state, "callback_phone": phone}, headers=headers
            ),
            "location",
        )
        visit_id = status["visit"]["id"]

        async def exchange(sdp: str) -> str:
            response = await http.post(
                base_url + OFFER_PATH, json={"sdp": sdp, "type": "offer"}, headers=headers
            )
            answer: str = (await _json(response, "device check"))["sdp"]
            return answer

        async with asyncio.timeout(30):
            lines += _echo_lines(await run_echo_check(exchange, frames=5, pings=20, ping_grace=2))

        cookies = {c.key: c.value for c in http.cookie_jar}
    probe = ProbeClient(base_url, cookies)
    try:
        await probe.connect()
        ack = await probe.join(visit_id)
        lines.append(f"visit {visit_id}: {ack['presence']}")
        async with asyncio.timeout(wait_s):
            await probe.joined.wait()
        admitted = time.monotonic()
        lines.append("admitted; connecting media")
        async with asyncio.timeout(30):
            await probe.wait_media(frames=5)
        lines.append(
            f"call: remote video flowing {(time.monotonic() - admitted) * 1000:.0f} ms after "
            f"admission, from {len(probe.links)} participant(s)"
        )
    finally:
        await probe.close()
    return Report(lines)
