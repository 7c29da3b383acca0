"""The join page's API: the one-time exchange, the identity check and its lockout, consent,
location, the status the waiting room shows, and the identity a socket is bound to."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from datetime import date, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from server.auth.roles import Role
from server.clock import FakeClock
from server.db.models import VisitJoin
from server.demo import DemoActor
from server.errors import Gone, Unauthenticated
from server.record.patients import NewPatient
from server.state import SERVICES
from server.visits.consent import GUEST_CONSENT, PATIENT_CONSENT
from server.visits.participants import ParticipantKind
from server.visits.service import NewVisit
from tests.conftest import PASSWORD, AppFactory, SignIn
from tests.integration.visit_support import (
    DOB,
    JOIN,
    Client,
    Clinic,
    Holder,
    Holders,
    error_code,
    ok_json,
    ready_patient,
    set_up_clinic,
)


@pytest.fixture
async def clinic(app_client: Client, clock: FakeClock, sign_in: SignIn) -> Clinic:
    return await set_up_clinic(app_client, clock, sign_in)


@pytest.fixture
async def holders(app_client: Client) -> AsyncIterator[Holders]:
    async with Holders(app_client) as made:
        yield made


@pytest.fixture
async def visit(clinic: Clinic) -> Any:
    """A visit in ten minutes with Dr Rivera; its body holds the patient link's URL."""
    return await clinic.schedule()


def patient_url(visit: Any) -> str:
    url: str = visit["patient_link"]["url"]
    return url


async def invite(clinic: Clinic, visit: Any, role: str = "interpreter") -> str:
    response = await clinic.psychiatrist.post(
        f"/api/v1/visits/{visit['visit']['id']}/links",
        json={"guest_role": role, "display_name": "Luis (interpreter)"},
    )
    url: str = (await ok_json(response, 201))["url"]
    return url


# --- the exchange -----------------------------------------------------------------------------


async def test_the_exchange_sets_a_strict_httponly_visit_cookie(
    visit: Any, holders: Holders
) -> None:
    response = await holders().exchange(patient_url(visit))
    assert response.status == 200
    cookie = response.cookies["liaison_visit"]
    assert cookie["httponly"] and cookie["samesite"] == "Strict" and not cookie["secure"]
    assert cookie["path"] == "/"
    # The session lasts as long as the link: 10 min to the start, 30 min visit, 60 min grace.
    assert int(cookie["max-age"]) == 100 * 60


async def test_the_exchange_tells_only_what_the_holder_needs(visit: Any, holders: Holders) -> None:
    response = await holders().exchange(patient_url(visit))
    body = await ok_json(response)
    assert body["visit"]["id"] == visit["visit"]["id"]
    assert body["visit"]["duration_minutes"] == 30
    assert body["visit"]["clinicians"] == ["Dr.Rivera"]
    assert body["visit"]["patient_first_name"] == "Jordan"
    assert body["visit"]["status"] == "scheduled"
    assert body["you"]["kind"] == "patient"
    assert body["steps_remaining"] == ["identity", "consent", "location"]
    assert body["next_step"] == "identity" and body["ready_for_room"] is False
    text = await response.text()
    # Each probe holds a character no opaque token can contain (the body carries random hex, in
    # which a bare "415" or "1988" turns up now and then), or is too long to appear by chance.
    for secret in (DOB, "Alvarez", "(415)", "555-0134", "LIA-"):
        assert secret not in text


async def test_the_visit_cookie_is_secure_over_tls(make_app: AppFactory, clock: FakeClock) -> None:
    client = await make_app(LIAISON_SERVER__PUBLIC_URL="https://127.0.0.1")
    svc = client.app[SERVICES]
    # Signed-in cookies are Secure here too, so the set-up goes through the services.
    user = await svc.users.create("dr.rivera", "Dr. Rivera", Role.PSYCHIATRIST, PASSWORD)
    who = DemoActor(user.id, Role.PSYCHIATRIST)
    patient = await svc.patients.create(
        who, NewPatient("Jordan", "Alvarez", date(1988, 4, 12), "es", "CA", "4155550134")
    )
    _, link = await svc.visits.schedule(
        who, NewVisit(patient.patient.id, clock.now + timedelta(minutes=5), 30, [user.id])
    )
    assert link.url.startswith("https://127.0.0.1/join#")
    async with Holders(client) as holders:
        response = await holders().exchange(link.url)
        assert response.cookies["liaison_visit"]["secure"]


