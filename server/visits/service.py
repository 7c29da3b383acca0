"""Scheduling video visits and managing their join links: the clinicians' side.

Who may act is decided by the record's access rule (server.record.access): an admin, or a
clinician on the patient's care team. The clinicians taking part in a visit must be on that care
team too. A join link's token is returned once, inside its URL, when the link is issued; only
its hash is stored.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from server.audit import Action, AuditLog, Event
from server.audit.events import DetailValue
from server.auth.roles import Role
from server.auth.tokens import new_token, token_hash
from server.clock import Clock
from server.db.models import Patient, User, Visit, VisitClinician, VisitLink
from server.errors import Conflict, Forbidden, NotFound, ValidationFailed
from server.record.access import Actor, on_care_team, require_record_access
from server.record.demographics import needs_interpreter
from server.record.patients import audit_actor
from server.settings import Settings
from server.visits.events import VisitEvents
from server.visits.links import (
    GuestRole,
    LinkKind,
    LinkState,
    RevokedReason,
    facts_of,
    join_url,
    link_expiry,
    link_state,
)
from server.visits.participants import (
    ParticipantKind,
    VisitParticipantIdentity,
    link_participant,
    user_participant,
)
from server.visits.rules import check_duration, checked_start, day_bounds
from server.visits.status import VisitStatus, check_cancel, check_no_show

log = logging.getLogger("liaison.visits")


@dataclass(frozen=True)
class NewVisit:
    patient_id: int
    scheduled_start: datetime
    duration_minutes: int
    clinician_ids: Sequence[int]
    reason: str | None = None


@dataclass(frozen=True)
class LinkView:
    id: int
    visit_id: int
    kind: LinkKind
    guest_role: GuestRole | None
    display_name: str
    state: LinkState
    expires_at: datetime
    created_at: datetime
    used_at: datetime | None
    revoked_at: datetime | None


@dataclass(frozen=True)
class IssuedLink:
    """A new link and its URL: the only time the token is ever available."""

    link: LinkView
    url: str


@dataclass(frozen=True)
class ReissuedLink:
    """A fresh patient link, and the ids of the patient links it replaced."""

    issued: IssuedLink
    revoked: list[int]


@dataclass(frozen=True)
class VisitView:
    visit: Visit
    patient: Patient
    clinicians: list[User]
    links: list[LinkView]
    # The patient's language is not the clinic's and no interpreter link is live yet.
    interpreter_suggested: bool

    @property
    def status(self) -> VisitStatus:
        return VisitStatus(self.visit.status)

    @property
    def ends_at(self) -> datetime:
        return self.visit.scheduled_start + timedelta(minutes=self.visit.duration_minutes)


@dataclass(frozen=True)
class RosterEntry:
    participant_id: str
    kind: ParticipantKind
    display_name: str


@dataclass(frozen=True)
class Roster:
    """Who may be in a visit's room: its clinicians and the holders of its live links."""

    visit_id: int
    status: VisitStatus
    clinicians: list[RosterEntry]
    links: list[RosterEntry]


def patient_display_name(patient: Patient) -> str:
    """How the patient appears to the others in the call: given name and initial."""
    return f"{patient.given_name} {patient.family_name[:1]}.".strip()


