"""A request's routing state, and its stored format.

:class:`CurbsideState` is a plain value: the store keeps it as the JSON of ``to_dict`` in
``consult_requests.state`` and every process rebuilds it with ``from_dict``. ``FORMAT`` names the
shape; changing the shape means bumping it and writing a migration for the stored states.
``from_dict`` accepts exactly what ``to_dict`` writes (every key, nothing else, each value of
the right kind), so a corrupt or foreign row fails loudly instead of routing on defaults. It also
reads the previous format, exactly as that release wrote it: during a rolling upgrade a process
of the previous release may still save a state it loaded before the migration ran, and one such
row must not break every reader (the ringing list, the admin's report) until the next save.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from types import MappingProxyType
from typing import Any, Final, TypeVar

from signaling.curbside.inputs import ConsultRequest, Mode, Tier, Urgency, aware

T = TypeVar("T")

# Shape of to_dict(); bump it (and migrate) when the shape changes. 2: writing_started and
# attested_minutes (migration 0009 rewrote the stored format-1 states).
FORMAT: Final = 2
# The most minutes one written answer may be attested at: e-consult codes top out at "31
# minutes or more", and a figure beyond a few hours is a typing slip, not a consult.
MAX_WRITTEN_MINUTES: Final = 240


class Status(StrEnum):
    RINGING = "ringing"
    ACCEPTED = "accepted"
    IN_CALL = "in_call"
    DOCUMENTING = "documenting"
    COMPLETED = "completed"
    QUEUED_WRITTEN = "queued_written"
    ANSWERED = "answered"
    ACKNOWLEDGED = "acknowledged"
    CANCELLED = "cancelled"


CANCELLABLE: Final = frozenset({Status.RINGING, Status.ACCEPTED, Status.QUEUED_WRITTEN})
TERMINAL: Final = frozenset({Status.COMPLETED, Status.ACKNOWLEDGED, Status.CANCELLED})

_TIMES: Final = (
    "ringing_started_at",
    "ringing_ended_at",
    "escalated_at",
    "accepted_at",
    "call_started_at",
    "call_ended_at",
    "completed_at",
    "queued_at",
    "answered_at",
    "acknowledged_at",
    "cancelled_at",
)
_ID_SETS: Final = ("ringing", "rung", "declined", "dropped")


@dataclass(frozen=True, slots=True)
class CurbsideState:
    request: ConsultRequest
    status: Status
    version: int
    ring_timeout_s: float
    require_license_match: bool
    answer_due_at: datetime  # written-answer target, counted from when the PCP asked
    tier: Tier | None = None  # the tier ringing now
    ring_deadline: datetime | None = None  # tick() escalates at or after this instant
    ringing: frozenset[int] = frozenset()  # rung now and still able to answer
    rung: frozenset[int] = frozenset()  # everyone ever rung for this request
    declined: frozenset[int] = frozenset()
    dropped: frozenset[int] = frozenset()  # disconnected or went busy while ringing
    accepted_by: int | None = None
    answered_by: int | None = None
    ringing_started_at: datetime | None = None
    ringing_ended_at: datetime | None = None
    escalated_at: datetime | None = None  # first left the primary tier
    accepted_at: datetime | None = None
    call_started_at: datetime | None = None
    call_ended_at: datetime | None = None
    completed_at: datetime | None = None
    queued_at: datetime | None = None
    answered_at: datetime | None = None
    acknowledged_at: datetime | None = None
    cancelled_at: datetime | None = None
    # (psychiatrist id, when they first opened the answer form), one pair each, by id.
    writing_started: tuple[tuple[int, datetime], ...] = ()
    attested_minutes: int | None = None  # what the written answer's author attested

    def writing_started_by(self, psychiatrist_id: int) -> datetime | None:
        return next((at for uid, at in self.writing_started if uid == psychiatrist_id), None)

    def to_dict(self) -> dict[str, Any]:
        """JSON-compatible; id sets become sorted lists so equal states serialise identically."""
        return {"format": FORMAT, **_encode_fields(self)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CurbsideState:
        """The inverse of :meth:`to_dict`; ``ValueError`` for anything it would not write, nor
        the previous format's ``to_dict`` would have."""
        form = data.get("format")
        # bool is an int to Python: `true` is no format.
        decoders = _DECODERS_BY_FORMAT.get(form) if type(form) is int else None
        if decoders is None:
            raise ValueError(f"unknown curbside state format {form!r}")
        return cls(**_decode_fields(data, decoders, extra={"format"}))