async def test_a_link_works_only_once(visit: Any, holders: Holders) -> None:
    await holders().join(patient_url(visit))
    response = await holders().exchange(patient_url(visit))
    assert await error_code(response, 410) == "link_used"


async def test_reopening_the_link_in_the_same_browser_carries_on(
    visit: Any, holders: Holders
) -> None:
    holder = holders()
    await holder.join(patient_url(visit))
    await ok_json(await holder.verify())
    again = await holder.exchange(patient_url(visit))
    body = await ok_json(again)
    assert "liaison_visit" not in again.cookies  # the same session, no new cookie
    assert body["steps_completed"] == ["identity"]


async def test_of_concurrent_exchanges_exactly_one_wins(visit: Any, holders: Holders) -> None:
    browsers = [holders() for _ in range(6)]
    responses = await asyncio.gather(*(b.exchange(patient_url(visit)) for b in browsers))
    statuses = sorted(r.status for r in responses)
    assert statuses == [200, 410, 410, 410, 410, 410]
    for response in responses:
        if response.status == 410:
            assert await error_code(response, 410) == "link_used"


async def test_an_expired_link_is_gone(clinic: Clinic, visit: Any, holders: Holders) -> None:
    clinic.clock.advance((10 + 30 + 60) * 60)
    response = await holders().exchange(patient_url(visit))
    assert await error_code(response, 410) == "link_expired"


async def test_a_link_holders_session_ends_with_the_link(
    clinic: Clinic, visit: Any, holders: Holders
) -> None:
    holder = holders()
    await holder.join(patient_url(visit))
    clinic.clock.advance((10 + 30 + 60) * 60)
    assert await error_code(await holder.get("/status"), 410) == "link_expired"


async def test_an_unknown_token_is_404(holders: Holders, visit: Any) -> None:
    response = await holders().exchange("x" * 43)
    assert await error_code(response, 404) == "link_not_found"


@pytest.mark.parametrize("body", [{}, {"token": "short"}, {"token": "x" * 200}, []])
async def test_a_malformed_exchange_is_422(holders: Holders, body: Any) -> None:
    response = await holders().http.post(holders.client.make_url(f"{JOIN}/exchange"), json=body)
    assert await error_code(response, 422) == "validation_failed"


async def test_the_exchange_refuses_other_sites(visit: Any, holders: Holders) -> None:
    holder = holders()
    response = await holder.http.post(
        holder.base_url + f"{JOIN}/exchange",
        json={"token": patient_url(visit).split("#")[1]},
        headers={"Origin": "https://evil.example"},
    )
    assert await error_code(response, 403) == "bad_origin"


async def test_a_revoked_link_ends_the_holders_session(
    clinic: Clinic, visit: Any, holders: Holders
) -> None:
    holder = holders()
    await holder.join(patient_url(visit))
    link_id = visit["patient_link"]["link"]["id"]
    await ok_json(await clinic.psychiatrist.post(f"/api/v1/links/{link_id}/revoke"))
    assert await error_code(await holder.get("/status"), 410) == "link_revoked"


async def test_a_cancelled_visit_ends_the_holders_session(
    clinic: Clinic, visit: Any, holders: Holders
) -> None:
    holder = holders()
    await holder.join(patient_url(visit))
    await ok_json(await clinic.psychiatrist.post(f"/api/v1/visits/{visit['visit']['id']}/cancel"))
    assert await error_code(await holder.get("/status"), 410) == "visit_cancelled"
    assert await error_code(await holder.verify(), 410) == "visit_cancelled"


