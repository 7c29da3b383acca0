"""Closing the sockets of login sessions that ended, and keeping calls from idling one out.

Sockets outlive the request that authenticated them: each process runs one sweeper over its
own sockets (RtcNamespace.sockets), asking the database (signaling/session_watch.py) which of
their login sessions no longer hold. Link holders (patients, guests) have no login session: a
revoked link reaches their room as a change instead (signaling/setup.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

from signaling import events as ev
from signaling.namespace import RtcNamespace, reraise_if_cancelled
from signaling.session_watch import SessionWatch

log = logging.getLogger("liaison.signaling")


async def session_sweeper(
    ns: RtcNamespace,
    watch: SessionWatch,
    touch: Callable[[list[int]], Awaitable[None]],
    interval_s: float = 1.0,
    recheck_every_s: float = 60.0,
    overlap: timedelta = timedelta(seconds=30),
) -> None:
    """Close sockets whose login session ended (sign-out, disabled account, expiry) within
    about a second, and count time in a call as activity for the idle timeout.

    Whichever process ended the session, this one learns it from the database, so nothing
    depends on the revoking process knowing where the sockets are. Each pass asks only which
    sessions were revoked since the previous pass (minus `overlap`, for clocks of other
    processes a little behind), and looks up a session again only when it is new here or its
    deadline (absolute, or idle as of its last activity) has come. Every `recheck_every_s`,
    sessions in a call are touched and all of them are looked up afresh, which also catches
    a revocation stamped by a clock more than `overlap` behind.
    """
    deadlines: dict[int, datetime] = {}
    since = ns.clock() - overlap
    last_recheck = time.monotonic()
    while True:
        await asyncio.sleep(interval_s)
        now = ns.clock()
        by_session = _sockets_by_session(ns)
        for gone in set(deadlines) - set(by_session):
            del deadlines[gone]
        if not by_session:
            since = now - overlap
            continue
        try:
            ended = await watch.revoked_since(since) & set(by_session)
            since = now - overlap
            if time.monotonic() - last_recheck >= recheck_every_s:
                in_call = [
                    session_id
                    for session_id, sids in by_session.items()
                    if session_id not in ended and any(_in_room(ns, sid) for sid in sids)
                ]
                if in_call:
                    await touch(in_call)
                deadlines.clear()
                last_recheck = time.monotonic()
            due = [
                session_id
                for session_id in by_session
                if session_id not in ended
                and (session_id not in deadlines or deadlines[session_id] <= now)
            ]
            if due:
                for session_id, deadline in (await watch.deadlines(due)).items():
                    if deadline is None or deadline <= now:
                        ended.add(session_id)
                        deadlines.pop(session_id, None)
                    else:
                        deadlines[session_id] = deadline
            for session_id in ended:
                deadlines.pop(session_id, None)
                for sid in by_session[session_id]:
                    with contextlib.suppress(Exception):
                        await ns.emit(ev.SESSION_ENDED, {"reason": "session_ended"}, to=sid)
                    await ns.disconnect(sid)
                    reraise_if_cancelled()
        except Exception:
            reraise_if_cancelled()
            log.exception("session sweep failed")


def _sockets_by_session(ns: RtcNamespace) -> dict[int, list[str]]:
    by_session: dict[int, list[str]] = {}
    for sid, state in list(ns.sockets.items()):
        if state.identity.session_id is not None:
            by_session.setdefault(state.identity.session_id, []).append(sid)
    return by_session


def _in_room(ns: RtcNamespace, sid: str) -> bool:
    state = ns.sockets.get(sid)
    return state is not None and state.visit_id is not None
