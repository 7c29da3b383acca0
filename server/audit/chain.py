"""The hash chain, pure: the canonical encoding of one link and its sha256.

    hash(n) = sha256(canonical(seq, at, actor, actor_role, action, patient_id, target, outcome,
                               client_address, request_id, detail, prev_hash = hash(n - 1)))

The encoding is a JSON array in a fixed order behind a version tag: unambiguous (every field is
typed and delimited, so no two different rows encode alike), ASCII-only, and independent of the
database, which stores every field exactly as hashed (``detail`` as its canonical JSON text, the
time in microseconds, like both SQLite and PostgreSQL keep it).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

# prev_hash of the first event.
GENESIS_HASH: Final = "0" * 64
# Changes only with the encoding; a future v2 can be verified next to v1 rows.
ENCODING_TAG: Final = "liaison-audit-v1"


@dataclass(frozen=True, slots=True)
class Link:
    """The hashed fields of one event, as stored."""

    seq: int
    at: datetime
    actor: str
    actor_role: str
    action: str
    patient_id: int | None
    target: str | None
    outcome: str
    client_address: str | None
    request_id: str | None
    detail: str  # canonical JSON text
    prev_hash: str


def format_time(at: datetime) -> str:
    if at.tzinfo is None:
        raise ValueError("naive datetime in the audit chain")
    return at.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def canonical_encoding(link: Link) -> bytes:
    fields = [
        ENCODING_TAG,
        link.seq,
        format_time(link.at),
        link.actor,
        link.actor_role,
        link.action,
        link.patient_id,
        link.target,
        link.outcome,
        link.client_address,
        link.request_id,
        link.detail,
        link.prev_hash,
    ]
    return json.dumps(fields, ensure_ascii=True, separators=(",", ":"), allow_nan=False).encode()


def link_hash(link: Link) -> str:
    return hashlib.sha256(canonical_encoding(link)).hexdigest()
