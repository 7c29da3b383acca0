"""Re-wrapping every note's data key under the key ring's current key, in batches.

``liaison keys rotate`` first adds a key to the ring and saves the ring (so the key is on disk
before anything is wrapped under it), then calls :func:`rewrap_all`. Each batch is one short
transaction, so the server keeps serving while it runs, and a row the server changes meanwhile
(an autosave re-seals a draft) is skipped rather than overwritten (``NoteStore.rewrap_batch``
compares the wrapped key it read). Rows already under the target key are never selected, so an
interrupted run is resumed by running again: it picks up where the last one stopped.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from consult_notes.keyring import KeyRing
from consult_notes.store import NoteStore

DEFAULT_BATCH = 100


@dataclass
class RotationReport:
    target: str
    rewrapped: int = 0
    skipped: int = 0  # changed by someone else while being re-wrapped: left for the next run
    batches: int = 0
    remaining: int = 0  # rows not under the target key when the run ended
    seconds: float = 0.0
    interrupted: bool = False  # stopped by max_batches before the end

    @property
    def rate(self) -> float:
        """Notes re-wrapped per second."""
        return self.rewrapped / self.seconds if self.seconds > 0 else 0.0


BatchHook = Callable[[RotationReport], Awaitable[None]]


async def rewrap_all(
    db: async_sessionmaker[AsyncSession],
    store: NoteStore,
    ring: KeyRing,
    *,
    batch_size: int = DEFAULT_BATCH,
    max_batches: int | None = None,
    on_batch: BatchHook | None = None,
    timer: Callable[[], float] = time.perf_counter,
) -> RotationReport:
    """Re-wrap every row not under ``ring.current_id``. ``max_batches`` stops early (the rest
    is for a later run); ``on_batch`` runs after each committed batch (progress, or a test
    interrupting the run by raising)."""
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    report = RotationReport(ring.current_id)
    started = timer()
    after_id = 0
    try:
        while max_batches is None or report.batches < max_batches:
            async with db.begin() as session:
                done, skipped, last_id = await store.rewrap_batch(
                    session, ring, after_id=after_id, limit=batch_size
                )
            if last_id is None:
                break
            after_id = last_id
            report.rewrapped += done
            report.skipped += skipped
            report.batches += 1
            if on_batch is not None:
                await on_batch(report)
        else:
            report.interrupted = True
    finally:
        report.seconds = timer() - started
        async with db() as session:
            report.remaining = await store.count_not_under(session, ring.current_id)
    return report
