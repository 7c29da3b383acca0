"""`liaison probe` against a real server: as a signed-in user and as a patient with a link."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta

import pytest

from server.clock import FakeClock
from signaling.probe import ProbeClient
from signaling.probe_run import ProbeFailed, Report, probe_as_patient, probe_as_user
from tests.conftest import PASSWORD, SignIn
from tests.integration.test_visit_call import session_cookie
from tests.integration.visit_support import DOB, Client, set_up_clinic

pytestmark = pytest.mark.timeout(90)


async def test_probe_as_a_user_reports_the_device_check(
    app_client: Client, sign_in: SignIn
) -> None:
    alice = await sign_in()
    report = await probe_as_user(alice.base_url, alice.username, PASSWORD, None)
    assert report.lines[0].startswith("device check: connected in ")
    assert "pings answered" in report.lines[2]


async def test_probe_as_a_user_explains_a_refused_sign_in(app_client: Client) -> None:
    with pytest.raises(ProbeFailed, match="sign in: invalid_credentials"):
        await probe_as_user(str(app_client.make_url("")), "nobody", "wrong password!", None)


async def test_probe_as_a_patient_waits_is_admitted_and_gets_video(
    app_client: Client, clock: FakeClock, sign_in: SignIn
) -> None:
    clinic = await set_up_clinic(app_client, clock, sign_in)
    visit = await clinic.schedule(start_in=timedelta(minutes=5))
    clinician = ProbeClient(clinic.psychiatrist.base_url, session_cookie(clinic.psychiatrist))
    patient: asyncio.Task[Report] | None = None
    try:
        await clinician.connect()
        await clinician.join(visit["visit"]["id"])
        patient = asyncio.create_task(
            probe_as_patient(visit["patient_link"]["url"], DOB, "CA", "415-555-0134", 30)
        )
        async with asyncio.timeout(30):
            while not clinician.lobby:
                clinician.lobby_changed.clear()
                await clinician.lobby_changed.wait()
        await clinician.admit(clinician.lobby[0]["participant_id"])
        report = await patient
    finally:
        # After a failure above, the patient's probe is not left running (its sockets open)
        # into the tests that follow.
        if patient is not None and not patient.done():
            patient.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await patient
        await clinician.close()
    assert any(line.startswith("visit ") and line.endswith("waiting") for line in report.lines)
    assert report.lines[-1].startswith("call: remote video flowing")


async def test_probe_as_a_patient_stops_at_a_wrong_date_of_birth(
    app_client: Client, clock: FakeClock, sign_in: SignIn
) -> None:
    clinic = await set_up_clinic(app_client, clock, sign_in)
    visit = await clinic.schedule()
    with pytest.raises(ProbeFailed, match="identity check: identity_mismatch"):
        await probe_as_patient(visit["patient_link"]["url"], "1990-01-01", "CA", "4155550134", 5)
