"""Who is told what after a curbside change (server/curbside/notices.py): the routing
machine's effects become socket events for exactly the users concerned."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from server.curbside.notices import named_in, notices_for
from server.db.models import ConsultRequest as RequestRow
from signaling import curbside as cs
from signaling import events as ev

T0 = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
PCP, P1, P2, B1 = 7, 101, 102, 201
ROSTER = [
    cs.OnCall(P1, cs.Tier.PRIMARY, cs.Presence.AVAILABLE, frozenset({"CA"})),
    cs.OnCall(P2, cs.Tier.PRIMARY, cs.Presence.AVAILABLE, frozenset({"CA"})),
    cs.OnCall(B1, cs.Tier.BACKUP, cs.Presence.AVAILABLE, frozenset({"CA"})),
]
NAMES = {PCP: "Dr. Chen", P1: "Dr. Ahmed", P2: "Dr. Baker"}
CONTEXT = {"problems": [{"text": "Major depression"}], "medications": [], "screenings": {}}


def row(visit_id: int | None = None) -> RequestRow:
    return RequestRow(
        id=1,
        pcp_id=PCP,
        patient_id=900,
        urgency="urgent",
        mode="call_now",
        question="Switch or augment?",
        patient_state="CA",
        context=json.dumps(CONTEXT),
        visit_id=visit_id,
    )


def opened() -> cs.Transition:
    request = cs.ConsultRequest(1, PCP, 900, cs.Urgency.URGENT, cs.Mode.CALL_NOW, T0, "CA")
    return cs.open_request(request, ROSTER, cs.RoutingPolicy(), T0)


def test_a_new_request_rings_the_primaries_and_tells_the_pcp() -> None:
    ring, status = notices_for(opened(), row(), NAMES)
    assert (ring.event, ring.user_ids) == (ev.CURBSIDE_RING, (P1, P2))
    request = ring.payload["request"]
    assert request["question"] == "Switch or augment?"
    assert request["context"] == CONTEXT
    assert request["pcp"] == {"id": PCP, "display_name": "Dr. Chen"}
    assert ring.payload["tier"] == "primary"
    assert ring.payload["ring_deadline"] == (T0 + timedelta(seconds=60)).isoformat()
    assert (status.event, status.user_ids) == (ev.CURBSIDE_STATUS, (PCP,))
    assert status.payload["status"] == "ringing" and status.payload["psychiatrist"] is None


def test_the_winner_and_the_pcp_are_connected_and_the_others_told_it_was_taken() -> None:
    won = cs.accept(opened().state, P2, T0 + timedelta(seconds=3))
    assert named_in(won.effects) == {P2}
    taken, connected, status = notices_for(won, row(visit_id=55), NAMES)
    assert (taken.event, taken.user_ids, taken.payload) == (
        ev.CURBSIDE_TAKEN,
        (P1,),
        {"request_id": 1},
    )
    assert (connected.event, connected.user_ids) == (ev.CURBSIDE_CONNECTED, (PCP, P2))
    assert connected.payload == {"request_id": 1, "visit_id": 55}
    assert status.payload["status"] == "accepted"
    assert status.payload["psychiatrist"] == {"id": P2, "display_name": "Dr. Baker"}


def test_escalation_stops_the_primaries_and_rings_the_backup() -> None:
    moved = cs.tick(opened().state, ROSTER, T0 + timedelta(seconds=60))
    events = [(n.event, n.user_ids) for n in notices_for(moved, row(), NAMES)]
    assert events == [
        (ev.CURBSIDE_STOP, (P1, P2)),
        (ev.CURBSIDE_RING, (B1,)),
        (ev.CURBSIDE_STATUS, (PCP,)),
    ]
    assert notices_for(moved, row(), NAMES)[0].payload["reason"] == "escalated"


def test_nothing_to_say_for_a_change_without_effects() -> None:
    unchanged = cs.tick(opened().state, ROSTER, T0)
    assert notices_for(unchanged, row(), NAMES) == []
