"""Visit rooms and their waiting room, as a pure state machine.

A room is one visit. Its whole state is a `RoomState` value: plain data that round-trips through
`to_dict`/`from_dict` and is never kept in one process's memory. A store loads it, calls a
transition such as `admit(state, by, participant_id, now)` and saves the new state only if
`version` has not moved meanwhile (optimistic concurrency; on a clash it reloads and calls the
transition again). The socket handler turns the returned effects into emits. Nothing here does
I/O or reads the clock: `now` is an argument.

Participants are identities ("user:12", "link:34"), not sockets. The roster comes from the
visit: its clinicians when the room is created, the patient and guests (interpreter, family,
PCP for a warm hand-off) through `invite`, one identity per link. An identity has at most one
connection; a second `join` replaces the first (a page reload) and tells the old one. A
connection also names the server process (node) holding its socket, so that when a node dies
any other can treat all of its connections as dropped (`disconnect_node`).

Presence of one participant::

    ABSENT --join--> WAITING --admit--> IN_CALL        clinicians: ABSENT --join--> IN_CALL
    WAITING | IN_CALL --disconnect--> AWAY --join within grace--> back where they were
    AWAY --grace over--> ABSENT                        admission lost: a late return waits again
    IN_CALL --return_to_lobby--> WAITING   WAITING --deny--> REMOVED   any --revoke--> REMOVED
    WAITING | IN_CALL --leave--> ABSENT                a deliberate hang-up gives the seat up

Admission is a recorded act (`admitted_by`, `admitted_at`) of any clinician on the visit and
belongs to the identity, so it survives reconnects of either side and never depends on one
clinician's connection; arriving before the clinician earns nothing. An admitted participant or
clinician who is AWAY keeps their seat: seats (IN_CALL, plus AWAY with a seat) never exceed
`max_in_call`, so a reload never finds its place taken. Grace expiry is lazy: every transition
first expires AWAY participants whose grace ended at or before `now`, so no timer has to survive
a process; `expire` does only that, and the server calls it when a grace it knows of ends, so
that the call hears of it then. Whoever is away and loses their seat for good (grace over,
revoked, sent back to the lobby) is announced to the call by a PeerLeft naming the participant,
with no connection. REMOVED is final for that identity until it is invited
again, so a denied link cannot keep knocking.

Visit lifecycle::

    SCHEDULED <-> WAITING    a patient or guest is connected (in the lobby, or admitted while
                             no clinician is there) and the call has not started
    -> IN_PROGRESS           from the first moment a clinician and a patient or guest are in
                             the call together (`started_at`); drops do not un-start a visit
    -> COMPLETED             `end` by a clinician on the visit, once started
    SCHEDULED | WAITING -> CANCELLED, or NO_SHOW while no patient is connected
Terminal states disconnect everyone and refuse every transition but `disconnect` and `expire`.

Effects are data. The ones about the call and the lobby (Joined, Waiting, PeerJoined, PeerLeft,
LobbyUpdate) are derived by comparing the state before and after a transition, so none can
forget to tell someone; Replaced, Removed and VisitEnded come from the transitions causing them.

Errors, each with a client-safe code::

    Forbidden  └── RoomForbidden        not_on_visit, not_a_clinician, removed
    NotFound   └── UnknownParticipant   participant_not_found
    Conflict   └── RoomConflict         room_full, not_waiting, already_admitted, not_admitted,
                                        target_is_clinician, connection_in_use, not_in_room,
                                        already_invited, not_started, already_started,
                                        patient_present
    Gone       └── VisitClosed          visit_ended, visit_cancelled
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields, replace
from datetime import UTC, datetime, timedelta
from enum import Enum, StrEnum
from typing import Any, NamedTuple, TypeVar

from server.errors import Conflict, Forbidden, Gone, NotFound

SCHEMA = 1
DEFAULT_MAX_IN_CALL = 4
DEFAULT_RECONNECT_GRACE = timedelta(minutes=2)
LINK_REVOKED = "link_revoked"


class RoomForbidden(Forbidden):
    default_code = "not_on_visit"


class UnknownParticipant(NotFound):
    default_code = "participant_not_found"


class RoomConflict(Conflict):
    pass


class VisitClosed(Gone):
    default_code = "visit_ended"


class VisitStatus(StrEnum):
    SCHEDULED = "scheduled"
    WAITING = "waiting"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    CANCELLED = "cancelled"
    NO_SHOW = "no_show"

    @property
    def is_terminal(self) -> bool:
        return self in (VisitStatus.COMPLETED, VisitStatus.CANCELLED, VisitStatus.NO_SHOW)


class Kind(StrEnum):
    CLINICIAN = "clinician"
    PATIENT = "patient"
    GUEST = "guest"


class Presence(StrEnum):
    ABSENT = "absent"
    WAITING = "waiting"
    IN_CALL = "in_call"
    AWAY = "away"
    REMOVED = "removed"


class DenyReason(StrEnum):
    # Codes, not free text: they reach the denied person and must never carry PHI.
    NOT_RECOGNISED = "not_recognised"
    WRONG_VISIT = "wrong_visit"
    RESCHEDULED = "rescheduled"
    OTHER = "other"


class LeftReason(StrEnum):
    LEFT = "left"
    DISCONNECTED = "disconnected"  # may come back within the grace window: show "reconnecting"
    REPLACED = "replaced"  # same identity on a new connection: a PeerJoined follows
    RETURNED_TO_LOBBY = "returned_to_lobby"
    REMOVED = "removed"
    TIMED_OUT = "timed_out"  # was away and did not come back within the grace


@dataclass(frozen=True)
class Participant:
    participant_id: str
    kind: Kind
    display_name: str
    presence: Presence = Presence.ABSENT
    conn_id: str | None = None
    node_id: str | None = None  # the server process holding conn_id's socket; set with it
    admitted_by: str | None = None
    admitted_at: datetime | None = None
    waiting_since: datetime | None = None  # kept through a reload so nobody loses their turn
    away_since: datetime | None = None
    removed_reason: str | None = None

    @property
    def admitted(self) -> bool:
        return self.kind is Kind.CLINICIAN or self.admitted_at is not None

    @property
    def holds_seat(self) -> bool:
        return self.presence is Presence.IN_CALL or (
            self.presence is Presence.AWAY and self.admitted
        )


@dataclass(frozen=True)
class Attendee:
    """Someone who was in the call, for the Encounter record."""

    participant_id: str
    kind: Kind
    display_name: str
    first_in_call_at: datetime


@dataclass(frozen=True)
class RoomState:
    visit_id: int
    participants: tuple[Participant, ...]
    status: VisitStatus = VisitStatus.SCHEDULED
    version: int = 0
    max_in_call: int = DEFAULT_MAX_IN_CALL
    reconnect_grace: timedelta = DEFAULT_RECONNECT_GRACE
    started_at: datetime | None = None
    ended_at: datetime | None = None
    ended_by: str | None = None
    attendance: tuple[Attendee, ...] = ()

    @classmethod
    def create(
        cls,
        visit_id: int,
        clinicians: Mapping[str, str],
        *,
        max_in_call: int = DEFAULT_MAX_IN_CALL,
        reconnect_grace: timedelta = DEFAULT_RECONNECT_GRACE,
    ) -> RoomState:
        """A room for a visit; `clinicians` maps participant id to display name."""
        if not clinicians:
            raise ValueError("a visit room needs at least one clinician")
        if max_in_call < 2:
            raise ValueError("max_in_call must be at least 2")
        if reconnect_grace < timedelta(0):
            raise ValueError("reconnect_grace must not be negative")
        roster = tuple(Participant(pid, Kind.CLINICIAN, name) for pid, name in clinicians.items())
        return cls(visit_id, roster, max_in_call=max_in_call, reconnect_grace=reconnect_grace)

    def participant(self, participant_id: str) -> Participant | None:
        return next((p for p in self.participants if p.participant_id == participant_id), None)

    def by_conn(self, conn_id: str) -> Participant | None:
        return next((p for p in self.participants if p.conn_id == conn_id), None)

    def to_dict(self) -> dict[str, Any]:
        return {"schema": SCHEMA, **_encode(self)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> RoomState:
        if d.get("schema") != SCHEMA:
            raise ValueError(f"unknown room state schema {d.get('schema')!r}")
        state = _decode(cls, d)
        ids = [p.participant_id for p in state.participants]
        conns = [p.conn_id for p in state.participants if p.conn_id is not None]
        if len(set(ids)) != len(ids) or len(set(conns)) != len(conns):
            raise ValueError("room state has a duplicate participant or connection")
        return state


# Effects: data only. Every `to` is a non-empty tuple of connection ids.


@dataclass(frozen=True)
class Peer:
    participant_id: str
    kind: Kind
    display_name: str
    conn_id: str


@dataclass(frozen=True)
class LobbyEntry:
    participant_id: str
    kind: Kind
    display_name: str
    since: datetime


@dataclass(frozen=True)
class AwayPeer:
    """Someone in the call whose connection dropped and who keeps their seat until `until`.

    Named by identity: their next connection has a new id, and a client that held a tile for
    them before its own drop must tell "away, may be back" from "gone for good"."""

    participant_id: str
    kind: Kind
    display_name: str
    until: datetime


@dataclass(frozen=True)
class Joined:
    """In the call: `peers` are connected now, `away` may come back; anyone else the
    newcomer knew of is gone for good."""

    conn_id: str
    you: Peer
    peers: tuple[Peer, ...]
    away: tuple[AwayPeer, ...] = ()


@dataclass(frozen=True)
class Waiting:
    conn_id: str
    since: datetime
    returned: bool = False  # sent back by a clinician, not a first arrival


@dataclass(frozen=True)
class PeerJoined:
    to: tuple[str, ...]
    peer: Peer


@dataclass(frozen=True)
class PeerLeft:
    """Someone left the call. `conn_id` None: they were away, so had no connection, and have
    now lost their seat for good (TIMED_OUT, REMOVED or RETURNED_TO_LOBBY)."""

    to: tuple[str, ...]
    participant_id: str
    conn_id: str | None
    reason: LeftReason


@dataclass(frozen=True)
class LobbyUpdate:
    to: tuple[str, ...]
    waiting: tuple[LobbyEntry, ...]


@dataclass(frozen=True)
class Replaced:
    conn_id: str


@dataclass(frozen=True)
class Removed:
    conn_id: str
    reason: str  # a DenyReason value or LINK_REVOKED


@dataclass(frozen=True)
class VisitEnded:
    to: tuple[str, ...]
    status: VisitStatus


Effect = Joined | Waiting | PeerJoined | PeerLeft | LobbyUpdate | Replaced | Removed | VisitEnded


class Transition(NamedTuple):
    state: RoomState
    effects: list[Effect]


# Transitions. Each returns a new state and effects and never mutates its input. Who may call
# them (which socket is which identity, who may invite or cancel) is the service's decision; the
# checks here are the ones the room itself can answer.


def join(
    state: RoomState,
    conn_id: str,
    participant_id: str,
    now: datetime,
    *,
    node_id: str | None = None,
) -> Transition:
    """`node_id` names the server process holding the socket (None: a single process)."""
    s, now = _begin(state, now)
    p = s.participant(participant_id)
    if p is None:
        raise RoomForbidden("You are not on this visit.")
    if p.presence is Presence.REMOVED:
        raise RoomForbidden("You have been removed from this visit.", code="removed")
    holder = s.by_conn(conn_id)
    if holder is not None and holder.participant_id != participant_id:
        raise RoomConflict("This connection is already in the room.", code="connection_in_use")
    if p.conn_id == conn_id:
        # A retried join whose answer was lost: answer again, change nothing.
        return _finish(state, s, now, _view(s, p))
    if p.admitted and not p.holds_seat and _seats(s) >= s.max_in_call:
        raise RoomConflict("The call is full.", code="room_full")
    effects: list[Effect] = [Replaced(p.conn_id)] if p.conn_id is not None else []
    if p.admitted:
        p = replace(p, presence=Presence.IN_CALL, conn_id=conn_id, node_id=node_id, away_since=None)
    else:
        since = p.waiting_since or now
        p = replace(
            p,
            presence=Presence.WAITING,
            conn_id=conn_id,
            node_id=node_id,
            waiting_since=since,
            away_since=None,
        )
    return _finish(state, _put(s, p), now, effects, LeftReason.REPLACED)


def disconnect(state: RoomState, conn_id: str, now: datetime) -> Transition:
    """The socket went away. Idempotent: a replaced socket's late disconnect changes nothing."""
    s, now = _begin(state, now, require_open=False)
    p = s.by_conn(conn_id)
    if p is not None:
        s = _put(s, _away(p, now))
    return _finish(state, s, now, reason=LeftReason.DISCONNECTED)