async def test_a_finished_visit_refuses_its_links(
    clinic: Clinic, visit: Any, holders: Holders
) -> None:
    from server.db.models import Visit

    async with clinic.client.app[SERVICES].db.begin() as db:
        row = await db.get(Visit, visit["visit"]["id"])
        assert row is not None
        row.status = "completed"
    response = await holders().exchange(patient_url(visit))
    assert await error_code(response, 410) == "visit_ended"


# --- the visit session ------------------------------------------------------------------------


async def test_the_steps_need_a_visit_session(holders: Holders, visit: Any) -> None:
    holder = holders()
    assert await error_code(await holder.get("/status"), 401) == "visit_session_missing"
    assert await error_code(await holder.get("/consent-text"), 401) == "visit_session_missing"
    assert await error_code(await holder.verify(), 401) == "visit_session_missing"
    holder.http.cookie_jar.update_cookies({"liaison_visit": "forged"})
    assert await error_code(await holder.get("/status"), 401) == "visit_session_missing"


async def test_writes_need_the_csrf_token(visit: Any, holders: Holders) -> None:
    holder = holders()
    await holder.join(patient_url(visit))
    response = await holder.post("/verify", {"date_of_birth": DOB}, csrf=False)
    assert await error_code(response, 403) == "csrf_failed"
    holder.csrf_token = "0" * 64
    assert await error_code(await holder.verify(), 403) == "csrf_failed"


# --- the identity check -----------------------------------------------------------------------


async def test_the_right_date_of_birth_passes_the_identity_check(
    visit: Any, holders: Holders
) -> None:
    holder = holders()
    await holder.join(patient_url(visit))
    body = await ok_json(await holder.verify())
    assert body["steps_completed"] == ["identity"]
    assert body["steps_remaining"] == ["consent", "location"]
    assert (await ok_json(await holder.verify()))["steps_completed"] == ["identity"]  # again: ok


async def test_a_wrong_date_of_birth_is_401_and_counts(visit: Any, holders: Holders) -> None:
    holder = holders()
    await holder.join(patient_url(visit))
    response = await holder.verify("1988-04-13")
    assert await error_code(response, 401) == "identity_mismatch"
    assert (await response.json())["error"]["attempts_remaining"] == 4
    second = await holder.verify("1999-01-01")
    assert (await second.json())["error"]["attempts_remaining"] == 3
    await ok_json(await holder.verify())  # the right one still works


async def test_five_wrong_dates_of_birth_lock_the_link(
    clinic: Clinic, visit: Any, holders: Holders
) -> None:
    holder = holders()
    await holder.join(patient_url(visit))
    for remaining in (4, 3, 2, 1):
        response = await holder.verify("2000-01-01")
        assert await error_code(response, 401) == "identity_mismatch"
        assert (await response.json())["error"]["attempts_remaining"] == remaining
    fifth = await holder.verify("2000-01-01")
    assert await error_code(fifth, 410) == "link_locked"
    assert "contact the clinic" in (await fifth.json())["error"]["message"].lower()
    # Locked for good: even the right date of birth is refused, and so is everything else.
    assert await error_code(await holder.verify(), 410) == "link_locked"
    assert await error_code(await holder.get("/status"), 410) == "link_locked"
    detail = await ok_json(await clinic.psychiatrist.get(f"/api/v1/visits/{visit['visit']['id']}"))
    assert detail["links"][0]["state"] == "locked"
    # The clinic issues a new link, which works.
    new = await ok_json(
        await clinic.psychiatrist.post(f"/api/v1/visits/{visit['visit']['id']}/patient-link"),
        201,
    )
    fresh = holders()
    await fresh.join(new["url"])
    await ok_json(await fresh.verify())


