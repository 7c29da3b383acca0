"""Checking the chain: every event's hash, every link, seq continuity and the head.

``verify_chain`` walks the events in seq order, a batch at a time (memory stays bounded however
long the trail), and names each row that was

- changed: its contents no longer match its hash, or it was re-hashed so that the next event no
  longer links to it (or the head no longer points at it);
- removed: a seq is missing, in the middle or at the end (the head points past the last row);
- inserted: a second row at a seq, a row beyond the head, or a row outside the chain.

It runs beside live writers: a row counts as beyond the head only when the head read after the
row was fetched is still below it (appends move the head in the transaction that adds the rows).
What it cannot see is a rewrite of the whole tail together with the head; publishing the head
hash it prints somewhere else (a ticket, a second system) closes that gap.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Final

from sqlalchemy import Row, and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from server.audit.chain import GENESIS_HASH, Link, link_hash
from server.audit.log import HEAD_ID
from server.db.models import AuditChainHead, AuditEvent, Base

BATCH_SIZE: Final = 1000
MAX_PROBLEMS: Final = 1000

_events = Base.metadata.tables[AuditEvent.__tablename__]
_head = Base.metadata.tables[AuditChainHead.__tablename__]


class ProblemKind(StrEnum):
    CHANGED = "changed"
    REMOVED = "removed"
    INSERTED = "inserted"
    HEAD = "head"  # the head row itself is missing


@dataclass(frozen=True, slots=True)
class Problem:
    kind: ProblemKind
    seq: int | None  # None: a row with no seq at all, or the head
    row_id: int | None = None  # None for removed rows
    last_seq: int | None = None  # a removed range's last seq
    reason: str = ""

    def __str__(self) -> str:
        if self.seq is None:
            where = "-"
        elif self.last_seq is not None and self.last_seq != self.seq:
            where = f"seq {self.seq}..{self.last_seq}"
        else:
            where = f"seq {self.seq}"
        row = f" (row id {self.row_id})" if self.row_id is not None else ""
        return f"{self.kind.value:<8} {where}{row}: {self.reason}"


@dataclass(slots=True)
class VerifyReport:
    events_checked: int = 0
    head_seq: int | None = None
    head_hash: str | None = None
    problems: list[Problem] = field(default_factory=list)
    # Problems found past MAX_PROBLEMS are counted, not listed.
    problems_not_listed: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems and not self.problems_not_listed


@dataclass(slots=True)
class _Accepted:
    """The chain's link at one seq, as the walk accepted it."""

    seq: int
    row_id: int | None
    hash: str
    reported: bool  # already reported as changed: its successor's link then says nothing new


_GENESIS = _Accepted(seq=0, row_id=None, hash=GENESIS_HASH, reported=False)