def disconnect_node(state: RoomState, node_id: str, now: datetime) -> Transition:
    """A server process died: every connection it held dropped at once, exactly as if each
    had disconnected (so each may come back, on another node, within the grace). Idempotent."""
    s, now = _begin(state, now, require_open=False)
    roster = tuple(
        _away(p, now) if p.node_id == node_id and p.conn_id is not None else p
        for p in s.participants
    )
    return _finish(state, replace(s, participants=roster), now, reason=LeftReason.DISCONNECTED)


def nodes(state: RoomState) -> frozenset[str]:
    """The server processes holding a connection in this room."""
    return frozenset(p.node_id for p in state.participants if p.node_id is not None)


def leave(state: RoomState, conn_id: str, now: datetime) -> Transition:
    s, now = _begin(state, now)
    p = s.by_conn(conn_id)
    if p is None:
        raise RoomConflict("You are not in this room.", code="not_in_room")
    return _finish(state, _put(s, _absent(p)), now)


def invite(
    state: RoomState, participant_id: str, kind: Kind, display_name: str, now: datetime
) -> Transition:
    """Put an identity (usually a link) on the roster; re-inviting a removed one reinstates it."""
    s, now = _begin(state, now)
    p = s.participant(participant_id)
    if p is not None and p.presence is not Presence.REMOVED:
        raise RoomConflict("Already invited to this visit.", code="already_invited")
    new = Participant(participant_id, Kind(kind), display_name)
    s = _put(s, new) if p is not None else replace(s, participants=(*s.participants, new))
    return _finish(state, s, now)


