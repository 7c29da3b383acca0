"""Consult notes at rest: what encryption costs, and how fast `liaison keys rotate` goes.

In one run, on a fresh SQLite file in a temporary folder: writes N notes through the real
``NoteStore`` (sealed: a fresh data key, AES-256-GCM, the key wrapped under the ring's key, in a
worker thread) and N notes through the same two-step insert with the body stored as it is; reads
both back in pages of 100 (unsealed in one worker-thread call per page, or not); prints the
throughputs side by side with their ratio; then adds a key and re-wraps every sealed note the
way `liaison keys rotate` does (batches of 100, one transaction each) and prints the rate.

    .venv/bin/python -m bench.notes --notes 1000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime
from pathlib import Path

from sqlalchemy import delete, select

from consult_notes.rotation import rewrap_all
from consult_notes.store import NoteMeta, NoteStore
from consult_notes.templates import NoteKind
from server.auth.roles import Role
from server.db.engine import create_engine
from server.db.migrate import upgrade
from server.db.models import ConsultNote, Patient, User
from server.settings import Settings, load_settings
from server.state import Services, open_services

PAGE = 100
NOW = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def body_of(i: int, size: int) -> bytes:
    text = (f"note {i}: " + "Sleeping better; mood brighter; plan unchanged. " * 40)[:size]
    return json.dumps({"plan": text}).encode()


async def seed(svc: Services) -> tuple[int, int]:
    async with svc.db.begin() as db:
        user = User(
            username="dr.bench",
            display_name="Dr Bench",
            role=Role.PSYCHIATRIST.value,
            password_hash="!",
            created_at=NOW,
        )
        patient = Patient(
            mrn="BENCH-1",
            given_name="Bench",
            family_name="Patient",
            date_of_birth=date(1980, 1, 1),
            preferred_language="en",
            state="CA",
            phone="415 555 0100",
            created_at=NOW,
        )
        db.add_all([user, patient])
        await db.flush()
        return user.id, patient.id


async def write_sealed(
    store: NoteStore, svc: Services, ids: tuple[int, int], n: int, size: int
) -> list[NoteMeta]:
    metas: list[NoteMeta] = []
    for start in range(0, n, PAGE):
        async with svc.db.begin() as db:
            for i in range(start, min(n, start + PAGE)):
                metas.append(
                    await store.create(
                        db,
                        patient_id=ids[1],
                        author_id=ids[0],
                        kind=NoteKind.PROGRESS,
                        template_id="progress_note",
                        amends=None,
                        encounter_id=None,
                        body=body_of(i, size),
                        now=NOW,
                    )
                )
    return metas


async def write_plain(svc: Services, ids: tuple[int, int], n: int, size: int) -> list[int]:
    """The same rows and the same two-step insert as NoteStore.create, minus the crypto."""
    note_ids: list[int] = []
    for start in range(0, n, PAGE):
        async with svc.db.begin() as db:
            for i in range(start, min(n, start + PAGE)):
                row = ConsultNote(
                    patient_id=ids[1],
                    author_id=ids[0],
                    kind=NoteKind.PROGRESS.value,
                    template_id="progress_note",
                    version=1,
                    created_at=NOW,
                    updated_at=NOW,
                    kek_id="",
                    wrapped_dek=b"",
                    nonce=b"",
                    ciphertext=b"",
                )
                db.add(row)
                await db.flush()
                row.kek_id, row.ciphertext = "plain", body_of(i, size)
                await db.flush()
                note_ids.append(row.id)
    return note_ids


async def read_sealed(store: NoteStore, svc: Services, metas: list[NoteMeta]) -> int:
    total = 0
    for start in range(0, len(metas), PAGE):
        async with svc.db() as db:
            bodies = await store.bodies(db, metas[start : start + PAGE])
        total += sum(len(b) for _, b in bodies)
    return total


async def read_plain(svc: Services, note_ids: list[int]) -> int:
    total = 0
    for start in range(0, len(note_ids), PAGE):
        page = note_ids[start : start + PAGE]
        async with svc.db() as db:
            rows = await db.execute(
                select(ConsultNote.id, ConsultNote.ciphertext).where(ConsultNote.id.in_(page))
            )
            total += sum(len(body) for _id, body in rows.all())
    return total


async def timed(work: Callable[[], Awaitable[object]]) -> tuple[float, object]:
    started = time.perf_counter()
    result = await work()
    return time.perf_counter() - started, result


async def run(settings: Settings, n: int, size: int) -> None:
    engine = create_engine(settings.database)
    await upgrade(engine)
    await engine.dispose()
    async with open_services(settings) as svc:
        store = svc.notes.store
        ids = await seed(svc)
        sealed_write, metas = await timed(lambda: write_sealed(store, svc, ids, n, size))
        plain_write, plain_ids = await timed(lambda: write_plain(svc, ids, n, size))
        sealed_read, _ = await timed(lambda: read_sealed(store, svc, metas))  # type: ignore[arg-type]
        plain_read, _ = await timed(lambda: read_plain(svc, plain_ids))  # type: ignore[arg-type]
        async with svc.db.begin() as db:
            await db.execute(delete(ConsultNote).where(ConsultNote.kek_id == "plain"))
        ring = svc.notes_keys.ring.with_new_key()
        ring.save(settings.notes.key_file)
        await svc.notes_keys.reload()
        report = await rewrap_all(svc.db, store, ring)

    print(f"{n} notes of ~{size} bytes each, SQLite, pages of {PAGE}\n")
    print(f"{'':12}{'encrypted':>14}{'plain':>14}{'ratio':>10}")
    for label, sealed, plain in (
        ("write", sealed_write, plain_write),
        ("read", sealed_read, plain_read),
    ):
        print(f"{label:12}{n / sealed:>10.0f} n/s{n / plain:>10.0f} n/s{sealed / plain:>9.2f}x")
    print(
        f"\nrotation: {report.rewrapped} data keys re-wrapped in {report.seconds:.2f} s "
        f"({report.rate:.0f} notes/s, {report.batches} batches), {report.remaining} left"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--notes", type=int, default=1000, help="notes to write (default 1000)")
    parser.add_argument("--size", type=int, default=2000, help="body bytes (default 2000)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="liaison-bench-notes-") as folder:
        env = {
            "LIAISON_DATABASE__URL": f"sqlite+aiosqlite:///{Path(folder) / 'bench.db'}",
            "LIAISON_PATHS__VAR_DIR": str(Path(folder) / "var"),
            "LIAISON_LOGGING__LEVEL": "WARNING",
            "PATH": os.environ.get("PATH", ""),
        }
        asyncio.run(run(load_settings(environ=env), args.notes, args.size))


if __name__ == "__main__":
    main()
