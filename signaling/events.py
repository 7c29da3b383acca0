"""The `/rtc` namespace's wire messages: one pydantic model per client event.

Server-to-client event names are constants here too, so that the handler and the browser
client (web_client/src/rtc/events.js) each define them once.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

NAMESPACE = "/rtc"

# Client -> server
ROOM_JOIN = "room:join"
ROOM_LEAVE = "room:leave"
LOBBY_ADMIT = "lobby:admit"
LOBBY_DENY = "lobby:deny"
LOBBY_RETURN = "lobby:return"
VISIT_END = "visit:end"
RTC_SIGNAL = "rtc:signal"
CHAT_MESSAGE = "chat:message"
CURBSIDE_WATCH = "curbside:watch"
CURBSIDE_ACCEPT = "curbside:accept"
CURBSIDE_DECLINE = "curbside:decline"
CURBSIDE_CANCEL = "curbside:cancel"
CURBSIDE_END = "curbside:end"

# Server -> client
# {visit_id, you, peers, away, ice_servers}: `peers` are in the call now (with their conn_id);
# `away` dropped but keep their seat ({participant_id, kind, display_name, until,
# grace_left_ms}); anyone else the client knew is gone for good.
ROOM_JOINED = "room:joined"
ROOM_WAITING = "room:waiting"
ROOM_REPLACED = "room:replaced"
ROOM_REMOVED = "room:removed"
PEER_JOINED = "peer:joined"
# {visit_id, participant_id, conn_id, reason}: conn_id is null when they were away (had no
# connection) and have now lost their seat: reason "timed_out", "removed" or "returned_to_lobby".
PEER_LEFT = "peer:left"
LOBBY_UPDATE = "lobby:update"
VISIT_ENDED = "visit:ended"
SESSION_ENDED = "session:ended"
CURBSIDE_RING = "curbside:ring"
CURBSIDE_TAKEN = "curbside:taken"
CURBSIDE_STOP = "curbside:stop"
CURBSIDE_STATUS = "curbside:status"
CURBSIDE_CONNECTED = "curbside:connected"
# This process is shutting down: reconnect (to another process) after a short random delay.
SERVER_DRAINING = "server:draining"
# rtc:signal and chat:message travel both ways.

ParticipantId = Annotated[str, Field(min_length=3, max_length=40, pattern=r"^(user|link):\d+$")]
ConnId = Annotated[str, Field(min_length=1, max_length=64)]


class _Event(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class JoinRoom(_Event):
    visit_id: int = Field(ge=1)


class Empty(_Event):
    pass


class LobbyTarget(_Event):
    participant_id: ParticipantId


class LobbyDeny(LobbyTarget):
    # The room's DenyReason values (signaling/rooms.py): codes, never free text.
    reason: Literal["not_recognised", "wrong_visit", "rescheduled", "other"] = "not_recognised"


class SessionDescription(_Event):
    type: Literal["offer", "answer", "pranswer", "rollback"]
    sdp: str = Field(default="", max_length=32_000)


class IceCandidate(_Event):
    candidate: str = Field(max_length=1_000)
    sdpMid: str | None = Field(default=None, max_length=64)
    sdpMLineIndex: int | None = Field(default=None, ge=0, le=64)
    usernameFragment: str | None = Field(default=None, max_length=256)


class Signal(_Event):
    to: ConnId
    description: SessionDescription | None = None
    candidate: IceCandidate | None = None

    @model_validator(mode="after")
    def _one_payload(self) -> Signal:
        if (self.description is None) == (self.candidate is None):
            raise ValueError("send exactly one of description or candidate")
        return self


class ChatMessage(_Event):
    text: str = Field(min_length=1, max_length=2_000)


class CurbsideTarget(_Event):
    """curbside:accept / decline / cancel / end: which request."""

    request_id: int = Field(ge=1)


def ok(**data: Any) -> dict[str, Any]:
    return {"ok": True, **data}


def refused(code: str, message: str) -> dict[str, Any]:
    return {"ok": False, "error": {"code": code, "message": message}}
