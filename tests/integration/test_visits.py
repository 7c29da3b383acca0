"""Scheduling visits, the day's list, join links (issue, re-issue, revoke), cancel and no-show,
and who may do each."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from server.auth.roles import Role
from server.clock import FakeClock
from server.state import SERVICES
from server.visits.participants import ParticipantKind
from server.visits.status import VisitStatus
from tests.conftest import AppFactory, SignIn
from tests.integration.visit_support import (
    Client,
    Clinic,
    Holders,
    create_patient,
    error_code,
    ok_json,
    set_up_clinic,
    token_of,
)

VISITS = "/api/v1/visits"


@pytest.fixture
async def clinic(app_client: Client, clock: FakeClock, sign_in: SignIn) -> Clinic:
    return await set_up_clinic(app_client, clock, sign_in)


@pytest.fixture
async def holders(app_client: Client) -> AsyncIterator[Holders]:
    async with Holders(app_client) as made:
        yield made


def schedule_body(clinic: Clinic, **fields: Any) -> dict[str, Any]:
    return {
        "patient_id": clinic.patient_id,
        "scheduled_start": (clinic.clock.now + timedelta(minutes=10)).isoformat(),
        "duration_minutes": 30,
        "clinician_ids": [clinic.psychiatrist.user_id],
    } | fields


# --- scheduling -------------------------------------------------------------------------------


async def test_a_clinician_on_the_care_team_schedules_a_visit(clinic: Clinic) -> None:
    body = await clinic.schedule(duration=45, clinicians=[clinic.psychiatrist.user_id])
    visit = body["visit"]
    assert visit["status"] == "scheduled"
    assert visit["duration_minutes"] == 45
    start = datetime.fromisoformat(visit["scheduled_start"])
    assert start == clinic.clock.now + timedelta(minutes=10)
    assert datetime.fromisoformat(visit["ends_at"]) == start + timedelta(minutes=45)
    assert [c["user_id"] for c in visit["clinicians"]] == [clinic.psychiatrist.user_id]
    assert visit["patient"]["family_name"] == "Alvarez"
    [link] = visit["links"]
    assert link["kind"] == "patient" and link["state"] == "active"
    assert link["display_name"] == "Jordan A."
    # Expires at the scheduled end plus the default 60 minutes' grace.
    expires = datetime.fromisoformat(link["expires_at"])
    assert expires == start + timedelta(minutes=45 + 60)
    assert body["patient_link"]["link"]["id"] == link["id"]


async def test_the_patient_link_carries_its_token_in_the_fragment(clinic: Clinic) -> None:
    url = (await clinic.schedule())["patient_link"]["url"]
    public_url = clinic.client.app[SERVICES].settings.server.public_url
    assert url.startswith(f"{public_url}/join#")
    token = token_of(url)
    assert len(token) >= 43  # 32 random bytes, base64url


async def test_the_link_url_is_shown_once_and_never_again(clinic: Clinic) -> None:
    body = await clinic.schedule()
    token = token_of(body["patient_link"]["url"])
    detail = await clinic.psychiatrist.get(f"{VISITS}/{body['visit']['id']}")
    listing = await clinic.psychiatrist.get(VISITS)
    for response in (detail, listing):
        text = await response.text()
        assert response.status == 200
        assert token not in text and "/join#" not in text


@pytest.mark.sqlite_only("scans the database file")
async def test_the_join_token_is_stored_only_as_a_hash(clinic: Clinic, holders: Holders) -> None:
    body = await clinic.schedule()
    token = token_of(body["patient_link"]["url"])
    holder = holders()
    await holder.join(body["patient_link"]["url"])
    raw = clinic.database_bytes()
    assert token.encode() not in raw
    assert holder.session_token.encode() not in raw
    assert hashlib.sha256(token.encode()).hexdigest().encode() in raw  # the scan sees the rows


async def test_a_clinician_off_the_care_team_may_not_schedule(clinic: Clinic) -> None:
    response = await clinic.outsider.post(
        VISITS, json=schedule_body(clinic, clinician_ids=[clinic.outsider.user_id])
    )
    assert await error_code(response, 403) == "not_on_care_team"


async def test_a_patient_account_may_not_schedule(clinic: Clinic) -> None:
    response = await clinic.patient_user.post(VISITS, json=schedule_body(clinic))
    assert await error_code(response, 403) == "role_forbidden"


async def test_an_admin_may_schedule_for_any_patient(clinic: Clinic) -> None:
    body = await clinic.schedule(clinic.admin)
    assert body["visit"]["status"] == "scheduled"


async def test_scheduling_for_an_unknown_patient_is_404(clinic: Clinic) -> None:
    response = await clinic.admin.post(VISITS, json=schedule_body(clinic, patient_id=9999))
    assert await error_code(response, 404) == "patient_not_found"


async def test_a_visit_may_start_now_but_not_in_the_past(clinic: Clinic) -> None:
    await clinic.schedule(start_in=timedelta(minutes=-4))
    response = await clinic.psychiatrist.post(
        VISITS,
        json=schedule_body(
            clinic, scheduled_start=(clinic.clock.now - timedelta(minutes=6)).isoformat()
        ),
    )
    assert await error_code(response, 422) == "start_in_past"


async def test_a_visit_is_scheduled_at_most_a_year_ahead(clinic: Clinic) -> None:
    response = await clinic.psychiatrist.post(
        VISITS,
        json=schedule_body(
            clinic, scheduled_start=(clinic.clock.now + timedelta(days=400)).isoformat()
        ),
    )
    assert await error_code(response, 422) == "start_too_far"


async def test_a_start_time_needs_its_time_zone(clinic: Clinic) -> None:
    naive = (clinic.clock.now + timedelta(hours=1)).replace(tzinfo=None).isoformat()
    response = await clinic.psychiatrist.post(
        VISITS, json=schedule_body(clinic, scheduled_start=naive)
    )
    assert await error_code(response, 422) == "validation_failed"
    assert [f["field"] for f in (await response.json())["error"]["fields"]] == ["scheduled_start"]


async def test_a_start_time_in_another_offset_is_stored_in_utc(clinic: Clinic) -> None:
    start = (clinic.clock.now + timedelta(hours=2)).astimezone(ZoneInfo("America/Chicago"))
    body = await ok_json(
        await clinic.psychiatrist.post(
            VISITS, json=schedule_body(clinic, scheduled_start=start.isoformat())
        ),
        201,
    )
    stored = datetime.fromisoformat(body["visit"]["scheduled_start"])
    assert stored.utcoffset() == timedelta(0) and stored == start


@pytest.mark.parametrize(("minutes", "status"), [(9, 422), (10, 201), (240, 201), (241, 422)])
async def test_a_visit_lasts_10_to_240_minutes(clinic: Clinic, minutes: int, status: int) -> None:
    response = await clinic.psychiatrist.post(
        VISITS, json=schedule_body(clinic, duration_minutes=minutes)
    )
    assert response.status == status, await response.text()


async def test_a_visit_needs_a_clinician(clinic: Clinic) -> None:
    response = await clinic.psychiatrist.post(VISITS, json=schedule_body(clinic, clinician_ids=[]))
    assert await error_code(response, 422) == "validation_failed"


async def test_only_clinicians_take_part(clinic: Clinic) -> None:
    for user_id in (clinic.patient_user.user_id, clinic.admin.user_id, 9999):
        response = await clinic.psychiatrist.post(
            VISITS, json=schedule_body(clinic, clinician_ids=[clinic.psychiatrist.user_id, user_id])
        )
        assert await error_code(response, 422) == "not_a_clinician"
        assert (await response.json())["error"]["user_ids"] == [user_id]


async def test_the_clinicians_taking_part_must_be_on_the_care_team(clinic: Clinic) -> None:
    response = await clinic.psychiatrist.post(
        VISITS, json=schedule_body(clinic, clinician_ids=[clinic.outsider.user_id])
    )
    assert await error_code(response, 422) == "clinician_not_on_care_team"
    assert (await response.json())["error"]["user_ids"] == [clinic.outsider.user_id]


async def test_a_care_team_member_schedules_for_colleagues(clinic: Clinic) -> None:
    body = await clinic.schedule(
        clinic.pcp, clinicians=[clinic.psychiatrist.user_id, clinic.pcp.user_id]
    )
    assert {c["user_id"] for c in body["visit"]["clinicians"]} == {
        clinic.psychiatrist.user_id,
        clinic.pcp.user_id,
    }


# --- reading ----------------------------------------------------------------------------------


async def test_the_day_list_shows_my_visits_on_that_day(clinic: Clinic) -> None:
    today = await clinic.schedule(start_in=timedelta(hours=1))
    await clinic.schedule(start_in=timedelta(days=1))
    theirs = await clinic.schedule(clinic.pcp, clinicians=[clinic.pcp.user_id])
    mine = await ok_json(await clinic.psychiatrist.get(VISITS, params={"date": "2026-01-05"}))
    assert mine["date"] == "2026-01-05" and mine["time_zone"] == "UTC"
    assert [v["id"] for v in mine["visits"]] == [today["visit"]["id"]]
    everyone = await ok_json(await clinic.admin.get(VISITS))  # today, by the clinic's clock
    assert {v["id"] for v in everyone["visits"]} == {today["visit"]["id"], theirs["visit"]["id"]}
    nothing = await ok_json(await clinic.outsider.get(VISITS))
    assert nothing["visits"] == []


async def test_the_day_list_follows_the_given_time_zone(clinic: Clinic) -> None:
    # 2026-01-05 09:00 UTC + 16 h = 01:00 UTC on the 6th, which is 20:00 on the 5th in New York.
    late = await clinic.schedule(start_in=timedelta(hours=16))
    utc_next_day = await ok_json(
        await clinic.psychiatrist.get(VISITS, params={"date": "2026-01-06"})
    )
    assert [v["id"] for v in utc_next_day["visits"]] == [late["visit"]["id"]]
    new_york = await ok_json(
        await clinic.psychiatrist.get(
            VISITS, params={"date": "2026-01-05", "tz": "America/New_York"}
        )
    )
    assert [v["id"] for v in new_york["visits"]] == [late["visit"]["id"]]


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"date": "05/01/2026"}, "invalid_date"),
        ({"tz": "Mars/Olympus"}, "invalid_time_zone"),
        ({"tz": "../../etc/passwd"}, "invalid_time_zone"),
    ],
)
async def test_the_day_list_refuses_a_bad_date_or_zone(
    clinic: Clinic, params: dict[str, str], code: str
) -> None:
    assert await error_code(await clinic.psychiatrist.get(VISITS, params=params), 422) == code


async def test_a_visit_is_visible_to_the_care_team_only(clinic: Clinic) -> None:
    visit_id = (await clinic.schedule())["visit"]["id"]
    path = f"{VISITS}/{visit_id}"
    await ok_json(await clinic.pcp.get(path))
    await ok_json(await clinic.admin.get(path))
    assert await error_code(await clinic.outsider.get(path), 403) == "not_on_care_team"
    assert await error_code(await clinic.patient_user.get(path), 403) == "role_forbidden"
    for missing in (f"{VISITS}/9999", f"{VISITS}/x1"):
        assert await error_code(await clinic.pcp.get(missing), 404) == "visit_not_found"


async def test_an_interpreter_is_suggested_for_a_patient_of_another_language(
    clinic: Clinic,
) -> None:
    visit = (await clinic.schedule())["visit"]
    assert visit["interpreter_suggested"] is True
    assert visit["preferred_language"] == "es" and visit["clinic_language"] == "en"
    invited = await clinic.psychiatrist.post(
        f"{VISITS}/{visit['id']}/links",
        json={"guest_role": "interpreter", "display_name": "Interpreter (Spanish)"},
    )
    await ok_json(invited, 201)
    after = await ok_json(await clinic.psychiatrist.get(f"{VISITS}/{visit['id']}"))
    assert after["interpreter_suggested"] is False  # one is invited now


async def test_no_interpreter_is_suggested_when_the_languages_match(clinic: Clinic) -> None:
    english = await create_patient(clinic.psychiatrist, preferred_language="en-US")
    visit = (await clinic.schedule(patient_id=english["id"]))["visit"]
    assert visit["interpreter_suggested"] is False
    assert visit["preferred_language"] == "en-US"


async def test_the_clinic_language_comes_from_the_settings(
    make_app: AppFactory, clock: FakeClock, sign_in: SignIn
) -> None:
    client = await make_app(LIAISON_CLINIC__LANGUAGE="es")
    sign = await _sign_in_on(client, sign_in)
    clinic = await set_up_clinic(client, clock, sign)
    visit = (await clinic.schedule())["visit"]
    assert visit["clinic_language"] == "es"
    assert visit["interpreter_suggested"] is False


async def _sign_in_on(client: Client, sign_in: SignIn) -> SignIn:
    async def on_client(role: Role = Role.PSYCHIATRIST, username: str | None = None) -> Any:
        return await sign_in(role, username, client)

    return on_client


# --- links ------------------------------------------------------------------------------------


async def test_a_guest_gets_a_link_of_their_own(clinic: Clinic) -> None:
    body = await clinic.schedule()
    response = await clinic.pcp.post(
        f"{VISITS}/{body['visit']['id']}/links",
        json={"guest_role": "family", "display_name": "  Maria (sister) "},
    )
    issued = await ok_json(response, 201)
    assert issued["link"]["kind"] == "guest" and issued["link"]["guest_role"] == "family"
    assert issued["link"]["display_name"] == "Maria (sister)"
    assert token_of(issued["url"]) != token_of(body["patient_link"]["url"])


@pytest.mark.parametrize(
    "body",
    [
        {"guest_role": "chaperone", "display_name": "X"},
        {"guest_role": "family", "display_name": ""},
        {"guest_role": "family"},
    ],
)
async def test_a_guest_invitation_is_validated(clinic: Clinic, body: dict[str, str]) -> None:
    visit_id = (await clinic.schedule())["visit"]["id"]
    response = await clinic.psychiatrist.post(f"{VISITS}/{visit_id}/links", json=body)
    assert await error_code(response, 422) == "validation_failed"


async def test_only_the_care_team_invites_guests(clinic: Clinic) -> None:
    visit_id = (await clinic.schedule())["visit"]["id"]
    response = await clinic.outsider.post(
        f"{VISITS}/{visit_id}/links", json={"guest_role": "pcp", "display_name": "Dr Who"}
    )
    assert await error_code(response, 403) == "not_on_care_team"


async def test_reissuing_the_patient_link_revokes_the_earlier_one(
    clinic: Clinic, holders: Holders
) -> None:
    body = await clinic.schedule()
    old_url = body["patient_link"]["url"]
    first = holders()
    await first.join(old_url)
    new = await ok_json(
        await clinic.psychiatrist.post(f"{VISITS}/{body['visit']['id']}/patient-link"), 201
    )
    assert await error_code(await holders().exchange(old_url), 410) == "link_revoked"
    # Whoever had opened the old link is out too.
    assert await error_code(await first.get("/status"), 410) == "link_revoked"
    await holders().join(new["url"])
    detail = await ok_json(await clinic.psychiatrist.get(f"{VISITS}/{body['visit']['id']}"))
    assert [link["state"] for link in detail["links"]] == ["revoked", "opened"]


async def test_revoking_a_link_stops_it(clinic: Clinic, holders: Holders) -> None:
    body = await clinic.schedule()
    link_id = body["patient_link"]["link"]["id"]
    revoked = await ok_json(await clinic.psychiatrist.post(f"/api/v1/links/{link_id}/revoke"))
    assert revoked["state"] == "revoked" and revoked["revoked_at"] is not None
    again = await ok_json(await clinic.psychiatrist.post(f"/api/v1/links/{link_id}/revoke"))
    assert again["revoked_at"] == revoked["revoked_at"]  # a no-op the second time
    response = await holders().exchange(body["patient_link"]["url"])
    assert await error_code(response, 410) == "link_revoked"


async def test_only_the_care_team_revokes_links(clinic: Clinic) -> None:
    link_id = (await clinic.schedule())["patient_link"]["link"]["id"]
    response = await clinic.outsider.post(f"/api/v1/links/{link_id}/revoke")
    assert await error_code(response, 403) == "not_on_care_team"
    for missing in ("/api/v1/links/9999/revoke", "/api/v1/links/abc/revoke"):
        assert await error_code(await clinic.psychiatrist.post(missing), 404) == "link_not_found"


# --- cancelling and no-shows ------------------------------------------------------------------


async def test_a_cancelled_visit_refuses_its_links(clinic: Clinic, holders: Holders) -> None:
    body = await clinic.schedule()
    visit_id = body["visit"]["id"]
    cancelled = await ok_json(await clinic.pcp.post(f"{VISITS}/{visit_id}/cancel"))
    assert cancelled["status"] == "cancelled" and cancelled["cancelled_at"] is not None
    assert cancelled["interpreter_suggested"] is False
    response = await holders().exchange(body["patient_link"]["url"])
    assert await error_code(response, 410) == "visit_cancelled"
    again = await clinic.pcp.post(f"{VISITS}/{visit_id}/cancel")
    assert await error_code(again, 409) == "visit_closed"
    invite = await clinic.pcp.post(
        f"{VISITS}/{visit_id}/links", json={"guest_role": "pcp", "display_name": "Dr Who"}
    )
    assert await error_code(invite, 409) == "visit_closed"
    reissue = await clinic.pcp.post(f"{VISITS}/{visit_id}/patient-link")
    assert await error_code(reissue, 409) == "visit_closed"


async def test_only_the_care_team_cancels(clinic: Clinic) -> None:
    visit_id = (await clinic.schedule())["visit"]["id"]
    response = await clinic.outsider.post(f"{VISITS}/{visit_id}/cancel")
    assert await error_code(response, 403) == "not_on_care_team"


async def test_a_no_show_is_marked_only_after_the_start_time(
    clinic: Clinic, holders: Holders
) -> None:
    body = await clinic.schedule(start_in=timedelta(minutes=10))
    path = f"{VISITS}/{body['visit']['id']}/no-show"
    assert await error_code(await clinic.psychiatrist.post(path), 409) == "visit_not_started_yet"
    await clinic.wait(11)
    marked = await ok_json(await clinic.psychiatrist.post(path))
    assert marked["status"] == "no_show"
    response = await holders().exchange(body["patient_link"]["url"])
    assert await error_code(response, 410) == "visit_ended"
    cancel = await clinic.psychiatrist.post(f"{VISITS}/{body['visit']['id']}/cancel")
    assert await error_code(cancel, 409) == "visit_closed"


@pytest.mark.parametrize(
    ("status", "cancel_code", "no_show_code"),
    [
        (VisitStatus.WAITING, None, "participant_waiting"),
        (VisitStatus.IN_PROGRESS, "visit_started", "visit_started"),
        (VisitStatus.COMPLETED, "visit_closed", "visit_closed"),
    ],
)
async def test_closing_depends_on_where_the_live_visit_is(
    clinic: Clinic, status: VisitStatus, cancel_code: str | None, no_show_code: str
) -> None:
    visit_id = (await clinic.schedule(start_in=timedelta(minutes=-1)))["visit"]["id"]
    await _set_status(clinic, visit_id, status)
    no_show = await clinic.psychiatrist.post(f"{VISITS}/{visit_id}/no-show")
    assert await error_code(no_show, 409) == no_show_code
    cancel = await clinic.psychiatrist.post(f"{VISITS}/{visit_id}/cancel")
    if cancel_code is None:
        assert (await ok_json(cancel))["status"] == "cancelled"
    else:
        assert await error_code(cancel, 409) == cancel_code


async def _set_status(clinic: Clinic, visit_id: int, status: VisitStatus) -> None:
    from server.db.models import Visit

    async with clinic.client.app[SERVICES].db.begin() as db:
        visit = await db.get(Visit, visit_id)
        assert visit is not None
        visit.status = status.value


# --- hooks for the signaling server -----------------------------------------------------------


async def test_the_live_side_hears_of_links_and_closures(clinic: Clinic) -> None:
    heard: list[tuple[Any, ...]] = []
    events = clinic.client.app[SERVICES].visit_events

    async def issued(visit_id: int, pid: str, kind: ParticipantKind, name: str) -> None:
        heard.append(("issued", visit_id, pid, kind, name))

    async def revoked(visit_id: int, pid: str) -> None:
        heard.append(("revoked", visit_id, pid))

    async def closed(visit_id: int, status: VisitStatus) -> None:
        heard.append(("closed", visit_id, status))

    async def broken(visit_id: int, status: VisitStatus) -> None:
        raise RuntimeError("a failing hook undoes nothing")

    events.link_issued.append(issued)
    events.link_revoked.append(revoked)
    events.visit_closed.extend([broken, closed])
    body = await clinic.schedule()
    visit_id, first = body["visit"]["id"], body["patient_link"]["link"]["id"]
    new = await ok_json(await clinic.psychiatrist.post(f"{VISITS}/{visit_id}/patient-link"), 201)
    second = new["link"]["id"]
    cancelled = await clinic.psychiatrist.post(f"{VISITS}/{visit_id}/cancel")
    assert (await ok_json(cancelled))["status"] == "cancelled"
    assert heard == [
        ("issued", visit_id, f"link:{first}", ParticipantKind.PATIENT, "Jordan A."),
        ("revoked", visit_id, f"link:{first}"),
        ("issued", visit_id, f"link:{second}", ParticipantKind.PATIENT, "Jordan A."),
        ("closed", visit_id, VisitStatus.CANCELLED),
    ]


async def test_a_visit_for_a_time_long_past_gets_no_new_link(clinic: Clinic) -> None:
    visit_id = (await clinic.schedule(start_in=timedelta(minutes=0), duration=10))["visit"]["id"]
    await clinic.wait(10 + 60)  # the visit's end and the links' grace period are over
    response = await clinic.psychiatrist.post(f"{VISITS}/{visit_id}/patient-link")
    assert await error_code(response, 409) == "visit_time_passed"
