"""In a cluster, a signal between two sockets of the same process is relayed there, without a
round through Redis that only that process could deliver (the cluster test's fixtures: two
Liaison apps, one database, one Redis)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from redis import asyncio as aioredis

from signaling import events as ev
from signaling.setup import redis_channel
from tests.integration.test_cluster_signaling import (  # noqa: F401 (the fixture)
    Cluster,
    a_visit,
    admitted_call,
    cluster,
)
from tests.integration.visit_support import Holders


async def published_until_chat(pubsub: Any, text: str) -> list[dict[str, Any]]:
    """What the nodes published, up to the chat message with this text (published after
    everything before it, so nothing published earlier is still to come)."""
    seen: list[dict[str, Any]] = []
    async with asyncio.timeout(30):
        async for message in pubsub.listen():
            if message["type"] != "message":
                continue
            published = json.loads(message["data"])
            seen.append(published)
            if published.get("event") == ev.CHAT_MESSAGE and published["data"][0]["text"] == text:
                return seen
    raise AssertionError("the subscription ended")


async def test_signals_between_sockets_of_one_node_do_not_go_through_redis(
    cluster: Cluster,  # noqa: F811
) -> None:
    a = await cluster.node("node-a")
    await cluster.node("node-b")
    redis = aioredis.Redis.from_url(cluster.redis)
    pubsub: Any = redis.pubsub()  # redis-py leaves PubSub.aclose untyped
    try:
        await pubsub.subscribe(redis_channel(cluster.database_url))
        async with Holders(a) as holders:
            visit = await a_visit(cluster, holders)
            patient, clinician = await admitted_call(cluster, visit, holders, a, a)
            async with asyncio.timeout(30):
                await patient.wait_media(frames=3)
                await clinician.wait_media(frames=3)
            await patient.send_chat("after the media")
            published = await published_until_chat(pubsub, "after the media")
    finally:
        await pubsub.aclose()
        await redis.aclose()
    # Room events still reach every node; the offer, answer and candidates stayed on node A.
    events = {p.get("event") for p in published}
    assert ev.PEER_JOINED in events or ev.LOBBY_UPDATE in events
    assert ev.RTC_SIGNAL not in events