class _Walk:
    def __init__(self, report: VerifyReport, max_problems: int) -> None:
        self.report = report
        self.max_problems = max_problems
        self.prev = _GENESIS
        self.group: list[Row[Any]] = []

    def problem(self, problem: Problem) -> None:
        if len(self.report.problems) < self.max_problems:
            self.report.problems.append(problem)
        else:
            self.report.problems_not_listed += 1

    def feed(self, row: Row[Any], head_seq: int | None) -> None:
        self.report.events_checked += 1
        if head_seq is not None and row.seq > head_seq:
            self.problem(
                Problem(
                    ProblemKind.INSERTED,
                    row.seq,
                    row.id,
                    reason=f"beyond the head (seq {head_seq})",
                )
            )
            return
        if self.group and self.group[0].seq != row.seq:
            self.close_group()
        self.group.append(row)

    def close_group(self) -> None:
        rows, self.group = self.group, []
        if not rows:
            return
        seq, prev = rows[0].seq, self.prev
        if seq < 1:
            for row in rows:
                self.problem(
                    Problem(ProblemKind.INSERTED, seq, row.id, reason="seq below the chain's start")
                )
            return
        follows = seq == prev.seq + 1
        valid = [r for r in rows if link_hash(_link(r)) == r.hash]
        linked = [r for r in valid if follows and r.prev_hash == prev.hash]
        chosen = (linked or valid or rows)[0]
        for row in rows:
            if row is not chosen:
                self.problem(
                    Problem(ProblemKind.INSERTED, seq, row.id, reason=f"a second row at seq {seq}")
                )
        if seq > prev.seq + 1:
            self.problem(
                Problem(
                    ProblemKind.REMOVED,
                    prev.seq + 1,
                    last_seq=seq - 1,
                    reason=f"missing between seq {prev.seq} and seq {seq}",
                )
            )
        reported = False
        if chosen not in valid:
            reported = True
            self.problem(
                Problem(ProblemKind.CHANGED, seq, chosen.id, reason="contents do not match hash")
            )
        elif follows and chosen.prev_hash != prev.hash:
            if prev.seq == 0:
                reported = True
                self.problem(
                    Problem(
                        ProblemKind.CHANGED,
                        seq,
                        chosen.id,
                        reason="re-hashed: the first event does not start from the genesis hash",
                    )
                )
            elif not prev.reported:
                self.problem(
                    Problem(
                        ProblemKind.CHANGED,
                        prev.seq,
                        prev.row_id,
                        reason=f"re-hashed: seq {seq} links to a different hash",
                    )
                )
        self.prev = _Accepted(seq, chosen.id, chosen.hash, reported)

    def finish(self, head: _Head | None) -> None:
        self.close_group()
        if head is None:
            self.problem(Problem(ProblemKind.HEAD, None, reason="the chain head row is missing"))
            return
        self.report.head_seq, self.report.head_hash = head.seq, head.hash
        last = self.prev
        if head.seq > last.seq:
            self.problem(
                Problem(
                    ProblemKind.REMOVED,
                    last.seq + 1,
                    last_seq=head.seq,
                    reason=f"the head is at seq {head.seq} but the last event is seq {last.seq}",
                )
            )
        elif head.hash != last.hash and not last.reported:
            self.problem(
                Problem(
                    ProblemKind.CHANGED,
                    last.seq,
                    last.row_id,
                    reason="re-hashed: the head records a different hash",
                )
            )


def _link(row: Row[Any]) -> Link:
    return Link(
        seq=row.seq,
        at=row.at,
        actor=row.actor,
        actor_role=row.actor_role,
        action=row.action,
        patient_id=row.patient_id,
        target=row.target,
        outcome=row.outcome,
        client_address=row.client_address,
        request_id=row.request_id,
        detail=row.detail,
        prev_hash=row.prev_hash,
    )


async def verify_chain(
    db: async_sessionmaker[AsyncSession],
    *,
    batch_size: int = BATCH_SIZE,
    max_problems: int = MAX_PROBLEMS,
) -> VerifyReport:
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    report = VerifyReport()
    walk = _Walk(report, max_problems)
    async with db() as session:
        # seq is NOT NULL, unless someone changed the schema to slip rows in.
        unnumbered = await session.execute(select(_events.c.id).where(_events.c.seq.is_(None)))
        for row_id in unnumbered.scalars():
            walk.problem(Problem(ProblemKind.INSERTED, None, row_id, reason="a row without seq"))
        head = await _read_head(session)
        cursor: tuple[int, int] | None = None
        while True:
            rows = await _fetch(session, cursor, batch_size)
            if not rows:
                # `head` was read before this empty fetch: every append it counts was visible.
                break
            # Read after the fetch: any genuine row just fetched is at or below this head.
            head = await _read_head(session)
            for row in rows:
                walk.feed(row, head.seq if head is not None else None)
            cursor = (rows[-1].seq, rows[-1].id)
    walk.finish(head)
    return report


@dataclass(frozen=True, slots=True)
class _Head:
    seq: int
    hash: str


async def _read_head(session: AsyncSession) -> _Head | None:
    found = (
        await session.execute(select(_head.c.seq, _head.c.hash).where(_head.c.id == HEAD_ID))
    ).first()
    return _Head(found.seq, found.hash) if found is not None else None


async def _fetch(
    session: AsyncSession, cursor: tuple[int, int] | None, batch_size: int
) -> list[Row[Any]]:
    query = select(_events).where(_events.c.seq.is_not(None))
    if cursor is not None:
        seq, row_id = cursor
        # Keyset pagination on (seq, id): duplicates of a seq are all seen, in id order.
        query = query.where(
            or_(_events.c.seq > seq, and_(_events.c.seq == seq, _events.c.id > row_id))
        )
    query = query.order_by(_events.c.seq, _events.c.id).limit(batch_size)
    return list((await session.execute(query)).all())