async def test_guessing_from_one_address_across_links_is_throttled(
    clinic: Clinic, visit: Any, holders: Holders
) -> None:
    """Four wrong guesses on each of five links from one address reach the login throttle's
    per-address limit (20): the next guess, even on a fresh link, has to wait."""
    url = patient_url(visit)
    reissue = f"/api/v1/visits/{visit['visit']['id']}/patient-link"
    for _ in range(5):
        holder = holders()
        await holder.join(url)
        for _ in range(4):
            assert await error_code(await holder.verify("2001-01-01"), 401) == "identity_mismatch"
        url = (await ok_json(await clinic.psychiatrist.post(reissue), 201))["url"]
    holder = holders()
    await holder.join(url)
    throttled = await holder.verify()
    assert await error_code(throttled, 429) == "identity_throttled"
    assert int(throttled.headers["Retry-After"]) > 0


# --- consent and location ---------------------------------------------------------------------


async def test_the_steps_go_in_order(visit: Any, holders: Holders) -> None:
    holder = holders()
    await holder.join(patient_url(visit))
    early = await holder.consent()
    assert await error_code(early, 409) == "step_out_of_order"
    assert (await early.json())["error"]["next_step"] == "identity"
    await ok_json(await holder.verify())
    location_first = await holder.locate()
    assert await error_code(location_first, 409) == "step_out_of_order"
    assert (await location_first.json())["error"]["next_step"] == "consent"


async def test_the_consent_text_is_versioned(visit: Any, holders: Holders) -> None:
    holder = holders()
    await holder.join(patient_url(visit))
    text = await ok_json(await holder.get("/consent-text"))
    assert text == {"version": PATIENT_CONSENT.version, "text": PATIENT_CONSENT.text}


async def test_consent_records_its_version_and_time(
    clinic: Clinic, visit: Any, holders: Holders
) -> None:
    holder = holders()
    await holder.join(patient_url(visit))
    await ok_json(await holder.verify())
    body = await ok_json(await holder.consent())
    assert body["steps_completed"] == ["identity", "consent"]
    async with clinic.client.app[SERVICES].db() as db:
        row = (await db.execute(select(VisitJoin))).scalar_one()
    assert row.consent_version == PATIENT_CONSENT.version
    assert row.consent_at == clinic.clock.now


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        (
            {"consent_version": PATIENT_CONSENT.version, "accepted": False},
            422,
            "consent_not_accepted",
        ),
        ({"consent_version": "patient-telehealth-2020", "accepted": True}, 409, "consent_outdated"),
        ({"consent_version": GUEST_CONSENT.version, "accepted": True}, 409, "consent_outdated"),
        ({"accepted": True}, 422, "validation_failed"),
        ({"consent_version": PATIENT_CONSENT.version}, 422, "validation_failed"),
    ],
)
async def test_consent_must_be_given_to_the_current_text(
    visit: Any, holders: Holders, body: dict[str, Any], status: int, code: str
) -> None:
    holder = holders()
    await holder.join(patient_url(visit))
    await ok_json(await holder.verify())
    assert await error_code(await holder.post("/consent", body), status) == code


async def _at_location_step(visit: Any, holders: Holders) -> Holder:
    holder = holders()
    await holder.join(patient_url(visit))
    await ok_json(await holder.verify())
    await ok_json(await holder.consent())
    return holder


@pytest.mark.parametrize(
    ("fields", "code", "field"),
    [
        ({"state": None, "address": None}, "location_missing", None),
        ({"callback_phone": None}, "validation_failed", "callback_phone"),
        ({"callback_phone": "12345"}, "validation_failed", "callback_phone"),
        ({"callback_phone": "call me maybe"}, "validation_failed", "callback_phone"),
        ({"state": "ZZ"}, "validation_failed", "state"),
        ({"state": None, "address": "   "}, "validation_failed", "address"),
        ({"address": "x" * 501}, "validation_failed", "address"),
    ],
)
async def test_the_location_needs_a_place_and_a_phone(
    visit: Any, holders: Holders, fields: dict[str, Any], code: str, field: str | None
) -> None:
    holder = await _at_location_step(visit, holders)
    response = await holder.locate(**fields)
    assert await error_code(response, 422) == code
    if field is not None:
        assert [f["field"] for f in (await response.json())["error"]["fields"]] == [field]