class VisitService:
    def __init__(
        self,
        db: async_sessionmaker[AsyncSession],
        settings: Settings,
        clock: Clock,
        events: VisitEvents,
        audit: AuditLog,
    ) -> None:
        self._db = db
        self._audit = audit
        self._public_url = settings.server.public_url
        self._grace = timedelta(minutes=settings.visits.link_grace_minutes)
        self._clinic_language = settings.clinic.language
        self._clock = clock
        self._events = events

    @property
    def clinic_language(self) -> str:
        return self._clinic_language

    # --- scheduling ---------------------------------------------------------------------------

    async def schedule(self, who: Actor, new: NewVisit) -> tuple[VisitView, IssuedLink]:
        """Schedule a visit and issue the patient's join link."""
        now = self._clock()
        async with self._db.begin() as db:
            patient = await require_record_access(db, who, new.patient_id, now=now)
            start = checked_start(new.scheduled_start, now)
            check_duration(new.duration_minutes)
            clinicians = await _checked_clinicians(db, patient.id, new.clinician_ids)
            visit = await insert_visit(
                db,
                patient.id,
                start,
                new.duration_minutes,
                [c.id for c in clinicians],
                created_by=who.user_id,
                now=now,
                reason=new.reason,
            )
            token, link = await self._issue(
                db,
                visit,
                LinkKind.PATIENT,
                None,
                patient_display_name(patient),
                who.user_id,
                now,
            )
            view = (await self._views(db, [visit], now))[0]
            await self._audit.record_in(
                db,
                _event(Action.VISIT_CREATE, who, visit, f"visit:{visit.id}"),
                _event(Action.VISIT_LINK_CREATE, who, visit, f"link:{link.id}", kind="patient"),
            )
        log.info("visit scheduled", extra={"visit_id": visit.id, "by": who.user_id})
        issued = self._issued(link, visit, token, now)
        await self._events.issued(
            visit.id, link_participant(link.id), ParticipantKind.PATIENT, link.display_name
        )
        return view, issued

    async def list_for_day(self, who: Actor, day: date, zone: ZoneInfo) -> list[VisitView]:
        """The caller's visits on a local calendar day (an admin's: everyone's)."""
        start, end = day_bounds(day, zone)
        stmt = (
            select(Visit)
            .where(Visit.scheduled_start >= start, Visit.scheduled_start < end)
            .order_by(Visit.scheduled_start, Visit.id)
        )
        if who.role is not Role.ADMIN:
            stmt = stmt.join(VisitClinician, VisitClinician.visit_id == Visit.id).where(
                VisitClinician.user_id == who.user_id
            )
        async with self._db() as db:
            visits = list((await db.execute(stmt)).scalars())
            return await self._views(db, visits, self._clock())

    async def detail(self, who: Actor, visit_id: int) -> VisitView:
        now = self._clock()
        async with self._db() as db:
            visit = await _visit_for(db, who, visit_id, now)
            view = (await self._views(db, [visit], now))[0]
        await self._audit.record(_event(Action.RECORD_READ, who, visit, f"visit:{visit_id}"))
        return view

    # --- links --------------------------------------------------------------------------------

    async def invite_guest(
        self, who: Actor, visit_id: int, guest_role: GuestRole, display_name: str
    ) -> IssuedLink:
        """A link of their own for an interpreter, a family member or a PCP."""
        now = self._clock()
        async with self._db.begin() as db:
            visit = await _visit_for(db, who, visit_id, now, lock=True)
            token, link = await self._issue(
                db, visit, LinkKind.GUEST, guest_role, display_name, who.user_id, now
            )
            await self._audit.record_in(
                db,
                _event(
                    Action.VISIT_LINK_CREATE,
                    who,
                    visit,
                    f"link:{link.id}",
                    kind="guest",
                    guest_role=guest_role.value,
                ),
            )
        log.info(
            "guest invited",
            extra={"visit_id": visit_id, "link_id": link.id, "guest_role": guest_role.value},
        )
        await self._events.issued(
            visit_id, link_participant(link.id), ParticipantKind.GUEST, link.display_name
        )
        return self._issued(link, visit, token, now)

    async def reissue_patient_link(self, who: Actor, visit_id: int) -> IssuedLink:
        """A fresh patient link; every earlier one stops working."""
        now = self._clock()
        async with self._db.begin() as db:
            visit = await _visit_for(db, who, visit_id, now, lock=True)
            patient = await db.get(Patient, visit.patient_id)
            assert patient is not None
            reissued = await self.reissue_patient_link_in(
                db, visit, patient, created_by=who.user_id, now=now
            )
            await self._audit.record_in(
                db,
                _event(
                    Action.VISIT_LINK_CREATE,
                    who,
                    visit,
                    f"link:{reissued.issued.link.id}",
                    kind="patient",
                    revoked=[f"link:{i}" for i in reissued.revoked],
                ),
            )
        log.info(
            "patient link reissued",
            extra={"visit_id": visit_id, "link_id": reissued.issued.link.id},
        )
        await self.announce_reissued(reissued)
        return reissued.issued

    async def reissue_patient_link_in(
        self, db: AsyncSession, visit: Visit, patient: Patient, *, created_by: int, now: datetime
    ) -> ReissuedLink:
        """Revoke the visit's live patient links and issue a fresh one, in the caller's
        transaction. The caller has decided who may, writes the audit trail and, once committed,
        calls :meth:`announce_reissued`."""
        revoked = await _revoke_where(
            db,
            now,
            RevokedReason.REISSUED,
            VisitLink.visit_id == visit.id,
            VisitLink.kind == LinkKind.PATIENT.value,
        )
        token, link = await self._issue(
            db, visit, LinkKind.PATIENT, None, patient_display_name(patient), created_by, now
        )
        return ReissuedLink(self._issued(link, visit, token, now), revoked)

    async def announce_reissued(self, reissued: ReissuedLink) -> None:
        """Tell the visit's room that the revoked links' holders are out and who may now join."""
        link = reissued.issued.link
        await self._events.revoked(link.visit_id, [link_participant(i) for i in reissued.revoked])
        await self._events.issued(
            link.visit_id, link_participant(link.id), ParticipantKind.PATIENT, link.display_name
        )

    async def revoke_link(self, who: Actor, link_id: int) -> LinkView:
        """Withdraw a link; its holder's visit session ends with it. Revoking twice is a no-op."""
        now = self._clock()
        async with self._db.begin() as db:
            link = await db.get(VisitLink, link_id)
            if link is None:
                raise NotFound("No such link.", code="link_not_found")
            visit = await _visit_for(db, who, link.visit_id, now, lock=True)
            revoked = await _revoke_where(db, now, RevokedReason.REVOKED, VisitLink.id == link_id)
            await db.refresh(link)
            if revoked:
                await self._audit.record_in(
                    db,
                    _event(Action.RECORD_WRITE, who, visit, f"link:{link_id}", change="revoke"),
                )
        if revoked:
            log.info("link revoked", extra={"visit_id": visit.id, "link_id": link_id})
            await self._events.revoked(visit.id, [link_participant(link_id)])
        return _link_view(link, visit, now)

    # --- closing without a call ---------------------------------------------------------------

    async def cancel(self, who: Actor, visit_id: int) -> VisitView:
        return await self._close(who, visit_id, VisitStatus.CANCELLED)

    async def mark_no_show(self, who: Actor, visit_id: int) -> VisitView:
        return await self._close(who, visit_id, VisitStatus.NO_SHOW)

    async def _close(self, who: Actor, visit_id: int, to: VisitStatus) -> VisitView:
        now = self._clock()
        check = check_cancel if to is VisitStatus.CANCELLED else check_no_show
        async with self._db.begin() as db:
            visit = await _visit_for(db, who, visit_id, now, lock=True)
            check(VisitStatus(visit.status))
            if to is VisitStatus.NO_SHOW and now < visit.scheduled_start:
                raise Conflict(
                    "The visit's start time has not come yet.", code="visit_not_started_yet"
                )
            # Compare-and-set on the status the check saw; bumping room_version makes a
            # concurrent save of the live room fail and reload, so it sees the visit closed.
            changed = (
                await db.execute(
                    update(Visit)
                    .where(Visit.id == visit_id, Visit.status == visit.status)
                    .values(
                        status=to.value,
                        cancelled_at=now if to is VisitStatus.CANCELLED else None,
                        room_version=Visit.room_version + 1,
                    )
                    .returning(Visit.id)
                    .execution_options(synchronize_session=False)
                )
            ).scalar_one_or_none()
            if changed is None:
                raise Conflict("The visit changed meanwhile; reload it.", code="visit_changed")
            await db.refresh(visit)
            view = (await self._views(db, [visit], now))[0]
            await self._audit.record_in(
                db,
                _event(Action.RECORD_WRITE, who, visit, f"visit:{visit_id}", status=to.value),
            )
        log.info("visit closed", extra={"visit_id": visit_id, "status": to.value})
        await self._events.closed(visit_id, to)
        return view

    # --- for the signaling server -------------------------------------------------------------

    async def roster(self, visit_id: int) -> Roster:
        """The visit's clinicians and the holders of its live (unrevoked, unexpired) links."""
        now = self._clock()
        async with self._db() as db:
            visit = await db.get(Visit, visit_id)
            if visit is None:
                raise NotFound("No such visit.", code="visit_not_found")
            clinicians = await _clinicians_of(db, [visit_id])
            links = await _links_of(db, [visit_id])
        return Roster(
            visit_id=visit_id,
            status=VisitStatus(visit.status),
            clinicians=[
                RosterEntry(user_participant(u.id), ParticipantKind.CLINICIAN, u.display_name)
                for u in clinicians.get(visit_id, [])
            ],
            links=[
                RosterEntry(
                    link_participant(link.id), ParticipantKind(link.kind), link.display_name
                )
                for link in links.get(visit_id, [])
                if link_state(facts_of(link, visit.status), now)
                in (LinkState.ACTIVE, LinkState.OPENED)
            ],
        )

    async def clinician_identity(self, who: Actor, visit_id: int) -> VisitParticipantIdentity:
        """A signed-in user's identity in a visit's room: only the visit's own clinicians."""
        async with self._db() as db:
            visit = await db.get(Visit, visit_id)
            if visit is None:
                raise NotFound("No such visit.", code="visit_not_found")
            row = await db.execute(
                select(User)
                .join(VisitClinician, VisitClinician.user_id == User.id)
                .where(VisitClinician.visit_id == visit_id, User.id == who.user_id)
            )
            user = row.scalar_one_or_none()
        if user is None or not who.role.is_clinician:
            raise Forbidden("You are not on this visit.", code="not_on_visit")
        return VisitParticipantIdentity(
            visit_id=visit_id,
            kind=ParticipantKind.CLINICIAN,
            display_name=user.display_name,
            participant_id=user_participant(user.id),
            ready_for_room=True,
            user_id=user.id,
        )

    # --- helpers ------------------------------------------------------------------------------

    async def _issue(
        self,
        db: AsyncSession,
        visit: Visit,
        kind: LinkKind,
        guest_role: GuestRole | None,
        display_name: str,
        created_by: int,
        now: datetime,
    ) -> tuple[str, VisitLink]:
        if VisitStatus(visit.status).is_terminal:
            raise Conflict("This visit is over; no new links can be issued.", code="visit_closed")
        expires = link_expiry(visit.scheduled_start, visit.duration_minutes, self._grace)
        if expires <= now:
            raise Conflict(
                "This visit's time has passed; schedule a new visit.", code="visit_time_passed"
            )
        token = new_token()
        link = VisitLink(
            visit_id=visit.id,
            token_hash=token_hash(token),
            kind=kind.value,
            guest_role=guest_role.value if guest_role is not None else None,
            display_name=display_name,
            expires_at=expires,
            failed_identity_checks=0,
            created_by=created_by,
            created_at=now,
        )
        db.add(link)
        await db.flush()
        return token, link

    def _issued(self, link: VisitLink, visit: Visit, token: str, now: datetime) -> IssuedLink:
        return IssuedLink(_link_view(link, visit, now), join_url(self._public_url, token))

    async def _views(self, db: AsyncSession, visits: list[Visit], now: datetime) -> list[VisitView]:
        """Views of several visits in a fixed number of queries."""
        if not visits:
            return []
        ids = [v.id for v in visits]
        patients = {
            p.id: p
            for p in (
                await db.execute(
                    select(Patient).where(Patient.id.in_({v.patient_id for v in visits}))
                )
            ).scalars()
        }
        clinicians = await _clinicians_of(db, ids)
        links = await _links_of(db, ids)
        views = []
        for visit in visits:
            patient = patients[visit.patient_id]
            link_views = [_link_view(link, visit, now) for link in links.get(visit.id, [])]
            interpreter_live = any(
                lv.guest_role is GuestRole.INTERPRETER
                and lv.state in (LinkState.ACTIVE, LinkState.OPENED)
                for lv in link_views
            )
            views.append(
                VisitView(
                    visit=visit,
                    patient=patient,
                    clinicians=clinicians.get(visit.id, []),
                    links=link_views,
                    interpreter_suggested=(
                        needs_interpreter(patient.preferred_language, self._clinic_language)
                        and not interpreter_live
                        and not VisitStatus(visit.status).is_terminal
                    ),
                )
            )
        return views