def revoke(state: RoomState, participant_id: str, now: datetime) -> Transition:
    """The link was revoked: out of the room wherever they are. Idempotent."""
    s, now = _begin(state, now)
    p = _target(s, participant_id)
    if p.presence is Presence.REMOVED:
        return _finish(state, s, now)
    return _remove(state, s, p, LINK_REVOKED, now)


def admit(state: RoomState, by: str, participant_id: str, now: datetime) -> Transition:
    s, now = _begin(state, now)
    _clinician(s, by)
    p = _target(s, participant_id)
    if p.admitted:
        raise RoomConflict("Already admitted.", code="already_admitted")
    if p.presence is not Presence.WAITING:
        raise RoomConflict("This participant is not in the waiting room.", code="not_waiting")
    if _seats(s) >= s.max_in_call:
        raise RoomConflict("The call is full.", code="room_full")
    p = replace(p, presence=Presence.IN_CALL, admitted_by=by, admitted_at=now, waiting_since=None)
    return _finish(state, _put(s, p), now)


def deny(
    state: RoomState, by: str, participant_id: str, reason: DenyReason, now: datetime
) -> Transition:
    s, now = _begin(state, now)
    _clinician(s, by)
    p = _target(s, participant_id)
    if p.presence is not Presence.WAITING:
        raise RoomConflict("This participant is not in the waiting room.", code="not_waiting")
    return _remove(state, s, p, DenyReason(reason).value, now)