# -- serialisation ------------------------------------------------------------------------------


def _encode(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_encode(item) for item in value]
    if isinstance(value, ConsultRequest):
        return _encode_fields(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, frozenset):
        return sorted(value)
    if isinstance(value, StrEnum):
        return value.value
    return value


def _encode_fields(obj: ConsultRequest | CurbsideState) -> dict[str, Any]:
    return {f.name: _encode(getattr(obj, f.name)) for f in dataclasses.fields(obj)}


def _decode_fields(
    data: Any, decoders: Mapping[str, Callable[[Any], Any]], extra: Iterable[str] = ()
) -> dict[str, Any]:
    # Exact keys both ways: a field the decoder table forgot would otherwise fall back to its
    # default without a word.
    if not isinstance(data, Mapping) or set(data) != set(decoders) | set(extra):
        raise ValueError(f"curbside state has unexpected shape: {data!r}")
    return {name: decode(data[name]) for name, decode in decoders.items()}


def _optional(decode: Callable[[Any], T]) -> Callable[[Any], T | None]:
    return lambda value: None if value is None else decode(value)


def _time(text: Any) -> datetime:
    if not isinstance(text, str):
        raise ValueError(f"expected an ISO 8601 time, got {text!r}")
    return aware(datetime.fromisoformat(text))


def _ids(values: Any) -> frozenset[int]:
    if not isinstance(values, list):
        raise ValueError(f"expected a list of ids, got {values!r}")
    return frozenset(_int(value) for value in values)


def _int(value: Any) -> int:
    # bool is an int to Python, but never an id or a version.
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"expected an integer, got {value!r}")
    return value


def _seconds(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise ValueError(f"expected a positive number of seconds, got {value!r}")
    return float(value)


def _instance(kind: type[T]) -> Callable[[Any], T]:
    def check(value: Any) -> T:
        if not isinstance(value, kind):
            raise ValueError(f"expected {kind.__name__}, got {value!r}")
        return value

    return check


def _starts(values: Any) -> tuple[tuple[int, datetime], ...]:
    if not isinstance(values, list) or not all(
        isinstance(pair, list) and len(pair) == 2 for pair in values
    ):
        raise ValueError(f"expected a list of [id, time] pairs, got {values!r}")
    starts = tuple(sorted((_int(uid), _time(at)) for uid, at in values))
    if len({uid for uid, _ in starts}) != len(starts):
        raise ValueError(f"one start per psychiatrist, got {values!r}")
    return starts


def _minutes(value: Any) -> int:
    minutes = _int(value)
    if not 1 <= minutes <= MAX_WRITTEN_MINUTES:
        raise ValueError(
            f"expected attested minutes within 1..{MAX_WRITTEN_MINUTES}, got {value!r}"
        )
    return minutes


_bool = _instance(bool)
_str = _instance(str)


_REQUEST_DECODERS: Final[Mapping[str, Callable[[Any], Any]]] = MappingProxyType(
    {
        "id": _int,
        "pcp_id": _int,
        "patient_id": _int,
        "urgency": Urgency,
        "mode": Mode,
        "created_at": _time,
        "patient_state": _optional(_str),
    }
)
_STATE_DECODERS: Final[Mapping[str, Callable[[Any], Any]]] = MappingProxyType(
    {
        "request": lambda data: ConsultRequest(**_decode_fields(data, _REQUEST_DECODERS)),
        "status": Status,
        "version": _int,
        "ring_timeout_s": _seconds,
        "require_license_match": _bool,
        "answer_due_at": _time,
        "tier": _optional(Tier),
        "ring_deadline": _optional(_time),
        "accepted_by": _optional(_int),
        "answered_by": _optional(_int),
        "writing_started": _starts,
        "attested_minutes": _optional(_minutes),
        **dict.fromkeys(_ID_SETS, _ids),
        **dict.fromkeys(_TIMES, _optional(_time)),
    }
)
# Format 1 had no written time: nothing was measured or attested, the defaults say so.
_ADDED_IN_2: Final = ("writing_started", "attested_minutes")
_DECODERS_BY_FORMAT: Final[Mapping[int, Mapping[str, Callable[[Any], Any]]]] = MappingProxyType(
    {
        1: MappingProxyType({k: v for k, v in _STATE_DECODERS.items() if k not in _ADDED_IN_2}),
        FORMAT: _STATE_DECODERS,
    }
)