async def test_the_location_is_recorded(clinic: Clinic, visit: Any, holders: Holders) -> None:
    holder = await _at_location_step(visit, holders)
    body = await ok_json(
        await holder.locate(
            state="ny", address="  12 Main St,  Albany ", callback_phone="518 555 0199"
        )
    )
    assert body["ready_for_room"] is True and body["next_step"] is None
    async with clinic.client.app[SERVICES].db() as db:
        row = (await db.execute(select(VisitJoin))).scalar_one()
    assert (row.location_state, row.location_address, row.callback_phone) == (
        "NY",
        "12 Main St, Albany",
        "518 555 0199",
    )
    assert row.location_recorded_at == clinic.clock.now
    # A corrected location replaces the first.
    await ok_json(await holder.locate(state="NJ", address=None))
    async with clinic.client.app[SERVICES].db() as db:
        row = (await db.execute(select(VisitJoin))).scalar_one()
    assert (row.location_state, row.location_address) == ("NJ", None)


# --- status and the waiting room --------------------------------------------------------------


async def test_the_status_follows_the_steps_and_the_visit(
    clinic: Clinic, visit: Any, holders: Holders
) -> None:
    holder = holders()
    joined = await holder.join(patient_url(visit))
    status = await ok_json(await holder.get("/status"))
    assert status == joined
    await ok_json(await holder.verify())
    await ok_json(await holder.consent())
    await ok_json(await holder.locate())
    status = await ok_json(await holder.get("/status"))
    assert status["steps_completed"] == ["identity", "consent", "location"]
    assert status["steps_remaining"] == [] and status["ready_for_room"] is True
    assert status["visit"]["status"] == "scheduled"
    assert status["csrf_token"] == holder.csrf_token


# --- guests -----------------------------------------------------------------------------------


async def test_a_guest_skips_the_date_of_birth_and_the_location(
    clinic: Clinic, visit: Any, holders: Holders
) -> None:
    guest = holders()
    body = await guest.join(await invite(clinic, visit))
    assert body["you"] == {
        "kind": "guest",
        "display_name": "Luis (interpreter)",
        "participant_id": body["you"]["participant_id"],
    }
    assert body["visit"]["patient_first_name"] is None
    assert body["steps_remaining"] == ["consent"]
    assert await error_code(await guest.verify(), 409) == "step_not_needed"
    assert await error_code(await guest.locate(), 409) == "step_not_needed"
    text = await ok_json(await guest.get("/consent-text"))
    assert text["version"] == GUEST_CONSENT.version
    done = await ok_json(await guest.consent())
    assert done["ready_for_room"] is True


async def test_a_guest_link_is_one_time_too(clinic: Clinic, visit: Any, holders: Holders) -> None:
    url = await invite(clinic, visit, "pcp")
    await holders().join(url)
    assert await error_code(await holders().exchange(url), 410) == "link_used"


# --- the identity sockets are bound to ----------------------------------------------------------


async def test_resolve_visit_session_says_when_the_holder_is_ready(
    clinic: Clinic, visit: Any, holders: Holders
) -> None:
    join = clinic.client.app[SERVICES].visit_join
    holder = holders()
    await holder.join(patient_url(visit))
    link_id = visit["patient_link"]["link"]["id"]
    before = await join.resolve_visit_session(holder.session_token)
    assert before.ready_for_room is False
    assert (before.visit_id, before.link_id, before.kind) == (
        visit["visit"]["id"],
        link_id,
        ParticipantKind.PATIENT,
    )
    assert before.participant_id == f"link:{link_id}" and before.display_name == "Jordan A."
    await ok_json(await holder.verify())
    await ok_json(await holder.consent())
    assert (await join.resolve_visit_session(holder.session_token)).ready_for_room is False
    await ok_json(await holder.locate())
    assert (await join.resolve_visit_session(holder.session_token)).ready_for_room is True