async def insert_visit(
    db: AsyncSession,
    patient_id: int,
    start: datetime,
    duration_minutes: int,
    clinician_ids: Sequence[int],
    *,
    created_by: int,
    now: datetime,
    reason: str | None = None,
) -> Visit:
    """A new visit and its clinicians, in the caller's transaction. The caller has checked who
    may create it and who may take part: :meth:`VisitService.schedule` for scheduled visits,
    the curbside service for the call that starts when a psychiatrist accepts."""
    visit = Visit(
        patient_id=patient_id,
        scheduled_start=start,
        duration_minutes=duration_minutes,
        status=VisitStatus.SCHEDULED.value,
        reason=reason,
        created_by=created_by,
        created_at=now,
        room_version=0,
    )
    db.add(visit)
    await db.flush()
    db.add_all(VisitClinician(visit_id=visit.id, user_id=uid) for uid in clinician_ids)
    await db.flush()
    return visit


def _event(action: Action, who: Actor, visit: Visit, target: str, **detail: DetailValue) -> Event:
    return Event(
        action, audit_actor(who), patient_id=visit.patient_id, target=target, detail=detail
    )


async def _visit_for(
    db: AsyncSession, who: Actor, visit_id: int, now: datetime, *, lock: bool = False
) -> Visit:
    """The visit, if ``who`` may act on its patient's record. ``lock`` serialises changes to
    one visit (a row lock on PostgreSQL; SQLite serialises every write anyway)."""
    stmt = select(Visit).where(Visit.id == visit_id)
    if lock:
        stmt = stmt.with_for_update()
    visit = (await db.execute(stmt)).scalar_one_or_none()
    if visit is None:
        raise NotFound("No such visit.", code="visit_not_found")
    await require_record_access(db, who, visit.patient_id, now=now)
    return visit


