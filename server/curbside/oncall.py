"""Who is on call: shifts, the states psychiatrists are licensed in, the licence rule, and the
roster the routing machine rings from (with presence, from every server process).

Admins manage everyone's shifts; a psychiatrist manages their own. Licences are each
psychiatrist's own to record. The licence rule is ``curbside.require_license_match`` in the
configuration, unless an admin has overridden it at run time (one row, ``curbside_policy``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from types import MappingProxyType

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from server.audit import Action, AuditLog, Event
from server.auth.roles import Role
from server.clock import Clock
from server.db.models import ConsultRequest as RequestRow
from server.db.models import CurbsidePolicy, OnCallShift, PsychiatristLicense, User
from server.errors import Forbidden, NotFound, ValidationFailed
from server.record.access import Actor
from server.record.guard import actor_of
from server.settings import CurbsideSettings
from signaling import curbside as cs
from signaling.curbside_presence import PresenceStore, live_users

MAX_SHIFT = timedelta(days=7)
MAX_SHIFT_LIST = 500
# A consultant whose consult is at one of these steps is in (or joining) the call: busy.
IN_A_CALL = (cs.Status.ACCEPTED.value, cs.Status.IN_CALL.value)


@dataclass(frozen=True, slots=True)
class ShiftView:
    id: int
    psychiatrist_id: int
    psychiatrist_name: str
    tier: cs.Tier
    starts_at: datetime
    ends_at: datetime
    created_by: int


@dataclass(frozen=True, slots=True)
class OnCallView:
    on_call: cs.OnCall
    display_name: str


@dataclass(frozen=True, slots=True)
class PolicyView:
    require_license_match: bool
    configured: bool  # curbside.require_license_match
    overridden: bool  # an admin's run-time choice is in force


def require_role(who: Actor, *roles: Role) -> None:
    """Roles are checked by the HTTP layer too; sockets and other callers rely on this."""
    if who.role not in roles:
        names = " or ".join(r.value.replace("_", " ") for r in roles)
        raise Forbidden(f"Only a {names} can do this.", code="role_forbidden")


class OnCallService:
    def __init__(
        self,
        db: async_sessionmaker[AsyncSession],
        settings: CurbsideSettings,
        clock: Clock,
        presence: PresenceStore,
        audit: AuditLog,
    ) -> None:
        self._db = db
        self._settings = settings
        self._clock = clock
        self.presence = presence
        self._audit = audit

    # --- shifts ---------------------------------------------------------------------------------

    async def add_shift(
        self,
        who: Actor,
        psychiatrist_id: int,
        tier: cs.Tier,
        starts_at: datetime,
        ends_at: datetime,
    ) -> ShiftView:
        require_role(who, Role.ADMIN, Role.PSYCHIATRIST)
        if who.role is Role.PSYCHIATRIST and psychiatrist_id != who.user_id:
            raise Forbidden("You can manage only your own shifts.", code="not_your_shift")
        now = self._clock()
        if ends_at <= starts_at or ends_at - starts_at > MAX_SHIFT or ends_at <= now:
            raise ValidationFailed(
                "A shift ends after it starts, in the future, and lasts at most 7 days.",
                code="invalid_shift",
            )
        async with self._db.begin() as db:
            user = await db.get(User, psychiatrist_id)
            if user is None or user.disabled_at is not None or user.role != Role.PSYCHIATRIST:
                raise ValidationFailed(
                    "Shifts are for active psychiatrists' accounts.", code="not_a_psychiatrist"
                )
            shift = OnCallShift(
                psychiatrist_id=psychiatrist_id,
                tier=tier.value,
                starts_at=starts_at,
                ends_at=ends_at,
                created_by=who.user_id,
                created_at=now,
            )
            db.add(shift)
            await db.flush()
            return _shift_view(shift, user.display_name)

    async def remove_shift(self, who: Actor, shift_id: int) -> None:
        require_role(who, Role.ADMIN, Role.PSYCHIATRIST)
        async with self._db.begin() as db:
            shift = await db.get(OnCallShift, shift_id)
            if shift is None:
                raise NotFound("No such shift.", code="shift_not_found")
            if who.role is Role.PSYCHIATRIST and shift.psychiatrist_id != who.user_id:
                raise Forbidden("You can manage only your own shifts.", code="not_your_shift")
            await db.delete(shift)

    async def shifts(self, since: datetime, until: datetime) -> list[ShiftView]:
        """Shifts overlapping [since, until), earliest first."""
        async with self._db() as db:
            rows = await db.execute(
                select(OnCallShift, User.display_name)
                .join(User, User.id == OnCallShift.psychiatrist_id)
                .where(OnCallShift.ends_at > since, OnCallShift.starts_at < until)
                .order_by(OnCallShift.starts_at, OnCallShift.id)
                .limit(MAX_SHIFT_LIST)
            )
            return [_shift_view(shift, name) for shift, name in rows.all()]

    # --- licences -------------------------------------------------------------------------------

    async def licenses(self, who: Actor) -> list[str]:
        require_role(who, Role.PSYCHIATRIST)
        async with self._db() as db:
            return sorted((await _licenses_of(db, [who.user_id])).get(who.user_id, set()))

    async def set_licenses(self, who: Actor, states: Iterable[str]) -> list[str]:
        """Replace the caller's licensed states."""
        require_role(who, Role.PSYCHIATRIST)
        wanted = sorted({code.upper() for code in states})
        now = self._clock()
        async with self._db.begin() as db:
            await db.execute(
                delete(PsychiatristLicense).where(PsychiatristLicense.user_id == who.user_id)
            )
            db.add_all(
                PsychiatristLicense(user_id=who.user_id, state=code, added_at=now)
                for code in wanted
            )
        return wanted

    # --- the licence rule -----------------------------------------------------------------------

    async def policy_view(self) -> PolicyView:
        async with self._db() as db:
            row = await db.get(CurbsidePolicy, 1)
        configured = self._settings.require_license_match
        override = row.require_license_match if row is not None else None
        return PolicyView(
            require_license_match=configured if override is None else override,
            configured=configured,
            overridden=override is not None,
        )

    async def set_license_rule(self, who: Actor, value: bool | None) -> PolicyView:
        """An admin turns the licence rule on or off; ``None`` goes back to the configuration.
        Requests already ringing keep the rule they opened with. Audited only when the admin's
        choice changes (setting what is already set changes nothing)."""
        require_role(who, Role.ADMIN)
        async with self._db.begin() as db:
            row = await db.get(CurbsidePolicy, 1, with_for_update=True)
            old = row.require_license_match if row is not None else None
            if old != value:
                await self._set_license_rule(db, row, who, old, value)
        return await self.policy_view()

    async def _set_license_rule(
        self,
        db: AsyncSession,
        row: CurbsidePolicy | None,
        who: Actor,
        old: bool | None,
        new: bool | None,
    ) -> None:
        if row is None:
            row = CurbsidePolicy(id=1, updated_at=self._clock())
            db.add(row)
        row.require_license_match = new
        row.updated_by = who.user_id
        row.updated_at = self._clock()
        in_force = self._settings.require_license_match if new is None else new
        await self._audit.record_in(
            db,
            Event(
                Action.CURBSIDE_POLICY_CHANGE,
                actor_of(who),
                target="curbside_policy:require_license_match",
                # None: no override, the configuration's curbside.require_license_match.
                detail={"old": old, "new": new, "in_force": in_force},
            ),
        )

    async def routing_policy(self) -> cs.RoutingPolicy:
        cfg = self._settings
        return cs.RoutingPolicy(
            ring_timeout=timedelta(seconds=cfg.ring_timeout_s),
            require_license_match=(await self.policy_view()).require_license_match,
            answer_targets=MappingProxyType(
                {
                    cs.Urgency.EMERGENT: timedelta(minutes=cfg.answer_minutes_emergent),
                    cs.Urgency.URGENT: timedelta(minutes=cfg.answer_minutes_urgent),
                    cs.Urgency.ROUTINE: timedelta(minutes=cfg.answer_minutes_routine),
                }
            ),
        )

    # --- the roster -----------------------------------------------------------------------------

    async def roster(self) -> list[cs.OnCall]:
        return [view.on_call for view in await self.on_call_now()]

    async def on_call_now(self) -> list[OnCallView]:
        """Every psychiatrist on shift now, with presence and licences; primaries first."""
        now = self._clock()
        async with self._db() as db:
            rows = (
                await db.execute(
                    select(OnCallShift.psychiatrist_id, OnCallShift.tier, User.display_name)
                    .join(User, User.id == OnCallShift.psychiatrist_id)
                    .where(
                        OnCallShift.starts_at <= now,
                        OnCallShift.ends_at > now,
                        User.disabled_at.is_(None),
                        User.role == Role.PSYCHIATRIST.value,
                    )
                    .distinct()
                )
            ).all()
            ids = {user_id for user_id, _, _ in rows}
            licences = await _licenses_of(db, ids)
            live = await live_users(db, now - self.presence.stale_after, ids)
            consulting = set(
                (
                    await db.execute(
                        select(RequestRow.consultant_id).where(
                            RequestRow.consultant_id.in_(ids), RequestRow.status.in_(IN_A_CALL)
                        )
                    )
                ).scalars()
            )
        views = []
        for user_id, tier, name in rows:
            here = live.get(user_id)
            if here is None:
                presence = cs.Presence.OFFLINE
            elif here.in_room or user_id in consulting:
                presence = cs.Presence.BUSY
            else:
                presence = cs.Presence.AVAILABLE
            on_call = cs.OnCall(
                user_id, cs.Tier(tier), presence, frozenset(licences.get(user_id, set()))
            )
            views.append(OnCallView(on_call, name))
        views.sort(key=lambda v: (v.on_call.tier is not cs.Tier.PRIMARY, v.display_name))
        return views


async def _licenses_of(db: AsyncSession, user_ids: Iterable[int]) -> dict[int, set[str]]:
    rows = await db.execute(
        select(PsychiatristLicense.user_id, PsychiatristLicense.state).where(
            PsychiatristLicense.user_id.in_(list(user_ids))
        )
    )
    found: dict[int, set[str]] = {}
    for user_id, state in rows.all():
        found.setdefault(user_id, set()).add(state)
    return found


def _shift_view(shift: OnCallShift, name: str) -> ShiftView:
    return ShiftView(
        id=shift.id,
        psychiatrist_id=shift.psychiatrist_id,
        psychiatrist_name=name,
        tier=cs.Tier(shift.tier),
        starts_at=shift.starts_at,
        ends_at=shift.ends_at,
        created_by=shift.created_by,
    )