async def test_resolve_visit_session_refuses_what_is_no_longer_good(
    clinic: Clinic, visit: Any, holders: Holders
) -> None:
    join = clinic.client.app[SERVICES].visit_join
    holder = await ready_patient(clinic, holders, patient_url(visit))
    for token in ("", "nonsense"):
        with pytest.raises(Unauthenticated) as missing:
            await join.resolve_visit_session(token)
        assert missing.value.code == "visit_session_missing"
    link_id = visit["patient_link"]["link"]["id"]
    await ok_json(await clinic.psychiatrist.post(f"/api/v1/links/{link_id}/revoke"))
    with pytest.raises(Gone) as gone:
        await join.resolve_visit_session(holder.session_token)
    assert gone.value.code == "link_revoked"


async def test_a_guest_is_ready_after_consent(clinic: Clinic, visit: Any, holders: Holders) -> None:
    join = clinic.client.app[SERVICES].visit_join
    guest = holders()
    await guest.join(await invite(clinic, visit))
    identity = await join.resolve_visit_session(guest.session_token)
    assert identity.kind is ParticipantKind.GUEST and identity.ready_for_room is False
    await ok_json(await guest.consent())
    assert (await join.resolve_visit_session(guest.session_token)).ready_for_room is True


# --- logs ---------------------------------------------------------------------------------------


async def test_no_token_or_health_information_reaches_the_logs(
    clinic: Clinic, visit: Any, holders: Holders, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    holder = holders()
    await holder.join(patient_url(visit))
    await holder.verify("2000-02-02")
    await ok_json(await holder.verify())
    await ok_json(await holder.consent())
    await ok_json(await holder.locate(address="12 Main St, Albany", callback_phone="518 555 0199"))
    secrets = [
        patient_url(visit).split("#")[1],
        holder.session_token,
        DOB,
        "2000-02-02",
        "Alvarez",
        "Main St",
        "555 0199",
    ]
    logged = "\n".join(
        f"{r.getMessage()} {vars(r)}" for r in caplog.records if r.name.startswith("liaison")
    )
    assert "join link exchanged" in logged  # the scan sees the service's log lines
    for secret in secrets:
        assert secret not in logged, secret


async def test_a_later_exchange_gets_a_session_only_until_the_link_expires(
    clinic: Clinic,
) -> None:
    body = await clinic.schedule(start_in=timedelta(minutes=0), duration=10)
    clinic.clock.advance(30 * 60)
    async with Holders(clinic.client) as holders:
        response = await holders().exchange(patient_url(body))
        assert int(response.cookies["liaison_visit"]["max-age"]) == (10 + 60 - 30) * 60


async def test_the_audit_trail_records_the_visit_and_each_step(
    clinic: Clinic, visit: Any, holders: Holders
) -> None:
    holder = holders()
    await holder.join(patient_url(visit))
    await holder.verify("2000-02-02")
    await ok_json(await holder.verify())
    await ok_json(await holder.consent())
    await ok_json(await holder.locate())
    await ok_json(await clinic.pcp.get(f"/api/v1/visits/{visit['visit']['id']}"))
    svc = clinic.client.app[SERVICES]
    trail = await svc.audit.accesses_for_patient(clinic.patient_id)
    link = f"link:{visit['patient_link']['link']['id']}"
    rivera, chen = f"user:{clinic.psychiatrist.user_id}", f"user:{clinic.pcp.user_id}"
    assert [(a.actor, a.action, a.outcome) for a in reversed(trail)] == [
        (rivera, "record.write", "ok"),  # created the patient
        (rivera, "care_team.change", "ok"),  # added Dr Chen
        (rivera, "visit.create", "ok"),
        (rivera, "visit.link_create", "ok"),
        (link, "visit.join", "ok"),  # exchange
        (link, "visit.join", "denied"),  # a wrong date of birth
        (link, "visit.join", "ok"),  # identity
        (link, "visit.join", "ok"),  # consent
        (link, "visit.join", "ok"),  # location
        (chen, "record.read", "ok"),
    ]