def return_to_lobby(state: RoomState, by: str, participant_id: str, now: datetime) -> Transition:
    s, now = _begin(state, now)
    _clinician(s, by)
    p = _target(s, participant_id)
    if not p.admitted:
        raise RoomConflict("This participant is not admitted.", code="not_admitted")
    # Admitted means IN_CALL or AWAY; an AWAY one waits when they come back.
    presence = Presence.WAITING if p.presence is Presence.IN_CALL else p.presence
    p = replace(p, presence=presence, admitted_by=None, admitted_at=None, waiting_since=now)
    return _finish(state, _put(s, p), now, reason=LeftReason.RETURNED_TO_LOBBY)


def end(state: RoomState, by: str, now: datetime) -> Transition:
    s, now = _begin(state, now)
    _clinician(s, by)
    if s.started_at is None:
        raise RoomConflict("This visit has not started.", code="not_started")
    return _close(state, s, VisitStatus.COMPLETED, now, by)


def cancel(state: RoomState, now: datetime) -> Transition:
    s, now = _begin(state, now)
    _require_not_started(s)
    return _close(state, s, VisitStatus.CANCELLED, now, None)


def mark_no_show(state: RoomState, now: datetime) -> Transition:
    s, now = _begin(state, now)
    _require_not_started(s)
    if any(p.kind is Kind.PATIENT and p.conn_id is not None for p in s.participants):
        raise RoomConflict("The patient is here.", code="patient_present")
    return _close(state, s, VisitStatus.NO_SHOW, now, None)


