"""The cluster's node registry against a real database (signaling/cluster.py ``NodeRegistry``)."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from server.auth.roles import Role
from server.clock import FakeClock
from server.db.models import Presence
from server.state import SERVICES
from signaling.cluster import NodeRegistry
from tests.conftest import PASSWORD, AppFactory


async def test_dropping_a_dead_instances_presence_says_whose_it_was(
    make_app: AppFactory, clock: FakeClock
) -> None:
    client = await make_app()
    services = client.app[SERVICES]
    ids = [
        (await services.users.create(name, name, Role.PSYCHIATRIST, PASSWORD)).id
        for name in ("dr.one", "dr.two", "dr.three")
    ]
    one, two, three = ids
    now = clock()
    rows = [("dead/1", one, "s1"), ("dead/1", one, "s2"), ("dead/1", two, "s3")]
    rows.append(("live/2", three, "s4"))
    async with services.db.begin() as db:
        db.add_all(
            Presence(user_id=user, node=node, socket_id=socket, connected_at=now, last_seen_at=now)
            for node, user, socket in rows
        )
    registry = NodeRegistry(services.db, clock, "live", timedelta(seconds=30))

    assert await registry.drop_presence("dead/1") == {one, two}
    assert await registry.drop_presence("dead/1") == set()
    async with services.db() as db:
        left = (await db.execute(select(Presence.node, Presence.user_id))).all()
    assert [tuple(row) for row in left] == [("live/2", three)]
