"""What a curbside consult writes to the shared record, inside the transaction that saves its
routing state (so both commit or neither): the call's visit, the consultant's place on the
care team, the Encounter (a curbside call's, or an e-consult's for a written answer), the
written answer, and the audit events that go with them (returned; the caller appends them
last, as ``AuditLog.record_in`` asks).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from server.audit import Action, Event
from server.audit import Actor as AuditActor
from server.auth.roles import Role
from server.db.models import CareTeamMember, ConsultAnswer, Encounter, User, Visit
from server.db.models import ConsultRequest as RequestRow
from server.record.access import Actor, on_care_team
from server.record.entries import EncounterKind
from server.record.guard import actor_of
from server.record.patients import TeamRole
from server.visits.lifecycle import Attendee, participants_json, record_encounter
from server.visits.participants import ParticipantKind, user_participant
from server.visits.service import insert_visit
from signaling import curbside as cs

CALL_REASON = "Curbside consult"


def audit_event(
    action: Action,
    who: Actor | AuditActor | None,
    state: cs.CurbsideState,
    target: str | None = None,
    **detail: Any,
) -> Event:
    """An event about a consult (``consult:<id>`` unless ``target``); ``who`` None: system."""
    if who is None:
        actor = AuditActor.system()
    elif isinstance(who, AuditActor):
        actor = who
    else:
        actor = actor_of(who)
    return Event(
        action,
        actor,
        patient_id=state.request.patient_id,
        target=target or f"consult:{state.request.id}",
        detail=detail,
    )


def consultant_actor(user_id: int) -> AuditActor:
    return AuditActor.user(user_id, Role.PSYCHIATRIST.value)


async def names(db: AsyncSession, user_ids: Sequence[int] | set[int]) -> dict[int, str]:
    rows = await db.execute(select(User.id, User.display_name).where(User.id.in_(set(user_ids))))
    return {uid: name for uid, name in rows.all()}


async def start_call(
    db: AsyncSession, state: cs.CurbsideState, consultant_id: int, minutes: int, now: datetime
) -> tuple[int, list[Event]]:
    """The winner's call: a visit starting now with the PCP and the consultant as its
    clinicians (both join its room as clinicians, no waiting room)."""
    request = state.request
    visit = await insert_visit(
        db,
        request.patient_id,
        now,
        minutes,
        [request.pcp_id, consultant_id],
        created_by=consultant_id,
        now=now,
        reason=CALL_REASON,
    )
    await _set(db, request.id, visit_id=visit.id)
    events = await join_care_team(db, request.patient_id, consultant_id, now)
    consultant = consultant_actor(consultant_id)
    return visit.id, [
        *events,
        audit_event(Action.CURBSIDE_ACCEPT, consultant, state, visit_id=visit.id),
        audit_event(
            Action.VISIT_CREATE,
            consultant,
            state,
            f"visit:{visit.id}",
            kind=EncounterKind.CURBSIDE.value,
        ),
    ]


async def record_call(
    db: AsyncSession, visit_id: int, state: cs.CurbsideState, *, ended: bool
) -> int:
    """Open (or end) the call's Encounter, of kind curbside; returns its id."""
    visit = await db.get(Visit, visit_id)
    assert visit is not None and state.call_started_at is not None
    parties = [state.request.pcp_id, *([state.accepted_by] if state.accepted_by else [])]
    encounter = await record_encounter(
        db,
        visit,
        EncounterKind.CURBSIDE.value,
        state.call_started_at,
        attendance=await _attendees(db, parties, state.call_started_at),
        ended_at=state.call_ended_at if ended else None,
    )
    await _set(db, state.request.id, encounter_id=encounter.id)
    return encounter.id


async def record_answer(
    db: AsyncSession,
    state: cs.CurbsideState,
    author_id: int,
    fields: dict[str, Any],
    now: datetime,
) -> list[Event]:
    """A written answer, its e-consult Encounter, and the author on the care team."""
    request = state.request
    db.add(ConsultAnswer(request_id=request.id, author_id=author_id, answered_at=now, **fields))
    encounter = Encounter(
        patient_id=request.patient_id,
        kind=EncounterKind.ECONSULT.value,
        started_at=now,
        ended_at=now,
        participants=participants_json(await _attendees(db, [request.pcp_id, author_id], now)),
    )
    db.add(encounter)
    await db.flush()
    await _set(db, request.id, encounter_id=encounter.id)
    return await join_care_team(db, request.patient_id, author_id, now)


async def set_note(db: AsyncSession, request_id: int, note_id: int) -> None:
    await _set(db, request_id, note_id=note_id)


async def join_care_team(
    db: AsyncSession, patient_id: int, user_id: int, now: datetime
) -> list[Event]:
    """The consultant joins the patient's care team (to write in the shared record), unless
    already on it."""
    if await on_care_team(db, patient_id, user_id):
        return []
    db.add(
        CareTeamMember(
            patient_id=patient_id,
            user_id=user_id,
            role_on_team=TeamRole.PSYCHIATRIST.value,
            added_at=now,
            added_by=user_id,
        )
    )
    await db.flush()
    return [
        Event(
            Action.CARE_TEAM_CHANGE,
            consultant_actor(user_id),
            patient_id=patient_id,
            target=f"user:{user_id}",
            detail={
                "change": "add",
                "role_on_team": TeamRole.PSYCHIATRIST.value,
                "via": "curbside",
            },
        )
    ]


async def _attendees(db: AsyncSession, user_ids: Sequence[int], at: datetime) -> list[Attendee]:
    return [
        Attendee(user_participant(uid), ParticipantKind.CLINICIAN, name, at)
        for uid, name in (await names(db, user_ids)).items()
    ]


async def _set(db: AsyncSession, request_id: int, **values: int) -> None:
    await db.execute(update(RequestRow).where(RequestRow.id == request_id).values(**values))
