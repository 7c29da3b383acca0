"""The device and network check: the browser's SDP offer in, the server echo peer's answer out.

The answer carries every candidate the echo peer gathered, so the browser needs no trickle ICE:
it sets the answer and connects. See ``signaling.echo`` for what the echo peer does.
"""

from __future__ import annotations

from typing import Literal

from aiohttp import web
from pydantic import BaseModel, Field

from server.api.routing import Api
from server.state import VISIT_HOLDER, principal, services
from signaling.echo import MAX_SDP_BYTES

api = Api()


class SdpOffer(BaseModel):
    sdp: str = Field(
        min_length=1,
        max_length=MAX_SDP_BYTES,
        description="The offer with its candidates (after ICE gathering completes).",
    )
    type: Literal["offer"]


class SdpAnswer(BaseModel):
    sdp: str
    type: Literal["answer"] = "answer"
    peer_id: str = Field(description="Names this echo peer in the server's logs.")


@api.route(
    "POST",
    "/device-check/offer",
    summary="Connect to the server's echo peer for a device and network check",
    tag="device-check",
    body=SdpOffer,
    response=SdpAnswer,
    errors=(429,),
    allow_visit_session=True,
)
async def device_check_offer(request: web.Request, body: SdpOffer) -> SdpAnswer:
    holder = request.get(VISIT_HOLDER)
    owner = holder.participant_id if holder else f"user:{principal(request).user_id}"
    answer = await services(request).echo.answer(body.sdp, owner=owner)
    return SdpAnswer(sdp=answer.sdp, peer_id=answer.peer_id)
