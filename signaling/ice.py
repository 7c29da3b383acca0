"""The ICE server list handed to clients, with ephemeral TURN credentials.

Every peer (browser or aiortc) gets a list of ``RTCIceServer`` entries when it joins a room:
the STUN URLs as configured, and the TURN URLs with a username and password minted for that
peer by the "TURN REST API" scheme (draft-uberti-behave-turn-rest-00) that coturn checks when
run with ``use-auth-secret`` and ``static-auth-secret``::

    username   = "<expiry as unix seconds>:<user id>"
    credential = base64(HMAC-SHA1(static-auth-secret, username))

coturn recomputes the HMAC with the same secret and refuses a username whose expiry has passed.
Nothing is stored: any Liaison process holding the secret can mint credentials, the secret
itself never leaves the server, and a credential copied out of a browser stops working by
itself. ``config/coturn.example.conf`` is the matching server configuration.

Things worth knowing
    * coturn checks the expiry when a relay allocation is made, not while it lasts. The TTL
      bounds how long a leaked credential can open *new* relays, not how long a call may run;
      a client that reconnects or restarts ICE after the TTL needs a fresh list, which
      ``room:joined`` carries every time.
    * The user id travels in clear and lands in coturn's logs: pass an opaque id (a user's or
      a visit link's number), never a name or an e-mail address.
    * SHA-1 is what the scheme and coturn define. HMAC-SHA1 does not rest on SHA-1's collision
      resistance, so it remains a sound MAC.

Everything here is pure: the caller passes the time in (an aware datetime), nothing reads a
clock, the environment or a file.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final, Self

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

MIN_SECRET_LENGTH: Final = 32  # e.g. `openssl rand -hex 32` gives 64 characters

_HOST = r"(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?)"
_PORT = r"(?::(?P<port>[0-9]{1,5}))?"
# RFC 7064 (stun:, stuns:) and RFC 7065 (turn:, turns:, with an optional transport).
_STUN_URL: Final = re.compile(rf"stuns?:{_HOST}{_PORT}")
_TURN_URL: Final = re.compile(rf"turns?:{_HOST}{_PORT}(?:\?transport=(?:udp|tcp))?")
# The user id ends up in a username that coturn splits on ':' and writes to its logs.
_USER_ID: Final = re.compile(r"[A-Za-z0-9_.-]{1,64}")


class IceSettings(BaseModel):
    """The ``[ice]`` settings section."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    stun_urls: list[str] = Field(default_factory=list)
    turn_urls: list[str] = Field(default_factory=list)
    # SecretStr, so that printing or logging the settings never shows it.
    turn_secret: SecretStr | None = None
    # Long enough to cover joining a visit; short enough that a leaked credential soon dies.
    turn_ttl_s: int = Field(default=3600, ge=60, le=86_400)

    @field_validator("stun_urls")
    @classmethod
    def _stun_urls(cls, urls: list[str]) -> list[str]:
        return _check_urls(urls, _STUN_URL, "stun:host[:port] or stuns:host[:port]")

    @field_validator("turn_urls")
    @classmethod
    def _turn_urls(cls, urls: list[str]) -> list[str]:
        return _check_urls(urls, _TURN_URL, "turn:host[:port][?transport=udp|tcp] or turns:...")

    @field_validator("turn_secret")
    @classmethod
    def _long_secret(cls, secret: SecretStr | None) -> SecretStr | None:
        if secret is not None and len(secret.get_secret_value()) < MIN_SECRET_LENGTH:
            raise ValueError(
                f"must be at least {MIN_SECRET_LENGTH} characters (try: openssl rand -hex 32)"
            )
        return secret

    @model_validator(mode="after")
    def _secret_for_turn(self) -> Self:
        if self.turn_urls and self.turn_secret is None:
            raise ValueError(
                "turn_secret is required when turn_urls are set "
                "(the same value as coturn's static-auth-secret)"
            )
        return self


class IceServer(BaseModel):
    """One ``RTCIceServer`` as the browser's ``RTCPeerConnection`` and aiortc take it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    urls: list[str]
    username: str | None = None
    credential: str | None = None


@dataclass(frozen=True, slots=True)
class TurnCredential:
    username: str
    credential: str
    expires_at: datetime


def turn_credential(secret: str, user_id: str | int, now: datetime, ttl_s: int) -> TurnCredential:
    """Mint a credential that coturn (``use-auth-secret``) accepts until ``now + ttl_s``."""
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be timezone-aware")
    if ttl_s <= 0:
        raise ValueError("ttl_s must be positive")
    if not secret:
        raise ValueError("the TURN secret is empty")
    who = str(user_id)
    if not _USER_ID.fullmatch(who):
        raise ValueError("user_id must be 1-64 characters of A-Z a-z 0-9 _ . -")
    # Whole seconds: coturn compares integer unix times. Flooring `now` never extends the TTL.
    expiry = int(now.timestamp()) + ttl_s
    username = f"{expiry}:{who}"
    digest = hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()
    return TurnCredential(
        username=username,
        credential=base64.b64encode(digest).decode("ascii"),
        expires_at=datetime.fromtimestamp(expiry, UTC),
    )


def ice_servers(settings: IceSettings, user_id: str | int, now: datetime) -> list[IceServer]:
    """The ICE servers for one peer: STUN first, then TURN with a fresh credential.

    An empty list is valid: peers then use host candidates only (one LAN, or a test).
    """
    servers: list[IceServer] = []
    if settings.stun_urls:
        servers.append(IceServer(urls=list(settings.stun_urls)))
    # IceSettings refuses turn_urls without a secret; the second test only narrows the type.
    if settings.turn_urls and settings.turn_secret is not None:
        minted = turn_credential(
            settings.turn_secret.get_secret_value(), user_id, now, settings.turn_ttl_s
        )
        servers.append(
            IceServer(
                urls=list(settings.turn_urls),
                username=minted.username,
                credential=minted.credential,
            )
        )
    return servers


def _check_urls(urls: list[str], pattern: re.Pattern[str], shape: str) -> list[str]:
    for url in urls:
        match = pattern.fullmatch(url)
        if match is None:
            raise ValueError(f"{url!r} is not a valid ICE URL; expected {shape}")
        port = match.group("port")
        if port is not None and not 1 <= int(port) <= 65535:
            raise ValueError(f"{url!r}: port must be 1-65535")
    return urls
