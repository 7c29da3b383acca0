"""Curbside consult routing: a pure state machine, with no I/O and no clock of its own.

A PCP with a patient in the room asks for a psychiatrist. ``open_request`` turns the request
into a :class:`CurbsideState`; every later event is a function
``(state, ..., now) -> Transition(state, effects)`` that never mutates its input. Callers use
the package as one namespace (``from signaling import curbside as cs``; ``cs.accept``,
``cs.Status``); the modules say where each part lives::

    inputs.py       Urgency, Mode, Tier, Presence; ConsultRequest, OnCall, RoutingPolicy
    state.py        Status, CurbsideState and its stored format (FORMAT, to_dict / from_dict)
    effects.py      Ring, StopRinging, Taken, ...: what the handler does after the commit
    transitions.py  Transition; open_request, accept, decline, drop, tick, cancel, ... (the
                    state diagram, ringing rules, late accepts)
    times.py        is_overdue, minutes_possible, consult_times: time on a consult
    errors.py       the error tree: already_taken, not_rung, invalid_minutes, ...

    signaling/curbside_store.py     keeps the state in the database, compare-and-set
    signaling/curbside_events.py    socket events and the scheduler that calls tick
    signaling/curbside_presence.py  dashboard sockets, agreed across processes

Many processes, one truth
    Nothing here lives in one process's memory. A state is a plain value that round-trips
    through JSON (``to_dict``/``from_dict``) and carries a ``version`` bumped by every change. The
    store applies a transition with ``UPDATE ... WHERE id = ? AND version = ?`` and, when that
    touches no row, reloads and calls the function again. So two accepts that race are applied
    one after the other: the first wins, the second sees ``accepted_by`` set and fails with
    ``already_taken``; the winner's own retry is a no-op. Time-based escalation is the
    transition :func:`tick`, which any scheduler in any process may call as often as it likes: it
    acts only once the ``ring_deadline`` stored in the state has passed, and the next deadline
    moves forward, so a repeated tick changes nothing. The ring timeout, licence rule and written
    answer target are copied into the state when the request opens, so every process treats one
    request alike even while a configuration change rolls out.
"""

from signaling.curbside.effects import (
    Effect,
    Escalated,
    QueuedWritten,
    Ring,
    StatusForPcp,
    StopReason,
    StopRinging,
    Taken,
)
from signaling.curbside.errors import (
    AlreadyAnswered,
    AlreadyTaken,
    CurbsideConflict,
    ImplausibleMinutes,
    NotParticipant,
    NotRinging,
    NotRung,
    RequestCancelled,
)
from signaling.curbside.inputs import (
    DEFAULT_ANSWER_TARGETS,
    ConsultRequest,
    Mode,
    OnCall,
    Presence,
    RoutingPolicy,
    Tier,
    Urgency,
)
from signaling.curbside.state import (
    CANCELLABLE,
    FORMAT,
    MAX_WRITTEN_MINUTES,
    TERMINAL,
    CurbsideState,
    Status,
)
from signaling.curbside.times import (
    ConsultTimes,
    consult_times,
    is_overdue,
    minutes_possible,
)
from signaling.curbside.transitions import (
    Transition,
    accept,
    acknowledge,
    answer_written,
    call_connected,
    cancel,
    complete,
    decline,
    drop,
    end_call,
    open_request,
    start_writing,
    tick,
)

__all__ = [
    "CANCELLABLE",
    "DEFAULT_ANSWER_TARGETS",
    "FORMAT",
    "MAX_WRITTEN_MINUTES",
    "TERMINAL",
    "AlreadyAnswered",
    "AlreadyTaken",
    "ConsultRequest",
    "ConsultTimes",
    "CurbsideConflict",
    "CurbsideState",
    "Effect",
    "Escalated",
    "ImplausibleMinutes",
    "Mode",
    "NotParticipant",
    "NotRinging",
    "NotRung",
    "OnCall",
    "Presence",
    "QueuedWritten",
    "RequestCancelled",
    "Ring",
    "RoutingPolicy",
    "Status",
    "StatusForPcp",
    "StopReason",
    "StopRinging",
    "Taken",
    "Tier",
    "Transition",
    "Urgency",
    "accept",
    "acknowledge",
    "answer_written",
    "call_connected",
    "cancel",
    "complete",
    "consult_times",
    "decline",
    "drop",
    "end_call",
    "is_overdue",
    "minutes_possible",
    "open_request",
    "start_writing",
    "tick",
]