async def _checked_clinicians(
    db: AsyncSession, patient_id: int, clinician_ids: Sequence[int]
) -> list[User]:
    ids = list(dict.fromkeys(clinician_ids))
    if not ids:
        raise ValidationFailed("Choose at least one clinician.", code="no_clinicians")
    users = {u.id: u for u in (await db.execute(select(User).where(User.id.in_(ids)))).scalars()}
    not_clinicians = [
        i
        for i in ids
        if i not in users
        or users[i].disabled_at is not None
        or not Role(users[i].role).is_clinician
    ]
    if not_clinicians:
        raise ValidationFailed(
            "Every clinician taking part must be an active clinician's account.",
            code="not_a_clinician",
            extra={"user_ids": not_clinicians},
        )
    off_team = [i for i in ids if not await on_care_team(db, patient_id, i)]
    if off_team:
        raise ValidationFailed(
            "Every clinician taking part must be on the patient's care team.",
            code="clinician_not_on_care_team",
            extra={"user_ids": off_team},
        )
    return [users[i] for i in ids]


async def _revoke_where(
    db: AsyncSession, now: datetime, reason: RevokedReason, *where: ColumnElement[bool]
) -> list[int]:
    """Revoke the matching links that are not revoked yet; returns their ids."""
    result = await db.execute(
        update(VisitLink)
        .where(VisitLink.revoked_at.is_(None), *where)
        .values(revoked_at=now, revoked_reason=reason.value)
        .returning(VisitLink.id)
        .execution_options(synchronize_session=False)
    )
    return list(result.scalars())