def close(state: RoomState, status: VisitStatus, now: datetime) -> Transition:
    """Close the room with a status decided elsewhere (the visit cancelled over HTTP while
    someone arrived): never refuses, disconnects everyone, idempotent once terminal."""
    if not status.is_terminal:
        raise ValueError("close needs a terminal status")
    s, now = _begin(state, now, require_open=False)
    if s.status.is_terminal:
        return _finish(state, s, now)
    return _close(state, s, status, now, None)


def expire(state: RoomState, now: datetime) -> Transition:
    """Only the lazy grace expiry every transition does first; a sweeper may call it."""
    s, now = _begin(state, now, require_open=False)
    return _finish(state, s, now)


def _begin(
    state: RoomState, now: datetime, *, require_open: bool = True
) -> tuple[RoomState, datetime]:
    if now.tzinfo is None or now.utcoffset() != timedelta(0):
        raise ValueError("now must be an aware UTC datetime")
    now = now.astimezone(UTC)
    if require_open and state.status is VisitStatus.CANCELLED:
        raise VisitClosed("This visit has been cancelled.", code="visit_cancelled")
    if require_open and state.status.is_terminal:
        raise VisitClosed("This visit has ended.")
    return _expire(state, now), now


def _finish(
    before: RoomState,
    after: RoomState,
    now: datetime,
    effects: list[Effect] | None = None,
    reason: LeftReason = LeftReason.LEFT,
) -> Transition:
    effects = effects or []
    after = _settle(after, now)
    if after == before:
        return Transition(before, effects)
    after = replace(after, version=before.version + 1)
    return Transition(after, effects + _derived(before, after, reason))


def _close(
    before: RoomState, s: RoomState, status: VisitStatus, now: datetime, by: str | None
) -> Transition:
    conns = tuple(p.conn_id for p in s.participants if p.conn_id is not None)
    effects: list[Effect] = [VisitEnded(conns, status)] if conns else []
    roster = tuple(p if p.presence is Presence.REMOVED else _absent(p) for p in s.participants)
    s = replace(s, participants=roster, status=status, ended_at=now, ended_by=by)
    return _finish(before, s, now, effects)


def _remove(
    before: RoomState, s: RoomState, p: Participant, reason: str, now: datetime
) -> Transition:
    effects: list[Effect] = [Removed(p.conn_id, reason)] if p.conn_id is not None else []
    gone = replace(_absent(p), presence=Presence.REMOVED, removed_reason=reason)
    return _finish(before, _put(s, gone), now, effects, LeftReason.REMOVED)


def _expire(s: RoomState, now: datetime) -> RoomState:
    def expired(p: Participant) -> bool:
        # away_since is set exactly while AWAY.
        return p.away_since is not None and now >= p.away_since + s.reconnect_grace

    if not any(expired(p) for p in s.participants):
        return s
    return replace(s, participants=tuple(_absent(p) if expired(p) else p for p in s.participants))


def _settle(s: RoomState, now: datetime) -> RoomState:
    """Bring the record (attendance, started_at, status) in line with who is there now."""
    in_call = _in_call(s)
    seen = {a.participant_id for a in s.attendance}
    attendance = s.attendance + tuple(
        Attendee(p.participant_id, p.kind, p.display_name, now)
        for p in in_call
        if p.participant_id not in seen
    )
    started_at = s.started_at
    clinician_there = any(p.kind is Kind.CLINICIAN for p in in_call)
    other_there = any(p.kind is not Kind.CLINICIAN for p in in_call)
    if started_at is None and clinician_there and other_there:
        started_at = now
    status = s.status
    if not status.is_terminal:
        if started_at is not None:
            status = VisitStatus.IN_PROGRESS
        elif any(p.kind is not Kind.CLINICIAN and p.conn_id is not None for p in s.participants):
            status = VisitStatus.WAITING
        else:
            status = VisitStatus.SCHEDULED
    return replace(s, attendance=attendance, started_at=started_at, status=status)


