"""The visit room and waiting room state machine, without sockets or a database.

Personas: Dr Ada (psychiatrist) and Dr Ben (PCP) are the visit's clinicians; Pat is the patient;
Ina (interpreter), Fay (family) and Gus (a PCP for a warm hand-off) are guests with links; Eve
and Dr Zed are not on this visit. Each one's socket is "sid-<name>".
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from server.errors import Conflict, Forbidden, Gone, LiaisonError, NotFound
from signaling.rooms import (
    LINK_REVOKED,
    Attendee,
    AwayPeer,
    DenyReason,
    Effect,
    Joined,
    Kind,
    LeftReason,
    LobbyEntry,
    LobbyUpdate,
    Peer,
    PeerJoined,
    PeerLeft,
    Presence,
    Removed,
    Replaced,
    RoomConflict,
    RoomForbidden,
    RoomState,
    Transition,
    UnknownParticipant,
    VisitClosed,
    VisitEnded,
    VisitStatus,
    Waiting,
    admit,
    away_peers,
    can_signal,
    cancel,
    clinician_connections,
    deny,
    disconnect,
    disconnect_node,
    end,
    expire,
    in_call_connections,
    invite,
    join,
    leave,
    lobby,
    mark_no_show,
    nodes,
    return_to_lobby,
    revoke,
)

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
GRACE = timedelta(minutes=2)

ADA, BEN, PAT, INA, FAY, GUS = "user:1", "user:2", "link:10", "link:11", "link:12", "link:13"
EVE, ZED = "link:99", "user:99"
NAMES = {ADA: "Dr Ada", BEN: "Dr Ben", PAT: "Pat", INA: "Ina", FAY: "Fay", GUS: "Gus"}
GUESTS = (INA, FAY, GUS)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def sid(pid: str) -> str:
    return "sid-" + NAMES[pid].split()[-1].lower()


def room(**kw: Any) -> RoomState:
    """A visit with both clinicians, the patient and three guests invited; nobody connected."""
    s = RoomState.create(7, {ADA: NAMES[ADA], BEN: NAMES[BEN]}, **kw)
    s = invite(s, PAT, Kind.PATIENT, NAMES[PAT], T0).state
    for guest in GUESTS:
        s = invite(s, guest, Kind.GUEST, NAMES[guest], T0).state
    return s


def peer(pid: str, conn: str | None = None) -> Peer:
    kind = Kind.CLINICIAN if pid.startswith("user:") else Kind.GUEST
    kind = Kind.PATIENT if pid == PAT else kind
    return Peer(pid, kind, NAMES[pid], conn or sid(pid))


def away(pid: str, since: datetime) -> AwayPeer:
    p = peer(pid)
    return AwayPeer(pid, p.kind, p.display_name, since + GRACE)


def call(*pids: str, s: RoomState | None = None, now: datetime = T0) -> RoomState:
    """Ada in the call with each of `pids` joined and admitted by her."""
    s = s or room()
    s = join(s, sid(ADA), ADA, now).state
    for pid in pids:
        s = join(s, sid(pid), pid, now).state
        s = admit(s, ADA, pid, now).state
    return s


def presence(s: RoomState, pid: str) -> Presence:
    p = s.participant(pid)
    assert p is not None
    return p.presence


def refused(error: type[LiaisonError], code: str, fn: Callable[[], object]) -> LiaisonError:
    with pytest.raises(error) as raised:
        fn()
    assert raised.value.code == code
    return raised.value


# Joining and the waiting room


def test_it_puts_a_clinician_straight_into_the_call() -> None:
    s, effects = join(room(), sid(ADA), ADA, at(1))

    assert presence(s, ADA) is Presence.IN_CALL
    assert effects == [
        Joined(sid(ADA), peer(ADA), ()),
        LobbyUpdate((sid(ADA),), ()),
    ]
    assert s.status is VisitStatus.SCHEDULED


def test_it_keeps_patient_waiting_until_a_clinician_admits() -> None:
    s, effects = join(room(), sid(PAT), PAT, at(1))  # the patient is early
    assert effects == [Waiting(sid(PAT), at(1))]
    assert s.status is VisitStatus.WAITING

    s, effects = join(s, sid(ADA), ADA, at(5))
    assert presence(s, PAT) is Presence.WAITING
    assert in_call_connections(s) == (sid(ADA),)
    assert not can_signal(s, sid(ADA), sid(PAT))
    waiting = (LobbyEntry(PAT, Kind.PATIENT, "Pat", at(1)),)
    assert effects == [Joined(sid(ADA), peer(ADA), ()), LobbyUpdate((sid(ADA),), waiting)]

    s, effects = admit(s, ADA, PAT, at(9))
    assert presence(s, PAT) is Presence.IN_CALL
    assert effects == [
        Joined(sid(PAT), peer(PAT), (peer(ADA),)),
        PeerJoined((sid(ADA),), peer(PAT)),
        LobbyUpdate((sid(ADA),), ()),
    ]


def test_it_tells_clinicians_in_the_call_when_someone_starts_waiting() -> None:
    s = call(PAT)
    s = join(s, sid(BEN), BEN, at(1)).state

    s, effects = join(s, sid(INA), INA, at(2))

    entry = LobbyEntry(INA, Kind.GUEST, "Ina", at(2))
    assert effects == [
        Waiting(sid(INA), at(2)),
        LobbyUpdate((sid(ADA), sid(BEN)), (entry,)),
    ]
    assert clinician_connections(s) == (sid(ADA), sid(BEN))


def test_it_lists_the_lobby_longest_waiting_first() -> None:
    s = join(room(), sid(FAY), FAY, at(3)).state
    s = join(s, sid(INA), INA, at(1)).state
    s = join(s, sid(PAT), PAT, at(3)).state

    assert [(e.participant_id, e.since) for e in lobby(s)] == [
        (INA, at(1)),
        (PAT, at(3)),
        (FAY, at(3)),
    ]


def test_it_records_who_admitted_and_when() -> None:
    s = join(join(room(), sid(PAT), PAT, at(1)).state, sid(BEN), BEN, at(2)).state

    s = admit(s, BEN, PAT, at(3)).state

    p = s.participant(PAT)
    assert p is not None
    assert (p.admitted_by, p.admitted_at, p.waiting_since) == (BEN, at(3), None)


def test_it_lets_a_second_clinician_admit() -> None:
    s = call(INA)
    s = join(s, sid(BEN), BEN, at(1)).state
    s = join(s, sid(PAT), PAT, at(2)).state

    s, effects = admit(s, BEN, PAT, at(3))

    assert presence(s, PAT) is Presence.IN_CALL
    assert PeerJoined((sid(ADA), sid(BEN), sid(INA)), peer(PAT)) in effects


def test_it_lets_a_clinician_admit_while_the_other_clinician_is_away() -> None:
    s = join(room(), sid(ADA), ADA, T0).state
    s = join(s, sid(PAT), PAT, at(1)).state
    s = disconnect(s, sid(ADA), at(2)).state

    s = admit(s, BEN, PAT, at(3)).state

    assert presence(s, PAT) is Presence.IN_CALL
    # Admitted but without a clinician in the call, so the visit has not started.
    assert s.status is VisitStatus.WAITING
    assert s.started_at is None


@pytest.mark.parametrize(
    ("by", "code"),
    [
        (PAT, "not_a_clinician"),
        (INA, "not_a_clinician"),
        (EVE, "not_on_visit"),
        (ZED, "not_on_visit"),
    ],
)
def test_it_refuses_admission_by_anyone_but_a_clinician_on_the_visit(by: str, code: str) -> None:
    s = join(join(room(), sid(PAT), PAT, T0).state, sid(FAY), FAY, T0).state

    error = refused(RoomForbidden, code, lambda: admit(s, by, FAY, at(1)))

    assert isinstance(error, Forbidden)
    assert error.status == 403


def test_it_refuses_join_from_someone_not_on_the_visit() -> None:
    refused(RoomForbidden, "not_on_visit", lambda: join(room(), "sid-eve", EVE, T0))
    refused(RoomForbidden, "not_on_visit", lambda: join(room(), "sid-zed", ZED, T0))


@pytest.mark.parametrize(
    ("target", "setup", "error", "code"),
    [
        (EVE, [], UnknownParticipant, "participant_not_found"),
        (BEN, [], RoomConflict, "target_is_clinician"),
        (PAT, [], RoomConflict, "not_waiting"),  # not connected at all
        (PAT, ["pat_in_call"], RoomConflict, "already_admitted"),
        (PAT, ["pat_away_admitted"], RoomConflict, "already_admitted"),
        (PAT, ["pat_away_waiting"], RoomConflict, "not_waiting"),
    ],
)
def test_it_refuses_admitting_who_is_not_waiting(
    target: str, setup: list[str], error: type[LiaisonError], code: str
) -> None:
    s = join(room(), sid(ADA), ADA, T0).state
    if "pat_in_call" in setup or "pat_away_admitted" in setup:
        s = admit(join(s, sid(PAT), PAT, T0).state, ADA, PAT, T0).state
    if "pat_away_admitted" in setup:
        s = disconnect(s, sid(PAT), at(1)).state
    if "pat_away_waiting" in setup:
        s = disconnect(join(s, sid(PAT), PAT, T0).state, sid(PAT), at(1)).state

    refused(error, code, lambda: admit(s, ADA, target, at(2)))


def test_it_refuses_a_connection_already_used_by_someone_else() -> None:
    s = join(room(), sid(PAT), PAT, T0).state

    refused(RoomConflict, "connection_in_use", lambda: join(s, sid(PAT), INA, at(1)))


def test_it_answers_a_repeated_join_without_changing_state() -> None:
    s = call(PAT)
    s = join(s, sid(INA), INA, at(1)).state

    for pid, expected in [
        (ADA, [Joined(sid(ADA), peer(ADA), (peer(PAT),)), LobbyUpdate((sid(ADA),), lobby(s))]),
        (PAT, [Joined(sid(PAT), peer(PAT), (peer(ADA),))]),
        (INA, [Waiting(sid(INA), at(1))]),
    ]:
        again, effects = join(s, sid(pid), pid, at(5))
        assert again is s
        assert effects == expected


# Connections: replacement, drops and the grace window


def test_it_replaces_the_old_connection_on_reload() -> None:
    s = call(PAT)

    s, effects = join(s, "sid-pat-2", PAT, at(10))

    assert effects == [
        Replaced(sid(PAT)),
        PeerLeft((sid(ADA),), PAT, sid(PAT), LeftReason.REPLACED),
        Joined("sid-pat-2", peer(PAT, "sid-pat-2"), (peer(ADA),)),
        PeerJoined((sid(ADA),), peer(PAT, "sid-pat-2")),
    ]
    assert can_signal(s, sid(ADA), "sid-pat-2")
    assert not can_signal(s, sid(ADA), sid(PAT))


def test_it_replaces_a_waiting_connection_and_keeps_its_place_in_the_lobby() -> None:
    s = join(join(room(), sid(ADA), ADA, T0).state, sid(PAT), PAT, at(1)).state

    s, effects = join(s, "sid-pat-2", PAT, at(30))

    # The lobby itself did not change, so clinicians hear nothing.
    assert effects == [Replaced(sid(PAT)), Waiting("sid-pat-2", at(1))]


def test_it_ignores_a_late_disconnect_of_a_replaced_connection() -> None:
    s = join(call(PAT), "sid-pat-2", PAT, at(10)).state

    again, effects = disconnect(s, sid(PAT), at(11))

    assert again is s
    assert effects == []


def test_it_readmits_a_participant_who_reconnects_within_grace() -> None:
    s = call(PAT)

    s, effects = disconnect(s, sid(PAT), at(100))
    assert effects == [PeerLeft((sid(ADA),), PAT, sid(PAT), LeftReason.DISCONNECTED)]
    assert presence(s, PAT) is Presence.AWAY

    s, effects = join(s, "sid-pat-2", PAT, at(100) + GRACE - timedelta(microseconds=1))
    assert presence(s, PAT) is Presence.IN_CALL
    assert effects == [
        Joined("sid-pat-2", peer(PAT, "sid-pat-2"), (peer(ADA),)),
        PeerJoined((sid(ADA),), peer(PAT, "sid-pat-2")),
    ]


# While Pat was offline, what became of Ina (also in the call), and how Pat's rejoin lists her.
WHILE_PAT_AWAY: dict[str, tuple[Callable[[RoomState], RoomState], str]] = {
    "left": (lambda s: leave(s, sid(INA), at(20)).state, "gone"),
    "revoked": (lambda s: revoke(s, INA, at(20)).state, "gone"),
    "sent_back": (lambda s: return_to_lobby(s, ADA, INA, at(20)).state, "gone"),
    "dropped": (lambda s: disconnect(s, sid(INA), at(20)).state, "away"),
    "dropped_and_back": (
        lambda s: join(disconnect(s, sid(INA), at(20)).state, "sid-ina-2", INA, at(25)).state,
        "present",
    ),
}


@pytest.mark.parametrize("what", list(WHILE_PAT_AWAY))
def test_it_tells_a_returning_participant_who_is_away_and_who_is_gone(what: str) -> None:
    happen, expected = WHILE_PAT_AWAY[what]
    s = disconnect(call(PAT, INA), sid(PAT), at(10)).state
    s = happen(s)

    s, effects = join(s, "sid-pat-2", PAT, at(30) + GRACE / 2)

    joined = effects[0]
    assert isinstance(joined, Joined) and joined.conn_id == "sid-pat-2"
    ina = {"present": [peer(INA, "sid-ina-2")], "away": [], "gone": []}[expected]
    assert joined.peers == (peer(ADA), *ina)
    assert joined.away == ((away(INA, at(20)),) if expected == "away" else ())
    assert away_peers(s) == joined.away


def test_it_does_not_list_as_away_someone_whose_grace_ran_out_meanwhile() -> None:
    s = disconnect(call(PAT, INA), sid(INA), at(5)).state
    s = disconnect(s, sid(PAT), at(10)).state

    effects = join(s, "sid-pat-2", PAT, at(5) + GRACE).effects

    assert effects == [
        PeerLeft((sid(ADA),), INA, None, LeftReason.TIMED_OUT),
        Joined("sid-pat-2", peer(PAT, "sid-pat-2"), (peer(ADA),), ()),
        PeerJoined((sid(ADA),), peer(PAT, "sid-pat-2")),
    ]


# How someone away (Ina, dropped at 10) loses their seat for good while the others are online.
AWAY_SEAT_ENDS: dict[str, tuple[Callable[[RoomState], Transition], LeftReason]] = {
    "revoked": (lambda s: revoke(s, INA, at(20)), LeftReason.REMOVED),
    "sent_back": (lambda s: return_to_lobby(s, ADA, INA, at(20)), LeftReason.RETURNED_TO_LOBBY),
    "grace_over": (lambda s: expire(s, at(10) + GRACE), LeftReason.TIMED_OUT),
}


@pytest.mark.parametrize("how", list(AWAY_SEAT_ENDS))
def test_the_call_hears_at_once_when_someone_away_loses_their_seat(how: str) -> None:
    end_seat, reason = AWAY_SEAT_ENDS[how]
    s = disconnect(call(PAT, INA), sid(INA), at(10)).state

    s, effects = end_seat(s)

    # No connection to name: the others know the tile by who it is.
    assert effects == [PeerLeft((sid(ADA), sid(PAT)), INA, None, reason)]
    assert away_peers(s) == ()


def test_a_grace_that_ran_out_is_announced_by_whatever_transition_comes_next() -> None:
    s = disconnect(call(PAT, INA), sid(INA), at(10)).state

    s, effects = join(s, sid(GUS), GUS, at(10) + GRACE)

    assert effects[0] == PeerLeft((sid(ADA), sid(PAT)), INA, None, LeftReason.TIMED_OUT)
    assert isinstance(effects[1], Waiting)
    # Announced once: the next transition finds nobody away.
    assert not any(isinstance(e, PeerLeft) for e in expire(s, at(10) + GRACE * 2).effects)


def test_a_clinician_whose_grace_runs_out_is_gone_for_the_patient() -> None:
    s = disconnect(call(PAT), sid(ADA), at(10)).state

    assert expire(s, at(10) + GRACE).effects == [
        PeerLeft((sid(PAT),), ADA, None, LeftReason.TIMED_OUT)
    ]


def test_nobody_is_told_of_a_lost_seat_when_nobody_is_in_the_call() -> None:
    s = disconnect(call(PAT), sid(PAT), at(10)).state
    s = disconnect(s, sid(ADA), at(11)).state

    s, effects = expire(s, at(10) + GRACE)

    assert effects == []
    assert presence(s, PAT) is Presence.ABSENT and presence(s, ADA) is Presence.AWAY


def test_it_lists_the_away_in_the_answer_to_a_repeated_join() -> None:
    s = disconnect(call(PAT, INA), sid(INA), at(10)).state

    assert join(s, sid(PAT), PAT, at(11)).effects == [
        Joined(sid(PAT), peer(PAT), (peer(ADA),), (away(INA, at(10)),))
    ]


def test_it_does_not_list_as_away_someone_who_dropped_from_the_lobby() -> None:
    s = call(PAT)
    s = join(s, sid(INA), INA, at(1)).state
    s = disconnect(s, sid(INA), at(2)).state
    s = disconnect(s, sid(PAT), at(3)).state

    assert presence(s, INA) is Presence.AWAY
    assert away_peers(s) == (away(PAT, at(3)),)
    s, effects = join(s, sid(BEN), BEN, at(4))
    assert effects[0] == Joined(sid(BEN), peer(BEN), (peer(ADA),), (away(PAT, at(3)),))


def test_it_asks_for_admission_again_after_the_grace_window() -> None:
    s = disconnect(call(PAT), sid(PAT), at(100)).state

    s, effects = join(s, "sid-pat-2", PAT, at(100) + GRACE)

    assert presence(s, PAT) is Presence.WAITING
    p = s.participant(PAT)
    assert p is not None and p.admitted_by is None
    since = at(100) + GRACE
    assert effects == [
        PeerLeft((sid(ADA),), PAT, None, LeftReason.TIMED_OUT),
        Waiting("sid-pat-2", since),
        LobbyUpdate((sid(ADA),), (LobbyEntry(PAT, Kind.PATIENT, "Pat", since),)),
    ]


def test_it_keeps_a_clinicians_place_when_they_drop() -> None:
    s = call(PAT)
    s, effects = disconnect(s, sid(ADA), at(10))
    assert effects == [PeerLeft((sid(PAT),), ADA, sid(ADA), LeftReason.DISCONNECTED)]
    assert s.status is VisitStatus.IN_PROGRESS

    s, effects = join(s, "sid-ada-2", ADA, at(20))

    assert effects[:2] == [
        Joined("sid-ada-2", peer(ADA, "sid-ada-2"), (peer(PAT),)),
        PeerJoined((sid(PAT),), peer(ADA, "sid-ada-2")),
    ]
    assert can_signal(s, "sid-ada-2", sid(PAT))


def test_it_keeps_a_waiting_participants_place_across_a_short_drop() -> None:
    s = join(join(room(), sid(ADA), ADA, T0).state, sid(PAT), PAT, at(1)).state
    s = join(s, sid(INA), INA, at(2)).state
    s, effects = disconnect(s, sid(PAT), at(3))
    assert [e.participant_id for e in lobby(s)] == [INA]
    assert effects == [LobbyUpdate((sid(ADA),), lobby(s))]

    s = join(s, "sid-pat-2", PAT, at(60)).state

    assert [(e.participant_id, e.since) for e in lobby(s)] == [(PAT, at(1)), (INA, at(2))]


def test_it_holds_the_seat_of_an_admitted_participant_within_grace() -> None:
    s = disconnect(call(PAT, INA, FAY), sid(FAY), at(10)).state
    s = join(s, sid(GUS), GUS, at(11)).state

    refused(RoomConflict, "room_full", lambda: admit(s, ADA, GUS, at(12)))

    s, effects = expire(s, at(10) + GRACE)
    assert effects == [PeerLeft((sid(ADA), sid(PAT), sid(INA)), FAY, None, LeftReason.TIMED_OUT)]
    assert presence(s, FAY) is Presence.ABSENT
    s = admit(s, ADA, GUS, at(10) + GRACE).state
    assert presence(s, GUS) is Presence.IN_CALL


def test_it_expires_lazily_inside_any_transition() -> None:
    s = disconnect(call(PAT, INA, FAY), sid(FAY), at(10)).state
    s = join(s, sid(GUS), GUS, at(11)).state

    s = admit(s, ADA, GUS, at(10) + GRACE).state

    assert presence(s, FAY) is Presence.ABSENT
    assert presence(s, GUS) is Presence.IN_CALL


def test_expire_changes_nothing_before_the_grace_window_ends() -> None:
    s = disconnect(call(PAT), sid(PAT), at(10)).state

    again, effects = expire(s, at(10) + GRACE - timedelta(seconds=1))

    assert (again, effects) == (s, [])
    assert again is s


def test_it_frees_the_seat_when_a_participant_leaves() -> None:
    s = call(PAT)

    s, effects = leave(s, sid(PAT), at(10))

    assert effects == [PeerLeft((sid(ADA),), PAT, sid(PAT), LeftReason.LEFT)]
    assert presence(s, PAT) is Presence.ABSENT
    assert presence(join(s, "sid-pat-2", PAT, at(11)).state, PAT) is Presence.WAITING


def test_it_refuses_leave_from_a_connection_not_in_the_room() -> None:
    refused(RoomConflict, "not_in_room", lambda: leave(call(PAT), "sid-eve", at(1)))


# The mesh limit


def test_it_refuses_admitting_a_fifth_participant_with_room_full() -> None:
    s = call(PAT, INA, FAY)
    s = join(s, sid(GUS), GUS, at(1)).state

    error = refused(RoomConflict, "room_full", lambda: admit(s, ADA, GUS, at(2)))

    assert isinstance(error, Conflict)
    assert presence(s, GUS) is Presence.WAITING


def test_it_refuses_a_clinician_joining_a_full_room() -> None:
    s = call(PAT, INA, FAY)

    refused(RoomConflict, "room_full", lambda: join(s, sid(BEN), BEN, at(1)))


def test_it_respects_a_smaller_mesh_limit() -> None:
    s = call(PAT, s=room(max_in_call=2))
    s = join(s, sid(INA), INA, at(1)).state

    refused(RoomConflict, "room_full", lambda: admit(s, ADA, INA, at(2)))


# Deny, return to the lobby, revoke


def test_it_denies_a_waiting_participant_and_keeps_them_out() -> None:
    s = call(PAT)
    s = join(s, sid(GUS), GUS, at(1)).state

    s, effects = deny(s, ADA, GUS, DenyReason.NOT_RECOGNISED, at(2))

    assert effects == [Removed(sid(GUS), "not_recognised"), LobbyUpdate((sid(ADA),), ())]
    assert presence(s, GUS) is Presence.REMOVED
    refused(RoomForbidden, "removed", lambda: join(s, "sid-gus-2", GUS, at(3)))
    assert disconnect(s, sid(GUS), at(4)).state is s


def test_it_lets_a_denied_identity_back_when_invited_again() -> None:
    s = join(room(), sid(GUS), GUS, T0).state
    s = deny(s, ADA, GUS, DenyReason.RESCHEDULED, at(1)).state

    s = invite(s, GUS, Kind.GUEST, "Gus", at(2)).state

    assert presence(join(s, "sid-gus-2", GUS, at(3)).state, GUS) is Presence.WAITING


def test_it_refuses_to_deny_someone_in_the_call() -> None:
    s = call(PAT)

    refused(RoomConflict, "not_waiting", lambda: deny(s, ADA, PAT, DenyReason.OTHER, at(1)))
    refused(RoomForbidden, "not_a_clinician", lambda: deny(s, PAT, INA, DenyReason.OTHER, at(1)))


def test_it_returns_an_admitted_participant_to_the_lobby() -> None:
    s = call(PAT, INA)

    s, effects = return_to_lobby(s, ADA, INA, at(10))

    assert effects == [
        PeerLeft((sid(ADA), sid(PAT)), INA, sid(INA), LeftReason.RETURNED_TO_LOBBY),
        Waiting(sid(INA), at(10), returned=True),
        LobbyUpdate((sid(ADA),), (LobbyEntry(INA, Kind.GUEST, "Ina", at(10)),)),
    ]
    assert not can_signal(s, sid(PAT), sid(INA))
    # A reload does not bring them back into the call.
    s = join(s, "sid-ina-2", INA, at(11)).state
    assert presence(s, INA) is Presence.WAITING


def test_it_returns_an_away_participant_to_the_lobby() -> None:
    s = disconnect(call(PAT), sid(PAT), at(10)).state

    s, effects = return_to_lobby(s, BEN, PAT, at(11))

    assert effects == [PeerLeft((sid(ADA),), PAT, None, LeftReason.RETURNED_TO_LOBBY)]
    s, effects = join(s, "sid-pat-2", PAT, at(12))
    assert presence(s, PAT) is Presence.WAITING
    assert effects[0] == Waiting("sid-pat-2", at(11))


def test_it_refuses_to_return_someone_not_admitted() -> None:
    s = join(call(), sid(PAT), PAT, at(1)).state

    refused(RoomConflict, "not_admitted", lambda: return_to_lobby(s, ADA, PAT, at(2)))
    refused(RoomConflict, "target_is_clinician", lambda: return_to_lobby(s, BEN, ADA, at(2)))


def test_it_removes_a_revoked_link_wherever_it_is() -> None:
    s = call(PAT, INA)

    s, effects = revoke(s, INA, at(5))

    assert effects == [
        Removed(sid(INA), LINK_REVOKED),
        PeerLeft((sid(ADA), sid(PAT)), INA, sid(INA), LeftReason.REMOVED),
    ]
    assert revoke(s, INA, at(6)) == Transition(s, [])
    s, effects = revoke(s, FAY, at(7))  # never connected
    assert effects == []
    assert presence(s, FAY) is Presence.REMOVED


def test_it_refuses_a_second_invitation_of_the_same_identity() -> None:
    refused(RoomConflict, "already_invited", lambda: invite(room(), PAT, Kind.PATIENT, "P", T0))


def test_it_lets_a_clinician_added_during_the_visit_join_directly() -> None:
    s = invite(call(PAT), ZED, Kind.CLINICIAN, "Dr Zed", at(1)).state

    s = join(s, "sid-zed", ZED, at(2)).state

    assert presence(s, ZED) is Presence.IN_CALL


# Signalling


def test_it_refuses_signal_to_connection_outside_room() -> None:
    s = call(PAT)
    s = join(s, sid(INA), INA, at(1)).state  # waiting, not admitted

    assert can_signal(s, sid(ADA), sid(PAT))
    assert can_signal(s, sid(PAT), sid(ADA))
    assert not can_signal(s, sid(ADA), sid(INA))
    assert not can_signal(s, sid(INA), sid(ADA))
    assert not can_signal(s, sid(ADA), "sid-eve")
    assert not can_signal(s, "sid-eve", sid(ADA))
    assert not can_signal(s, sid(ADA), sid(ADA))


def test_it_refuses_signal_from_a_dropped_connection() -> None:
    s = disconnect(call(PAT), sid(PAT), at(1)).state

    assert not can_signal(s, sid(PAT), sid(ADA))
    assert in_call_connections(s) == (sid(ADA),)


# Visit lifecycle


def test_it_goes_from_scheduled_to_waiting_and_back_before_the_call_starts() -> None:
    s = join(room(), sid(PAT), PAT, at(1)).state
    assert s.status is VisitStatus.WAITING

    s = leave(s, sid(PAT), at(2)).state

    assert s.status is VisitStatus.SCHEDULED


def test_it_starts_the_visit_when_a_clinician_and_a_patient_are_together() -> None:
    s = join(room(), sid(ADA), ADA, at(1)).state
    s = join(s, sid(PAT), PAT, at(2)).state
    assert (s.status, s.started_at) == (VisitStatus.WAITING, None)

    s = admit(s, ADA, PAT, at(3)).state
    assert (s.status, s.started_at) == (VisitStatus.IN_PROGRESS, at(3))

    # Drops do not un-start a visit, and started_at is the first moment only.
    s = disconnect(disconnect(s, sid(PAT), at(4)).state, sid(ADA), at(5)).state
    s = join(join(s, "sid-ada-2", ADA, at(6)).state, "sid-pat-2", PAT, at(7)).state
    assert (s.status, s.started_at) == (VisitStatus.IN_PROGRESS, at(3))


def test_it_starts_the_visit_with_a_guest_too() -> None:
    s = call(INA, now=at(4))

    assert s.started_at == at(4)


def test_it_completes_the_visit_and_disconnects_everyone() -> None:
    s = call(PAT)
    s = join(s, sid(BEN), BEN, at(1)).state
    s = join(s, sid(INA), INA, at(2)).state
    s = deny(join(s, sid(GUS), GUS, at(3)).state, BEN, GUS, DenyReason.WRONG_VISIT, at(3)).state

    s, effects = end(s, BEN, at(60))

    assert effects == [VisitEnded((sid(ADA), sid(BEN), sid(PAT), sid(INA)), VisitStatus.COMPLETED)]
    assert (s.status, s.ended_at, s.ended_by) == (VisitStatus.COMPLETED, at(60), BEN)
    assert in_call_connections(s) == ()
    assert lobby(s) == ()
    assert presence(s, GUS) is Presence.REMOVED  # the record keeps the denial


def test_it_refuses_to_end_a_visit_that_never_started() -> None:
    s = join(join(room(), sid(ADA), ADA, T0).state, sid(PAT), PAT, T0).state

    refused(RoomConflict, "not_started", lambda: end(s, ADA, at(1)))
    refused(RoomForbidden, "not_a_clinician", lambda: end(call(PAT), PAT, at(1)))


def test_it_cancels_a_visit_that_has_not_started() -> None:
    s = join(room(), sid(PAT), PAT, T0).state

    s, effects = cancel(s, at(1))

    assert effects == [VisitEnded((sid(PAT),), VisitStatus.CANCELLED)]
    assert (s.status, s.ended_at, s.ended_by) == (VisitStatus.CANCELLED, at(1), None)
    refused(RoomConflict, "already_started", lambda: cancel(call(PAT), at(1)))


def test_it_marks_a_no_show_only_while_the_patient_is_not_there() -> None:
    refused(
        RoomConflict,
        "patient_present",
        lambda: mark_no_show(join(room(), sid(PAT), PAT, T0).state, at(1)),
    )
    refused(RoomConflict, "already_started", lambda: mark_no_show(call(INA), at(1)))

    s, effects = mark_no_show(join(room(), sid(ADA), ADA, T0).state, at(900))

    assert effects == [VisitEnded((sid(ADA),), VisitStatus.NO_SHOW)]
    assert s.status is VisitStatus.NO_SHOW
    assert mark_no_show(room(), at(900)).effects == []


@pytest.mark.parametrize(
    ("close", "code"),
    [
        (lambda s: end(s, ADA, at(60)).state, "visit_ended"),
        (lambda s: cancel(room(), at(60)).state, "visit_cancelled"),
        (lambda s: mark_no_show(room(), at(60)).state, "visit_ended"),
    ],
)
def test_it_refuses_to_join_an_ended_visit(
    close: Callable[[RoomState], RoomState], code: str
) -> None:
    s = close(call(PAT))

    error = refused(VisitClosed, code, lambda: join(s, "sid-pat-2", PAT, at(61)))

    assert isinstance(error, Gone)
    assert error.status == 410


@pytest.mark.parametrize(
    "command",
    [
        lambda s: leave(s, sid(PAT), at(61)),
        lambda s: invite(s, EVE, Kind.GUEST, "Eve", at(61)),
        lambda s: revoke(s, PAT, at(61)),
        lambda s: admit(s, ADA, PAT, at(61)),
        lambda s: deny(s, ADA, PAT, DenyReason.OTHER, at(61)),
        lambda s: return_to_lobby(s, ADA, PAT, at(61)),
        lambda s: end(s, ADA, at(61)),
        lambda s: cancel(s, at(61)),
        lambda s: mark_no_show(s, at(61)),
    ],
)
def test_it_refuses_every_change_after_the_visit_ended(
    command: Callable[[RoomState], Transition],
) -> None:
    s = end(call(PAT), ADA, at(60)).state

    refused(VisitClosed, "visit_ended", lambda: command(s))
    assert disconnect(s, sid(PAT), at(61)) == Transition(s, [])
    assert expire(s, at(9999)) == Transition(s, [])


def test_it_records_everyone_who_was_ever_in_the_call() -> None:
    s = join(room(), sid(ADA), ADA, at(1)).state
    s = join(s, sid(PAT), PAT, at(2)).state
    s = admit(s, ADA, PAT, at(3)).state
    s = join(s, sid(INA), INA, at(4)).state
    s = admit(s, ADA, INA, at(5)).state
    s = leave(s, sid(INA), at(6)).state
    s = join(s, "sid-ina-2", INA, at(7)).state
    s = admit(s, ADA, INA, at(8)).state
    s = join(s, sid(GUS), GUS, at(9)).state  # only ever waited

    s = end(s, ADA, at(10)).state

    assert s.attendance == (
        Attendee(ADA, Kind.CLINICIAN, "Dr Ada", at(1)),
        Attendee(PAT, Kind.PATIENT, "Pat", at(3)),
        Attendee(INA, Kind.GUEST, "Ina", at(5)),
    )


# Server processes (nodes): each connection names the node holding its socket


def test_it_remembers_which_node_holds_each_connection_until_it_drops() -> None:
    s = join(room(), sid(ADA), ADA, T0, node_id="node-a").state
    s = join(s, sid(PAT), PAT, at(1), node_id="node-b").state
    ada, pat = s.participant(ADA), s.participant(PAT)
    assert ada is not None and ada.node_id == "node-a"
    assert pat is not None and pat.node_id == "node-b"
    assert nodes(s) == {"node-a", "node-b"}

    s = disconnect(s, sid(PAT), at(2)).state
    s = leave(s, sid(ADA), at(3)).state

    assert nodes(s) == frozenset()
    assert all(p.node_id is None for p in s.participants)


def test_a_dead_nodes_connections_drop_as_if_each_disconnected() -> None:
    s = room()
    s = join(s, sid(ADA), ADA, T0, node_id="node-b").state
    for pid in (PAT, INA):
        s = join(s, sid(pid), pid, T0, node_id="node-a").state
        s = admit(s, ADA, pid, T0).state
    s = join(s, sid(FAY), FAY, T0, node_id="node-a").state  # waiting

    s, effects = disconnect_node(s, "node-a", at(10))

    assert [presence(s, pid) for pid in (ADA, PAT, INA, FAY)] == [
        Presence.IN_CALL,
        Presence.AWAY,
        Presence.AWAY,
        Presence.AWAY,
    ]
    assert effects == [
        PeerLeft((sid(ADA),), PAT, sid(PAT), LeftReason.DISCONNECTED),
        PeerLeft((sid(ADA),), INA, sid(INA), LeftReason.DISCONNECTED),
        LobbyUpdate((sid(ADA),), ()),
    ]
    assert nodes(s) == {"node-b"}
    # Idempotent: a second sweeper finds nothing left to do.
    assert disconnect_node(s, "node-a", at(11)) == Transition(s, [])

    # The patient's browser reconnects to the surviving node within the grace: still admitted.
    s, effects = join(s, "sid-pat-2", PAT, at(10) + GRACE / 2, node_id="node-b")
    assert presence(s, PAT) is Presence.IN_CALL
    assert effects[0] == Joined(
        "sid-pat-2", peer(PAT, "sid-pat-2"), (peer(ADA),), (away(INA, at(10)),)
    )


def test_a_dead_node_leaves_a_closed_room_closed() -> None:
    s = join(call(PAT), "sid-pat-2", PAT, at(1), node_id="node-a").state
    s = end(s, ADA, at(2)).state

    assert disconnect_node(s, "node-a", at(3)) == Transition(s, [])


def test_a_room_stored_before_nodes_were_recorded_still_loads() -> None:
    d = json.loads(json.dumps(call(PAT).to_dict()))
    for p in d["participants"]:
        del p["node_id"]

    s = RoomState.from_dict(d)

    assert s == call(PAT)
    with pytest.raises(KeyError):
        del d["participants"][0]["conn_id"]
        RoomState.from_dict(d)


# The value itself: versions, serialisation, purity


def test_it_bumps_the_version_on_every_change_and_only_then() -> None:
    s = room()
    assert s.version == 4  # four invitations
    s2 = join(s, sid(PAT), PAT, T0).state
    assert s2.version == 5
    assert join(s2, sid(PAT), PAT, at(1)).state.version == 5
    assert disconnect(s2, "sid-nobody", at(1)).state.version == 5
    s3 = disconnect(s2, sid(PAT), at(1)).state
    assert s3.version == 6
    assert expire(s3, at(1) + GRACE).state.version == 7


def test_it_round_trips_through_a_dict() -> None:
    s = call(PAT, INA)
    s = join(s, sid(BEN), BEN, at(1)).state
    s = disconnect(s, sid(INA), at(2)).state
    s = join(s, sid(FAY), FAY, at(3)).state
    s = revoke(s, GUS, at(4)).state

    d = json.loads(json.dumps(s.to_dict()))

    assert RoomState.from_dict(d) == s
    assert d["schema"] == 1
    assert d["reconnect_grace"] == 120.0
    ended = end(s, ADA, at(9)).state
    assert RoomState.from_dict(json.loads(json.dumps(ended.to_dict()))) == ended


def test_it_reads_timestamps_in_any_utc_offset_back_as_utc() -> None:
    s = join(room(), sid(PAT), PAT, T0).state
    d = s.to_dict()
    d["participants"][2]["waiting_since"] = "2026-01-05T10:00:00+01:00"

    p = RoomState.from_dict(d).participant(PAT)

    assert p is not None and p.waiting_since == T0
    assert p.waiting_since.tzinfo is UTC


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d.update(schema=2), "schema"),
        (lambda d: d["participants"][0].update(admitted_at="2026-01-05T09:00:00"), "naive"),
        (lambda d: d["participants"].append(d["participants"][0]), "duplicate"),
        (lambda d: d["participants"][2].update(conn_id=d["participants"][0]["conn_id"]), "dup"),
        (lambda d: d["attendance"][0].update(first_in_call_at=None), "missing"),
        (lambda d: d["participants"][0].update(kind="admin"), "admin"),
    ],
)
def test_it_refuses_a_malformed_stored_state(
    change: Callable[[dict[str, Any]], object], message: str
) -> None:
    d = call(PAT).to_dict()
    change(d)

    with pytest.raises(ValueError, match=message):
        RoomState.from_dict(d)


def test_it_does_not_mutate_its_input() -> None:
    s = call(PAT)
    s = join(s, sid(INA), INA, at(1)).state
    before = json.dumps(s.to_dict())

    admit(s, ADA, INA, at(2))
    disconnect(s, sid(PAT), at(2))
    end(s, ADA, at(3))
    revoke(s, INA, at(3))

    assert json.dumps(s.to_dict()) == before


@pytest.mark.parametrize(
    "now",
    [datetime(2026, 1, 5, 9, 0), datetime(2026, 1, 5, 9, 0, tzinfo=timezone(timedelta(hours=1)))],
)
def test_it_refuses_a_time_that_is_not_aware_utc(now: datetime) -> None:
    with pytest.raises(ValueError, match="aware UTC"):
        join(room(), sid(PAT), PAT, now)


def test_it_accepts_another_spelling_of_utc_and_stores_utc() -> None:
    s = join(room(), sid(PAT), PAT, datetime(2026, 1, 5, 9, 0, tzinfo=timezone(timedelta(0)))).state

    p = s.participant(PAT)
    assert p is not None and p.waiting_since is not None
    assert p.waiting_since.tzinfo is UTC


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"clinicians": {}}, "at least one clinician"),
        ({"max_in_call": 1}, "max_in_call"),
        ({"reconnect_grace": timedelta(seconds=-1)}, "reconnect_grace"),
    ],
)
def test_it_refuses_a_room_that_cannot_work(kw: dict[str, Any], message: str) -> None:
    args: dict[str, Any] = {"clinicians": {ADA: "Dr Ada"}} | kw

    with pytest.raises(ValueError, match=message):
        RoomState.create(7, **args)


def test_it_reports_errors_in_client_shape() -> None:
    error = refused(RoomConflict, "room_full", lambda: join(call(PAT, INA, FAY), sid(BEN), BEN, T0))

    assert error.to_dict() == {"code": "room_full", "message": "The call is full."}
    assert isinstance(
        refused(UnknownParticipant, "participant_not_found", lambda: admit(room(), ADA, EVE, T0)),
        NotFound,
    )


# Properties over random command sequences

PIDS = [ADA, BEN, PAT, INA, FAY, GUS, EVE]
BYS = [ADA, BEN, ADA, BEN, PAT, EVE]  # mostly clinicians on the visit
# Each identity reconnects on a few sockets of its own, so reloads and stale disconnects happen.
CONNS = [f"{pid}/{n}" for pid in PIDS for n in range(3)]
# A step is a command name and two numbers the runner reads against the current state (pick the
# n-th person waiting, say), so most commands are plausible and generation stays cheap.
STEP = st.tuples(
    st.sampled_from(
        ["join", "admit", "disconnect", "expire"] * 3
        + ["join_any", "admit_any", "leave", "deny", "return", "invite", "node_dies"]
    ),
    st.integers(0, 20),
    st.integers(0, 20),
    st.integers(0, 90),
)
CLOSING = st.tuples(
    st.sampled_from(["end", "cancel", "no_show", "revoke"]),
    st.integers(0, 20),
    st.integers(0, 20),
    st.integers(0, 90),
)


def _command(s: RoomState, name: str, a: int, b: int) -> tuple[str, ...]:
    def nth(options: list[str], i: int) -> str:
        return options[i % len(options)] if options else PIDS[i % len(PIDS)]

    waiting = [e.participant_id for e in lobby(s)]
    admitted = [p.participant_id for p in s.participants if p.admitted_at is not None]
    connected = [p.conn_id for p in s.participants if p.conn_id is not None]
    match name:
        case "join":
            pid = nth(PIDS, a)
            return ("join", f"{pid}/{b % 3}", pid)
        case "join_any":  # maybe someone else's socket
            return ("join", nth(CONNS, a), nth(PIDS, b))
        case "admit" | "deny" | "return":
            return (name, nth(BYS, a), nth(admitted if name == "return" else waiting, b))
        case "admit_any":
            return ("admit", nth(PIDS, a), nth(PIDS, b))
        case "disconnect" | "leave":
            return (name, nth(connected if a % 2 else CONNS, b))
        case "end":
            return ("end", nth(BYS, a))
        case "invite" | "revoke":
            return (name, nth(PIDS, a))
        case "node_dies":
            return (name, NODES[a % len(NODES)])
    return (name,)


NODES = ["node-a", "node-b"]


def _node_of(conn: str) -> str:
    """Sockets spread over two server processes."""
    return NODES[int(conn.rsplit("/", 1)[-1]) % len(NODES)] if "/" in conn else NODES[0]


def _run(s: RoomState, command: tuple[str, ...], now: datetime) -> Transition:
    name, *args = command
    match name:
        case "join":
            return join(s, args[0], args[1], now, node_id=_node_of(args[0]))
        case "node_dies":
            return disconnect_node(s, args[0], now)
        case "disconnect":
            return disconnect(s, args[0], now)
        case "leave":
            return leave(s, args[0], now)
        case "admit":
            return admit(s, args[0], args[1], now)
        case "deny":
            return deny(s, args[0], args[1], DenyReason.OTHER, now)
        case "return":
            return return_to_lobby(s, args[0], args[1], now)
        case "invite":
            return invite(s, args[0], Kind.GUEST, "Someone", now)
        case "revoke":
            return revoke(s, args[0], now)
        case "end":
            return end(s, args[0], now)
        case "cancel":
            return cancel(s, now)
        case "no_show":
            return mark_no_show(s, now)
    return expire(s, now)


def _check(
    before: RoomState, command: tuple[str, ...], after: RoomState, effects: list[Effect]
) -> None:
    clinicians = {p.participant_id for p in after.participants if p.kind is Kind.CLINICIAN}
    in_call = in_call_connections(after)
    assert len(in_call) <= sum(p.holds_seat for p in after.participants) <= after.max_in_call
    conns = [p.conn_id for p in after.participants if p.conn_id is not None]
    assert len(conns) == len(set(conns))
    for p in after.participants:
        if p.kind is not Kind.CLINICIAN and p.presence is Presence.IN_CALL:
            # Nobody is in the call on a patient's or guest's link without a recorded admission.
            assert p.admitted_by in clinicians and p.admitted_at is not None
        if p.kind is not Kind.CLINICIAN and p.admitted:
            assert p.presence in (Presence.IN_CALL, Presence.AWAY)
        was = before.participant(p.participant_id)
        if p.kind is not Kind.CLINICIAN and p.admitted and not (was and was.admitted):
            # Nobody becomes admitted except by a clinician's explicit admit of them.
            assert command[0] == "admit" and command[1] in clinicians
            assert command[2] == p.participant_id
    for p in after.participants:
        # A connection always names its node, and only a connection does.
        assert (p.node_id is None) == (p.conn_id is None)
        if p.conn_id is not None:
            assert p.node_id == _node_of(p.conn_id)
    if command[0] == "node_dies":
        assert command[1] not in nodes(after)
    if after.status.is_terminal:
        assert conns == []
    if after.started_at is not None:
        assert after.status in (VisitStatus.IN_PROGRESS, VisitStatus.COMPLETED)
    for a in [*conns, "nobody"]:
        for b in [*conns, "nobody"]:
            assert can_signal(after, a, b) == (a in in_call and b in in_call and a != b)
    for e in effects:
        match e:
            case PeerJoined(to=to) | PeerLeft(to=to):
                assert to and set(to) <= set(in_call)
            case LobbyUpdate(to=to, waiting=waiting):
                assert to and set(to) <= set(clinician_connections(after))
                assert waiting == lobby(after)
            case Joined(conn_id=conn, peers=peers):
                assert conn in in_call
                assert {p.conn_id for p in peers} == set(in_call) - {conn}
            case Waiting(conn_id=conn):
                assert conn in {
                    p.conn_id for p in after.participants if p.presence is Presence.WAITING
                }
    if after is not before:
        assert after.version == before.version + 1
    assert RoomState.from_dict(json.loads(json.dumps(after.to_dict()))) == after


Step = tuple[str, int, int, int]


class Views:
    """What each connection has been told, built only from effects, as a browser would."""

    def __init__(self) -> None:
        self.peers: dict[str, set[str]] = {}
        self.away: dict[str, set[str]] = {}  # by participant id: they have no connection
        self.lobby: dict[str, tuple[LobbyEntry, ...]] = {}

    def hear(self, effects: list[Effect]) -> None:
        for e in effects:
            match e:
                case Joined(conn_id=conn, peers=peers, away=away):
                    self.peers[conn] = {p.conn_id for p in peers}
                    self.away[conn] = {a.participant_id for a in away}
                case PeerJoined(to=to, peer=p):
                    for c in to:
                        self.peers[c].add(p.conn_id)
                        self.away[c].discard(p.participant_id)
                case PeerLeft(to=to, participant_id=pid, conn_id=gone, reason=reason):
                    for c in to:
                        if gone is None:
                            # Not always still listed: a retried join's answer, just before,
                            # already leaves them out.
                            self.away[c].discard(pid)
                        else:
                            self.peers[c].discard(gone)
                        if reason is LeftReason.DISCONNECTED:
                            self.away[c].add(pid)
                case LobbyUpdate(to=to, waiting=waiting):
                    for c in to:
                        self.lobby[c] = waiting
                case Waiting(conn_id=c) | Removed(conn_id=c) | Replaced(conn_id=c):
                    self.forget(c)
                case VisitEnded(to=to):
                    for c in to:
                        self.forget(c)

    def forget(self, conn: str) -> None:
        self.peers.pop(conn, None)
        self.away.pop(conn, None)
        self.lobby.pop(conn, None)

    def agree_with(self, s: RoomState) -> None:
        in_call = set(in_call_connections(s))
        away = {a.participant_id for a in away_peers(s)}
        for conn in in_call:
            assert self.peers[conn] == in_call - {conn}
            assert self.away[conn] == away
        for conn in clinician_connections(s):
            assert self.lobby[conn] == lobby(s)


@settings(max_examples=100, deadline=None)
@given(
    st.sampled_from([2, 3]),
    st.lists(STEP, min_size=20, max_size=40),
    st.lists(CLOSING, max_size=2),
)
def test_random_commands_never_let_anyone_in_unadmitted_or_overfill_the_call(
    max_in_call: int, steps: list[Step], closing: list[Step]
) -> None:
    s = room(max_in_call=max_in_call)
    now = T0
    views = Views()
    # Closing commands come last, so that most runs get far enough to fill the call.
    for name, a, b, seconds in [*steps, *closing, *steps[:3]]:
        now += timedelta(seconds=seconds)
        command = _command(s, name, a, b)
        snapshot = json.dumps(s.to_dict())
        try:
            after, effects = _run(s, command, now)
        except LiaisonError:
            assert json.dumps(s.to_dict()) == snapshot
            continue
        assert json.dumps(s.to_dict()) == snapshot
        _check(s, command, after, effects)
        views.hear(effects)
        # Everyone in the call (who is there, who is away) and every clinician's lobby list
        # learnt of every change.
        views.agree_with(after)
        s = after


def test_close_ends_a_started_visit_that_was_cancelled_elsewhere() -> None:
    from signaling import rooms

    NOW = T0
    state = RoomState.create(1, {"user:1": "Dr. A"})
    state = rooms.invite(state, "link:1", Kind.PATIENT, "Pat", NOW).state
    state = rooms.join(state, "c1", "user:1", NOW).state
    state = rooms.join(state, "p1", "link:1", NOW).state
    state = rooms.admit(state, "user:1", "link:1", NOW).state
    assert state.status is VisitStatus.IN_PROGRESS
    closed = rooms.close(state, VisitStatus.CANCELLED, NOW)
    assert closed.state.status is VisitStatus.CANCELLED
    assert rooms.in_call_connections(closed.state) == ()
    assert any(isinstance(e, rooms.VisitEnded) for e in closed.effects)
    again = rooms.close(closed.state, VisitStatus.CANCELLED, NOW)
    assert again.state is closed.state and again.effects == []
    with pytest.raises(ValueError):
        rooms.close(state, VisitStatus.WAITING, NOW)


def test_the_wire_deny_reasons_are_the_rooms_deny_reasons() -> None:
    from typing import get_args

    from signaling.events import LobbyDeny

    wire = set(get_args(LobbyDeny.model_fields["reason"].annotation))
    assert wire == {r.value for r in DenyReason}
