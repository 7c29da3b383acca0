"""ICE servers and ephemeral TURN credentials (the TURN REST API scheme coturn checks)."""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from server.clock import FakeClock
from signaling.ice import (
    MIN_SECRET_LENGTH,
    IceServer,
    IceSettings,
    TurnCredential,
    ice_servers,
    turn_credential,
)

SECRET = "north-wind-shared-secret-0123456789abcdef"
STUN = ["stun:stun.example.org:3478"]
TURN = ["turn:turn.example.org:3478", "turns:turn.example.org:5349?transport=tcp"]


def settings(**overrides: Any) -> IceSettings:
    values: dict[str, Any] = {"stun_urls": STUN, "turn_urls": TURN, "turn_secret": SECRET}
    return IceSettings(**(values | overrides))


def test_the_credential_matches_a_value_computed_independently_with_openssl() -> None:
    # printf '%s' '1767607200:42' | openssl dgst -sha1 -hmac "$SECRET" -binary | base64
    now = FakeClock()()  # 2026-01-05 09:00:00 UTC
    minted = turn_credential(SECRET, 42, now, 3600)
    assert minted == TurnCredential(
        username="1767607200:42",
        credential="tJXa6OiKttkxPkiVI6xbqExC6So=",
        expires_at=datetime(2026, 1, 5, 10, 0, tzinfo=UTC),
    )


@given(
    secret=st.text(min_size=1, max_size=80),
    user=st.from_regex(r"[A-Za-z0-9_.-]{1,64}", fullmatch=True),
    offset=st.integers(min_value=0, max_value=10**9),
    ttl=st.integers(min_value=1, max_value=86_400),
)
def test_the_credential_is_the_base64_hmac_sha1_of_the_username(
    secret: str, user: str, offset: int, ttl: int
) -> None:
    now = datetime(2000, 1, 1, tzinfo=UTC) + timedelta(seconds=offset)
    minted = turn_credential(secret, user, now, ttl)
    expiry, _, who = minted.username.partition(":")
    assert who == user
    assert int(expiry) == int(now.timestamp()) + ttl
    expected = hmac.new(secret.encode(), minted.username.encode(), hashlib.sha1).digest()
    assert base64.b64decode(minted.credential, validate=True) == expected


def test_the_expiry_is_whole_seconds_and_never_later_than_asked() -> None:
    now = datetime(2026, 1, 5, 9, 0, 0, 999_999, tzinfo=UTC)
    minted = turn_credential(SECRET, "7", now, 600)
    assert minted.username.startswith("1767604200:")  # 09:10:00, not rounded up
    assert minted.expires_at <= now + timedelta(seconds=600)


def test_the_time_zone_of_now_does_not_change_the_credential() -> None:
    now = FakeClock()()
    elsewhere = now.astimezone(timezone(timedelta(hours=5, minutes=30)))
    assert turn_credential(SECRET, 1, elsewhere, 60) == turn_credential(SECRET, 1, now, 60)