def _derived(before: RoomState, after: RoomState, reason: LeftReason) -> list[Effect]:
    """What the call and the lobby must hear, from the difference between two states."""
    was_in = {p.participant_id: p.conn_id for p in _in_call(before)}
    now_in = _in_call(after)
    # Those in the call both before and after hear of changes; newcomers get the whole list.
    stayed = tuple(_conn(p) for p in now_in if was_in.get(p.participant_id) == p.conn_id)
    still = {(p.participant_id, p.conn_id) for p in now_in}
    effects: list[Effect] = []
    for p in _in_call(before):
        if (p.participant_id, p.conn_id) not in still and stayed:
            effects.append(PeerLeft(stayed, p.participant_id, _conn(p), reason))
    # Someone away who lost their seat has no connection to name: without this, the call
    # would show them as reconnecting until each browser's own copy of the grace ran out.
    was_away = {a.participant_id for a in away_peers(before)}
    for p in after.participants:
        if p.participant_id in was_away and not p.holds_seat and stayed:
            effects.append(PeerLeft(stayed, p.participant_id, None, _seat_lost(p)))
    for p in now_in:
        if was_in.get(p.participant_id) != p.conn_id:
            effects.append(_joined(after, p))
            if stayed:
                effects.append(PeerJoined(stayed, _peer(p)))
    was = {p.participant_id: (p.presence, p.conn_id) for p in before.participants}
    for p in after.participants:
        old = was.get(p.participant_id, (Presence.ABSENT, None))
        if p.presence is Presence.WAITING and old != (Presence.WAITING, p.conn_id):
            effects.append(Waiting(_conn(p), _since(p), returned=old[0] is Presence.IN_CALL))
    waiting = lobby(after)
    clinicians = clinician_connections(after)
    if waiting == lobby(before):
        # Unchanged lobby: only clinicians who just arrived need to see it.
        known = set(clinician_connections(before))
        clinicians = tuple(c for c in clinicians if c not in known)
    if clinicians:
        effects.append(LobbyUpdate(clinicians, waiting))
    return effects


def _seat_lost(p: Participant) -> LeftReason:
    """Why someone away no longer holds a seat, from where they are now."""
    if p.presence is Presence.REMOVED:
        return LeftReason.REMOVED
    if p.presence is Presence.AWAY:
        return LeftReason.RETURNED_TO_LOBBY  # still away, their admission withdrawn
    # ABSENT, or WAITING: they came back too late, within this same transition.
    return LeftReason.TIMED_OUT


def _view(s: RoomState, p: Participant) -> list[Effect]:
    if p.presence is Presence.WAITING:
        return [Waiting(_conn(p), _since(p))]
    effects: list[Effect] = [_joined(s, p)]
    if p.kind is Kind.CLINICIAN:
        effects.append(LobbyUpdate((_conn(p),), lobby(s)))
    return effects


def _joined(s: RoomState, p: Participant) -> Joined:
    others = tuple(_peer(q) for q in _in_call(s) if q is not p)
    return Joined(_conn(p), _peer(p), others, away_peers(s))


def _require_not_started(s: RoomState) -> None:
    if s.started_at is not None:
        raise RoomConflict("This visit has already started.", code="already_started")


def _clinician(s: RoomState, by: str) -> None:
    p = s.participant(by)
    if p is None:
        raise RoomForbidden("You are not on this visit.")
    if p.kind is not Kind.CLINICIAN:
        raise RoomForbidden("Only a clinician on this visit can do that.", code="not_a_clinician")


def _target(s: RoomState, participant_id: str) -> Participant:
    p = s.participant(participant_id)
    if p is None:
        raise UnknownParticipant("No such participant on this visit.")
    if p.kind is Kind.CLINICIAN:
        raise RoomConflict("Clinicians do not wait for admission.", code="target_is_clinician")
    return p


def _put(s: RoomState, new: Participant) -> RoomState:
    roster = tuple(new if p.participant_id == new.participant_id else p for p in s.participants)
    return replace(s, participants=roster)


def _away(p: Participant, now: datetime) -> Participant:
    return replace(p, presence=Presence.AWAY, conn_id=None, node_id=None, away_since=now)


def _absent(p: Participant) -> Participant:
    return Participant(p.participant_id, p.kind, p.display_name)


def _seats(s: RoomState) -> int:
    return sum(p.holds_seat for p in s.participants)


def _in_call(s: RoomState) -> list[Participant]:
    return [p for p in s.participants if p.presence is Presence.IN_CALL]


def _conn(p: Participant) -> str:
    assert p.conn_id is not None, "WAITING and IN_CALL participants have a connection"
    return p.conn_id