async def _clinicians_of(db: AsyncSession, visit_ids: Iterable[int]) -> dict[int, list[User]]:
    rows = await db.execute(
        select(VisitClinician.visit_id, User)
        .join(User, VisitClinician.user_id == User.id)
        .where(VisitClinician.visit_id.in_(list(visit_ids)))
        .order_by(User.display_name, User.id)
    )
    out: dict[int, list[User]] = {}
    for visit_id, user in rows:
        out.setdefault(visit_id, []).append(user)
    return out


async def _links_of(db: AsyncSession, visit_ids: Iterable[int]) -> dict[int, list[VisitLink]]:
    rows = await db.execute(
        select(VisitLink)
        .where(VisitLink.visit_id.in_(list(visit_ids)))
        .order_by(VisitLink.created_at, VisitLink.id)
    )
    out: dict[int, list[VisitLink]] = {}
    for link in rows.scalars():
        out.setdefault(link.visit_id, []).append(link)
    return out


def _link_view(link: VisitLink, visit: Visit, now: datetime) -> LinkView:
    return LinkView(
        id=link.id,
        visit_id=link.visit_id,
        kind=LinkKind(link.kind),
        guest_role=GuestRole(link.guest_role) if link.guest_role else None,
        display_name=link.display_name,
        state=link_state(facts_of(link, visit.status), now),
        expires_at=link.expires_at,
        created_at=link.created_at,
        used_at=link.used_at,
        revoked_at=link.revoked_at,
    )