@pytest.mark.parametrize(
    ("secret", "user", "now", "ttl", "message"),
    [
        (SECRET, 1, datetime(2026, 1, 5, 9, 0), 60, "timezone-aware"),
        (SECRET, 1, FakeClock()(), 0, "ttl_s"),
        ("", 1, FakeClock()(), 60, "empty"),
        (SECRET, "alice:admin", FakeClock()(), 60, "user_id"),
        (SECRET, "alice@example.org", FakeClock()(), 60, "user_id"),
        (SECRET, "", FakeClock()(), 60, "user_id"),
        (SECRET, "x" * 65, FakeClock()(), 60, "user_id"),
    ],
)
def test_it_refuses_to_mint_from_bad_input(
    secret: str, user: str | int, now: datetime, ttl: int, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        turn_credential(secret, user, now, ttl)


def test_the_ice_servers_list_stun_then_turn_with_fresh_credentials() -> None:
    clock = FakeClock()
    servers = ice_servers(settings(turn_ttl_s=600), 42, clock())
    assert servers[0] == IceServer(urls=STUN)
    assert servers[1].urls == TURN
    assert servers[1].username == "1767604200:42"
    assert servers[1].credential == turn_credential(SECRET, 42, clock(), 600).credential
    clock.advance(1)
    assert ice_servers(settings(turn_ttl_s=600), 42, clock())[1].username == "1767604201:42"


def test_the_wire_form_is_what_rtcpeerconnection_takes() -> None:
    wire = [s.model_dump(exclude_none=True) for s in ice_servers(settings(), 42, FakeClock()())]
    assert wire == [
        {"urls": STUN},
        {"urls": TURN, "username": "1767607200:42", "credential": "tJXa6OiKttkxPkiVI6xbqExC6So="},
    ]


def test_stun_only_and_empty_configurations_are_valid() -> None:
    now = FakeClock()()
    assert ice_servers(IceSettings(stun_urls=STUN), 1, now) == [IceServer(urls=STUN)]
    assert ice_servers(IceSettings(), 1, now) == []


def test_a_turn_only_configuration_lists_turn_alone() -> None:
    servers = ice_servers(settings(stun_urls=[]), "link-17", FakeClock()())
    assert [s.urls for s in servers] == [TURN]
    assert servers[0].username is not None
    assert servers[0].username.endswith(":link-17")


def test_the_secret_never_shows_when_settings_are_printed() -> None:
    shown = repr(settings()) + str(settings()) + settings().model_dump_json()
    assert SECRET not in shown


def test_turn_urls_without_a_secret_are_refused() -> None:
    with pytest.raises(ValidationError, match="turn_secret is required"):
        IceSettings(turn_urls=TURN)


def test_a_short_secret_is_refused() -> None:
    with pytest.raises(ValidationError, match=f"at least {MIN_SECRET_LENGTH}"):
        settings(turn_secret="s3cret")


@pytest.mark.parametrize(
    "url",
    [
        "stun:stun.example.org",
        "stun:stun.example.org:3478",
        "stuns:stun.example.org:5349",
        "stun:203.0.113.5:3478",
        "stun:[2001:db8::1]:3478",
    ],
)
def test_valid_stun_urls_are_accepted(url: str) -> None:
    assert IceSettings(stun_urls=[url]).stun_urls == [url]


@pytest.mark.parametrize(
    "url",
    [
        "turn:turn.example.org",
        "turn:turn.example.org:3478?transport=udp",
        "turn:turn.example.org:3478?transport=tcp",
        "turns:turn.example.org:443?transport=tcp",
        "turn:[2001:db8::1]:3478",
    ],
)
def test_valid_turn_urls_are_accepted(url: str) -> None:
    assert settings(turn_urls=[url]).turn_urls == [url]


@pytest.mark.parametrize(
    ("field", "url"),
    [
        ("stun_urls", "turn:turn.example.org"),
        ("stun_urls", "stun://stun.example.org"),
        ("stun_urls", "stun:stun.example.org:0"),
        ("stun_urls", "stun:stun.example.org:70000"),
        ("stun_urls", "https://stun.example.org"),
        ("turn_urls", "stun:turn.example.org"),
        ("turn_urls", "turn:turn.example.org?transport=sctp"),
        ("turn_urls", "turn:user@turn.example.org"),
        ("turn_urls", "turn:-bad-.example.org"),
        ("turn_urls", "turn:turn.example.org:3478 "),
    ],
)
def test_malformed_urls_are_refused_naming_the_url(field: str, url: str) -> None:
    with pytest.raises(ValidationError) as caught:
        settings(**{field: [url]})
    assert caught.value.errors()[0]["loc"] == (field,)
    assert repr(url) in str(caught.value)


@pytest.mark.parametrize("ttl", [59, 86_401])
def test_the_ttl_is_bounded(ttl: int) -> None:
    with pytest.raises(ValidationError):
        settings(turn_ttl_s=ttl)


def test_the_settings_are_frozen_and_refuse_unknown_keys() -> None:
    with pytest.raises(ValidationError):
        settings(turn_password="x")
    with pytest.raises(ValidationError):
        settings().turn_ttl_s = 10  # type: ignore[misc]


def test_the_settings_read_from_plain_toml_like_values() -> None:
    parsed = IceSettings.model_validate(
        {"stun_urls": STUN, "turn_urls": TURN, "turn_secret": SECRET, "turn_ttl_s": 900}
    )
    assert parsed.turn_secret is not None
    assert parsed.turn_secret.get_secret_value() == SECRET
    assert parsed.turn_ttl_s == 900