def _since(p: Participant) -> datetime:
    assert p.waiting_since is not None, "WAITING participants have a waiting_since"
    return p.waiting_since


def _since_away(p: Participant) -> datetime:
    assert p.away_since is not None, "AWAY participants have an away_since"
    return p.away_since


def _peer(p: Participant) -> Peer:
    return Peer(p.participant_id, p.kind, p.display_name, _conn(p))


# Queries the socket handler asks. They need no `now`: only connected presences count.


def in_call_connections(state: RoomState) -> tuple[str, ...]:
    return tuple(_conn(p) for p in _in_call(state))


def away_peers(state: RoomState) -> tuple[AwayPeer, ...]:
    """Who dropped out of the call and may still come straight back (AWAY with a seat)."""
    return tuple(
        AwayPeer(p.participant_id, p.kind, p.display_name, _since_away(p) + state.reconnect_grace)
        for p in state.participants
        if p.presence is Presence.AWAY and p.admitted
    )


def clinician_connections(state: RoomState) -> tuple[str, ...]:
    """Clinicians' connections in the call: the ones that get lobby updates."""
    return tuple(_conn(p) for p in _in_call(state) if p.kind is Kind.CLINICIAN)


def lobby(state: RoomState) -> tuple[LobbyEntry, ...]:
    """Who is waiting right now, longest-waiting first."""
    waiting = sorted(
        (p for p in state.participants if p.presence is Presence.WAITING),
        key=lambda p: (_since(p), p.participant_id),
    )
    return tuple(LobbyEntry(p.participant_id, p.kind, p.display_name, _since(p)) for p in waiting)


def can_signal(state: RoomState, from_conn: str, to_conn: str) -> bool:
    """Whether relaying from one connection to another stays inside this call."""
    conns = in_call_connections(state)
    return from_conn != to_conn and from_conn in conns and to_conn in conns


# Serialisation: JSON types only; timestamps as ISO 8601 with offset, the grace in seconds. The
# handler may load a room for every relayed message, so the layout is worked out once, here.


def _when(v: object) -> datetime | None:
    if v is None:
        return None
    when = datetime.fromisoformat(str(v))
    if when.tzinfo is None:
        raise ValueError(f"naive timestamp {v!r} in room state")
    return when.astimezone(UTC)


def _required_when(v: object) -> datetime:
    when = _when(v)
    if when is None:
        raise ValueError("missing timestamp in room state")
    return when


def _same(v: Any) -> Any:
    return v


def _value(v: Enum) -> Any:
    return v.value


_Codec = tuple[Callable[[Any], Any], Callable[[Any], Any]]
# Keyed by the annotation text, which `from __future__ import annotations` leaves as a string.
_CODECS: dict[str, _Codec] = {
    "str": (_same, str),
    "str | None": (_same, lambda v: None if v is None else str(v)),
    "int": (_same, int),
    "datetime": (datetime.isoformat, _required_when),
    "datetime | None": (lambda v: None if v is None else v.isoformat(), _when),
    "timedelta": (timedelta.total_seconds, lambda v: timedelta(seconds=float(v))),
    "Kind": (_value, Kind),
    "Presence": (_value, Presence),
    "VisitStatus": (_value, VisitStatus),
    "tuple[Participant, ...]": (
        lambda ps: [_encode(p) for p in ps],
        lambda rows: tuple(_decode(Participant, r) for r in rows),
    ),
    "tuple[Attendee, ...]": (
        lambda attendees: [_encode(a) for a in attendees],
        lambda rows: tuple(_decode(Attendee, r) for r in rows),
    ),
}
_LAYOUT = {
    cls: tuple((f.name, *_CODECS[str(f.type)]) for f in fields(cls))
    for cls in (Participant, Attendee, RoomState)
}
_T = TypeVar("_T", Participant, Attendee, RoomState)


def _encode(obj: Participant | Attendee | RoomState) -> dict[str, Any]:
    return {name: encode(getattr(obj, name)) for name, encode, _ in _LAYOUT[type(obj)]}


# Fields added after rooms were first stored: a state saved before them decodes with the default.
_ADDED_LATER = {(Participant, "node_id")}


def _decode(cls: type[_T], row: Mapping[str, Any]) -> _T:
    return cls(
        **{
            name: decode(row[name])
            for name, _, decode in _LAYOUT[cls]
            if name in row or (cls, name) not in _ADDED_LATER
        }
    )
