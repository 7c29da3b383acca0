"""The link holder's side: exchanging a join link once for a visit session, then the checks
before the waiting room (server.visits.steps), and the identity the signaling server binds a
socket to.

A visit session is an opaque token in an HttpOnly cookie, stored hashed, that lasts until the
link expires. It is only as good as its link: revoking, replacing or locking the link, or the
visit being cancelled or ending, ends it too. Nothing here returns more about the patient than
the holder needs: the patient's given name to a patient link, never a date of birth.

Errors (all from server.errors)::

    NotFound         link_not_found                 no link has this token
    Gone             link_revoked, link_locked, link_expired, link_used,
                     visit_cancelled, visit_ended
    Unauthenticated  visit_session_missing, visit_session_ended, identity_mismatch
    Conflict         step_not_needed, step_out_of_order, consent_outdated
    ValidationFailed consent_not_accepted
    TooManyRequests  identity_throttled
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from server.audit import Action, Actor, AuditLog, Event, Outcome
from server.audit.events import DetailValue
from server.auth.throttle import LoginThrottle
from server.auth.tokens import new_token, token_hash
from server.clock import Clock
from server.db.models import (
    Patient,
    User,
    Visit,
    VisitClinician,
    VisitJoin,
    VisitLink,
    VisitSession,
)
from server.errors import (
    Conflict,
    Gone,
    NotFound,
    TooManyRequests,
    Unauthenticated,
    ValidationFailed,
)
from server.settings import VisitSettings
from server.visits.consent import ConsentText, consent_for
from server.visits.events import VisitEvents
from server.visits.links import LinkKind, RevokedReason, facts_of, link_refusal
from server.visits.participants import ParticipantKind, VisitParticipantIdentity, link_participant
from server.visits.status import VisitStatus
from server.visits.steps import JoinProgress, JoinStep, completed, remaining, require_turn

log = logging.getLogger("liaison.visits.join")


@dataclass(frozen=True)
class JoinVisit:
    """What a link holder is told about the visit."""

    id: int
    starts_at: datetime
    duration_minutes: int
    status: VisitStatus
    clinician_names: tuple[str, ...]
    patient_first_name: str | None  # patient links only


@dataclass(frozen=True)
class JoinState:
    identity: VisitParticipantIdentity
    visit: JoinVisit
    steps_completed: tuple[JoinStep, ...]
    steps_remaining: tuple[JoinStep, ...]
    session_expires_at: datetime


@dataclass(frozen=True)
class Exchanged:
    # The new visit session's token for the cookie; None when the browser already held the
    # session for this very link (the link was opened twice in the same browser).
    session_token: str | None
    state: JoinState


@dataclass(frozen=True)
class Location:
    callback_phone: str
    address: str | None = None
    state: str | None = None


@dataclass
class _Holder:
    session: VisitSession
    link: VisitLink
    visit: Visit
    join: VisitJoin

    @property
    def kind(self) -> LinkKind:
        return LinkKind(self.link.kind)

    @property
    def consent(self) -> ConsentText:
        return consent_for(self.kind)

    @property
    def progress(self) -> JoinProgress:
        return JoinProgress(
            identity_verified=self.join.identity_verified_at is not None,
            consent_version=self.join.consent_version,
            location_recorded=self.join.location_recorded_at is not None,
        )


class JoinService:
    def __init__(
        self,
        db: async_sessionmaker[AsyncSession],
        settings: VisitSettings,
        clock: Clock,
        throttle: LoginThrottle,
        events: VisitEvents,
        audit: AuditLog,
    ) -> None:
        self._db = db
        self._audit = audit
        self._settings = settings
        self._clock = clock
        self._throttle = throttle
        self._events = events

    # --- the one-time exchange ----------------------------------------------------------------

    async def exchange(self, token: str, held_session: str | None = None) -> Exchanged:
        """Trade a link's token for a visit session. Works once per link."""
        now = self._clock()
        async with self._db.begin() as db:
            found = (
                await db.execute(
                    select(VisitLink, Visit)
                    .join(Visit, VisitLink.visit_id == Visit.id)
                    .where(VisitLink.token_hash == token_hash(token))
                )
            ).first()
            if found is None:
                raise NotFound(
                    "This link is not valid. Check that you opened the whole link from your "
                    "message, or contact the clinic.",
                    code="link_not_found",
                )
            link, visit = found
            if held_session:
                again = await self._holder_of(db, held_session)
                if again is not None and again.link.id == link.id:
                    _check_usable(again, now)
                    return Exchanged(None, await self._state(db, again))
            problem = link_refusal(facts_of(link, visit.status), now, first_use=True)
            if problem is not None:
                raise problem
            # The one-time use: only the first of any concurrent exchanges changes the row.
            claimed = (
                await db.execute(
                    update(VisitLink)
                    .where(
                        VisitLink.id == link.id,
                        VisitLink.used_at.is_(None),
                        VisitLink.revoked_at.is_(None),
                    )
                    .values(used_at=now)
                    .returning(VisitLink.id)
                    .execution_options(synchronize_session=False)
                )
            ).scalar_one_or_none()
            if claimed is None:  # another exchange (or a revocation) got there first
                await db.refresh(link)
                problem = link_refusal(facts_of(link, visit.status), now, first_use=True)
                raise problem or Gone("This link has already been opened.", code="link_used")
            session_token = new_token()
            session = VisitSession(
                token_hash=token_hash(session_token),
                visit_link_id=link.id,
                created_at=now,
                expires_at=link.expires_at,
            )
            join = VisitJoin(visit_link_id=link.id, created_at=now)
            db.add_all([session, join])
            await db.flush()
            holder = _Holder(session, link, visit, join)
            state = await self._state(db, holder)
            await self._audit.record_in(db, _joined(holder, "exchange"))
        log.info("join link exchanged", extra={"visit_id": visit.id, "link_id": link.id})
        return Exchanged(session_token, state)

    # --- the visit session --------------------------------------------------------------------

    async def resolve_visit_session(self, token: str | None) -> VisitParticipantIdentity:
        """The identity behind a visit-session token (the ``liaison_visit`` cookie), or the
        error saying why it is no longer good. The signaling server calls this on connect."""
        return (await self.status(token)).identity

    async def status(self, token: str | None) -> JoinState:
        async with self._db() as db:
            holder = await self._load(db, token)
            return await self._state(db, holder)

    async def consent_text(self, token: str | None) -> ConsentText:
        async with self._db() as db:
            return (await self._load(db, token)).consent

    # --- the steps ----------------------------------------------------------------------------

    async def verify_identity(self, token: str | None, born: date, address: str) -> JoinState:
        """A patient link's date-of-birth check. Wrong answers count towards locking the link."""
        async with self._db() as db:
            holder = await self._load(db, token)
            require_turn(holder.kind, holder.progress, JoinStep.IDENTITY, holder.consent.version)
            if holder.progress.identity_verified:
                return await self._state(db, holder)
        key = f"visitlink:{holder.link.id}"
        try:
            await self._throttle.check(key, address)
        except TooManyRequests as exc:
            raise TooManyRequests(
                "Too many tries. Wait a few minutes, then try again.",
                code="identity_throttled",
                retry_after=exc.retry_after,
            ) from None
        now = self._clock()
        async with self._db.begin() as db:
            holder = await self._load(db, token)
            patient = await db.get(Patient, holder.visit.patient_id)
            assert patient is not None
            if patient.date_of_birth == born:
                holder.join.identity_verified_at = now
                await self._throttle.clear_account(db, key)
                await db.flush()
                await self._audit.record_in(db, _joined(holder, "identity"))
                log.info("identity verified", extra={"link_id": holder.link.id})
                return await self._state(db, holder)
            failures = (
                await db.execute(
                    update(VisitLink)
                    .where(VisitLink.id == holder.link.id)
                    .values(failed_identity_checks=VisitLink.failed_identity_checks + 1)
                    .returning(VisitLink.failed_identity_checks)
                    .execution_options(synchronize_session=False)
                )
            ).scalar_one()
            locked = failures >= self._settings.identity_attempts
            if locked:
                await db.execute(
                    update(VisitLink)
                    .where(VisitLink.id == holder.link.id, VisitLink.revoked_at.is_(None))
                    .values(revoked_at=now, revoked_reason=RevokedReason.IDENTITY_LOCKOUT.value)
                    .execution_options(synchronize_session=False)
                )
        await self._throttle.record_failure(key, address)
        await self._audit.record(
            _joined(holder, "identity", Outcome.DENIED, address=address, locked=locked)
        )
        log.info(
            "identity check failed",
            extra={"link_id": holder.link.id, "failures": failures, "locked": locked},
        )
        if locked:
            await self._events.revoked(holder.visit.id, [link_participant(holder.link.id)])
            raise Gone(
                "That date of birth does not match, and this link is now locked. Contact the "
                "clinic for a new link.",
                code="link_locked",
            )
        raise Unauthenticated(
            "That date of birth does not match our records. Check it and try again.",
            code="identity_mismatch",
            extra={"attempts_remaining": self._settings.identity_attempts - failures},
        )

    async def record_consent(self, token: str | None, version: str, accepted: bool) -> JoinState:
        async with self._db.begin() as db:
            holder = await self._load(db, token)
            consent = holder.consent
            require_turn(holder.kind, holder.progress, JoinStep.CONSENT, consent.version)
            if not accepted:
                raise ValidationFailed(
                    "A video visit needs your consent. If you do not want one, call the clinic "
                    "to arrange another kind of visit.",
                    code="consent_not_accepted",
                )
            if version != consent.version:
                raise Conflict(
                    "The consent text has changed. Read the new version, then accept it.",
                    code="consent_outdated",
                    extra={"version": consent.version},
                )
            holder.join.consent_version = version
            holder.join.consent_at = self._clock()
            await db.flush()
            await self._audit.record_in(db, _joined(holder, "consent", version=version))
            return await self._state(db, holder)

    async def record_location(self, token: str | None, where: Location) -> JoinState:
        if where.address is None and where.state is None:
            raise ValidationFailed(
                "Give your address, or at least the state you are in.", code="location_missing"
            )
        async with self._db.begin() as db:
            holder = await self._load(db, token)
            require_turn(holder.kind, holder.progress, JoinStep.LOCATION, holder.consent.version)
            join = holder.join
            join.location_address = where.address
            join.location_state = where.state
            join.callback_phone = where.callback_phone
            join.location_recorded_at = self._clock()
            await db.flush()
            await self._audit.record_in(db, _joined(holder, "location"))
            return await self._state(db, holder)

    # --- helpers ------------------------------------------------------------------------------

    async def _holder_of(self, db: AsyncSession, token: str) -> _Holder | None:
        found = (
            await db.execute(
                select(VisitSession, VisitLink, Visit, VisitJoin)
                .join(VisitLink, VisitSession.visit_link_id == VisitLink.id)
                .join(Visit, VisitLink.visit_id == Visit.id)
                .join(VisitJoin, VisitJoin.visit_link_id == VisitLink.id)
                .where(VisitSession.token_hash == token_hash(token))
            )
        ).first()
        return None if found is None else _Holder(*found)

    async def _load(self, db: AsyncSession, token: str | None) -> _Holder:
        holder = await self._holder_of(db, token) if token else None
        if holder is None:
            raise Unauthenticated(
                "Open the visit link from your message to continue.", code="visit_session_missing"
            )
        _check_usable(holder, self._clock())
        return holder

    async def _state(self, db: AsyncSession, holder: _Holder) -> JoinState:
        link, visit = holder.link, holder.visit
        names = (
            await db.execute(
                select(User.display_name)
                .join(VisitClinician, VisitClinician.user_id == User.id)
                .where(VisitClinician.visit_id == visit.id)
                .order_by(User.display_name)
            )
        ).scalars()
        first_name = None
        if holder.kind is LinkKind.PATIENT:
            patient = await db.get(Patient, visit.patient_id)
            first_name = patient.given_name if patient is not None else None
        consent_version = holder.consent.version
        todo = remaining(holder.kind, holder.progress, consent_version)
        return JoinState(
            identity=VisitParticipantIdentity(
                visit_id=visit.id,
                kind=ParticipantKind(link.kind),
                display_name=link.display_name,
                participant_id=link_participant(link.id),
                ready_for_room=not todo,
                link_id=link.id,
            ),
            visit=JoinVisit(
                id=visit.id,
                starts_at=visit.scheduled_start,
                duration_minutes=visit.duration_minutes,
                status=VisitStatus(visit.status),
                clinician_names=tuple(names),
                patient_first_name=first_name,
            ),
            steps_completed=completed(holder.kind, holder.progress, consent_version),
            steps_remaining=todo,
            session_expires_at=holder.session.expires_at,
        )


def _joined(
    holder: _Holder,
    step: str,
    outcome: Outcome = Outcome.OK,
    address: str | None = None,
    **detail: DetailValue,
) -> Event:
    """An audit event for a link holder's step, acted by the link (they have no account)."""
    return Event(
        Action.VISIT_JOIN,
        Actor.link(holder.link.id, holder.link.kind),
        outcome=outcome,
        patient_id=holder.visit.patient_id,
        target=f"visit:{holder.visit.id}",
        client_address=address,
        detail={"step": step, **detail},
    )


def _check_usable(holder: _Holder, now: datetime) -> None:
    problem = link_refusal(facts_of(holder.link, holder.visit.status), now, first_use=False)
    if problem is not None:
        raise problem
    session = holder.session
    if session.revoked_at is not None or now >= session.expires_at:
        raise Unauthenticated(
            "Your visit session has ended. Contact the clinic for a new link.",
            code="visit_session_ended",
        )
