"""The audit chain's canonical encoding and hash, and what an event may carry (pure)."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from server.audit import GENESIS_HASH, Action, Actor, Event, Outcome
from server.audit.chain import ENCODING_TAG, Link, canonical_encoding, format_time, link_hash
from server.audit.events import MAX_DETAIL_BYTES, canonical_detail
from server.auth.principal import Principal
from server.auth.roles import Role

AT = datetime(2026, 1, 5, 9, 0, 0, 123456, tzinfo=UTC)


def a_link(**changes: object) -> Link:
    link = Link(
        seq=1,
        at=AT,
        actor="user:12",
        actor_role="psychiatrist",
        action="note.read",
        patient_id=7,
        target="note:5",
        outcome="ok",
        client_address="192.0.2.10",
        request_id="ab12cd34ef56ab78",
        detail='{"version":2}',
        prev_hash=GENESIS_HASH,
    )
    return dataclasses.replace(link, **changes)  # type: ignore[arg-type]


def test_the_first_link_follows_sixty_four_zeros() -> None:
    assert GENESIS_HASH == "0" * 64


def test_the_encoding_is_fixed() -> None:
    """Stored chains are verified with this encoding forever: a change here breaks them all."""
    assert canonical_encoding(a_link()) == (
        b'["liaison-audit-v1",1,"2026-01-05T09:00:00.123456Z","user:12","psychiatrist",'
        b'"note.read",7,"note:5","ok","192.0.2.10","ab12cd34ef56ab78","{\\"version\\":2}",'
        b'"0000000000000000000000000000000000000000000000000000000000000000"]'
    )
    assert link_hash(a_link()) == (
        "342441648c30b954af40cc2c4b39485e3d693df64b9b7a55e2b5a55b5fd93ac0"
    )


@pytest.mark.parametrize(
    "change",
    [
        {"seq": 2},
        {"at": AT + timedelta(microseconds=1)},
        {"actor": "user:13"},
        {"actor_role": "pcp"},
        {"action": "note.sign"},
        {"patient_id": 8},
        {"patient_id": None},
        {"target": "note:6"},
        {"target": None},
        {"outcome": "denied"},
        {"client_address": "192.0.2.11"},
        {"client_address": None},
        {"request_id": None},
        {"detail": '{"version":3}'},
        {"prev_hash": "f" * 64},
    ],
    ids=lambda change: next(iter(change)),
)
def test_every_field_is_covered_by_the_hash(change: dict[str, object]) -> None:
    assert link_hash(a_link(**change)) != link_hash(a_link())


def test_a_missing_value_differs_from_its_text() -> None:
    assert link_hash(a_link(target=None)) != link_hash(a_link(target="null"))
    assert link_hash(a_link(patient_id=None)) != link_hash(a_link(patient_id=0))


def test_fields_cannot_bleed_into_each_other() -> None:
    one = a_link(actor="user:1", actor_role="2,pcp")
    other = a_link(actor="user:1,2", actor_role="pcp")
    assert canonical_encoding(one) != canonical_encoding(other)


def test_the_time_is_hashed_in_utc_to_the_microsecond() -> None:
    elsewhere = AT.astimezone(timezone(timedelta(hours=-5)))
    assert link_hash(a_link(at=elsewhere)) == link_hash(a_link())
    assert format_time(AT) == "2026-01-05T09:00:00.123456Z"
    assert format_time(AT.replace(microsecond=0)) == "2026-01-05T09:00:00.000000Z"
    with pytest.raises(ValueError, match="naive"):
        link_hash(a_link(at=AT.replace(tzinfo=None)))


links = st.builds(
    Link,
    seq=st.integers(min_value=1, max_value=2**62),
    at=st.datetimes(timezones=st.just(UTC)),
    actor=st.text(max_size=64),
    actor_role=st.text(max_size=32),
    action=st.text(max_size=48),
    patient_id=st.none() | st.integers(min_value=0, max_value=2**31),
    target=st.none() | st.text(max_size=128),
    outcome=st.sampled_from(["ok", "denied", "error"]),
    client_address=st.none() | st.text(max_size=64),
    request_id=st.none() | st.text(max_size=64),
    detail=st.text(max_size=100),
    prev_hash=st.text(alphabet="0123456789abcdef", min_size=64, max_size=64),
)


@given(links)
def test_the_encoding_decodes_to_exactly_its_fields(link: Link) -> None:
    """Decodable means injective: two different links never share an encoding."""
    encoded = canonical_encoding(link)
    assert encoded.isascii()
    decoded = json.loads(encoded)
    assert decoded[0] == ENCODING_TAG
    assert decoded[1:] == [
        link.seq,
        format_time(link.at),
        link.actor,
        link.actor_role,
        link.action,
        link.patient_id,
        link.target,
        link.outcome,
        link.client_address,
        link.request_id,
        link.detail,
        link.prev_hash,
    ]


def test_the_detail_is_canonical_json() -> None:
    assert canonical_detail({"b": 1, "a": ["Patient", "Encounter"], "c": True, "d": None}) == (
        '{"a":["Patient","Encounter"],"b":1,"c":true,"d":null}'
    )
    assert canonical_detail({"x": "é"}) == '{"x":"\\u00e9"}'
    assert canonical_detail({}) == "{}"


@pytest.mark.parametrize(
    ("detail", "message"),
    [
        ({"password": "hunter2"}, "personal data or a secret"),
        ({"Username": "dr.rivera"}, "personal data or a secret"),
        ({"text": "note body"}, "personal data or a secret"),
        ({"score": 1.5}, "must be a short string"),
        ({"why": "x" * 65}, "must be a short string"),
        ({"nested": {"a": 1}}, "must be a short string"),
        ({"list": [None]}, "must be a short string"),
        ({"list": [["a"]]}, "must be a short string"),
        ({f"k{i}": "v" * 60 for i in range(20)}, f"at most {MAX_DETAIL_BYTES}"),
    ],
)
def test_the_detail_refuses_what_does_not_belong_in_a_trail(
    detail: dict[str, object], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        Event(Action.RECORD_READ, Actor.system(), detail=detail)  # type: ignore[arg-type]


def test_an_event_refuses_oversized_fields_and_naive_times() -> None:
    with pytest.raises(ValueError, match="target"):
        Event(Action.NOTE_READ, Actor.system(), target="note:" + "9" * 200)
    with pytest.raises(ValueError, match="client_address"):
        Event(Action.LOGIN, Actor.anonymous(), client_address="1" * 65)
    with pytest.raises(ValueError, match="timezone-aware"):
        Event(Action.LOGIN, Actor.anonymous(), at=datetime(2026, 1, 5))


def test_actors_name_who_acted() -> None:
    who = Principal(
        user_id=12,
        username="dr.rivera",
        display_name="Dr Rivera",
        role=Role.PSYCHIATRIST,
        session_id=3,
        enrolment_pending=False,
        totp_enrolled=False,
        csrf_token="x",
    )
    assert Actor.of(who) == Actor("user:12", "psychiatrist")
    assert Actor.user(4, Role.PCP) == Actor("user:4", "pcp")
    assert Actor.link(34, "interpreter") == Actor("link:34", "interpreter")
    assert Actor.system() == Actor("system", "system")
    assert Actor.anonymous() == Actor("anonymous", "anonymous")


def test_an_event_defaults_to_a_successful_outcome_without_a_patient() -> None:
    event = Event(Action.LOGOUT, Actor.user(1, Role.ADMIN))
    assert event.outcome is Outcome.OK
    assert event.patient_id is None and event.at is None and dict(event.detail) == {}


def test_an_event_fixes_its_detail_when_made() -> None:
    detail: dict[str, object] = {"resources": ["Patient"]}
    event = Event(Action.EXPORT_FHIR, Actor.system(), detail=detail)  # type: ignore[arg-type]
    detail["resources"] = ["Patient", "Secret"]
    assert event.detail_json == '{"resources":["Patient"]}'
