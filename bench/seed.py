"""Bench rooms in a fresh database: two clinicians per visit, each with a login session.

Accounts, patients and care teams are written straight to the database (no password hashing:
nobody signs in with a password); visits go through ``VisitService.schedule`` and the
sessions through ``SessionService.open``, so rooms and cookies are exactly what the server
makes of them. Two clinicians on the same visit go straight into its call on joining.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy import func, select

from server.auth.roles import Role
from server.db.models import CareTeamMember, Patient, User
from server.record.patients import TeamRole
from server.settings import Settings
from server.state import Services, open_services
from server.visits.service import NewVisit

# Not a hash any password verifies against: these accounts only ever hold seeded sessions.
NO_PASSWORD = "!bench-account-without-password"
VISIT_MINUTES = 240


@dataclass(frozen=True)
class Room:
    visit_id: int
    # The two clinicians' login-session cookie tokens.
    first: str
    second: str


@dataclass(frozen=True)
class BenchActor:
    """The clinician a visit is scheduled by (server.record.access.Actor)."""

    user_id: int
    role: Role


async def seed_clinicians(svc: Services, count: int) -> list[tuple[User, str]]:
    """``count`` psychiatrists, each with a login session; returns them with cookie tokens."""
    now = svc.clock()
    async with svc.db.begin() as db:
        first = await db.scalar(select(func.count()).select_from(User)) or 0
        users = [
            User(
                username=f"bench-{first + i:05d}",
                display_name=f"Dr. Bench {first + i}",
                role=Role.PSYCHIATRIST.value,
                password_hash=NO_PASSWORD,
                created_at=now,
            )
            for i in range(count)
        ]
        db.add_all(users)
        await db.flush()
        tokens = [(await svc.sessions.open(db, u, "127.0.0.1", False))[0] for u in users]
    return list(zip(users, tokens, strict=True))


async def seed_rooms(settings: Settings, count: int) -> list[Room]:
    """``count`` visits, each with two clinicians on the patient's care team."""
    async with open_services(settings) as svc:
        clinicians = await seed_clinicians(svc, 2 * count)
        now = svc.clock()
        async with svc.db.begin() as db:
            patients = [
                Patient(
                    mrn=f"BENCH-{i:05d}",
                    given_name="Bench",
                    family_name=f"Patient {i}",
                    date_of_birth=date(1980, 1, 1),
                    preferred_language="en",
                    state="CA",
                    phone="+1 415 555 0100",
                    created_at=now,
                )
                for i in range(count)
            ]
            db.add_all(patients)
            await db.flush()
            db.add_all(
                CareTeamMember(
                    patient_id=patient.id,
                    user_id=user.id,
                    role_on_team=TeamRole.PSYCHIATRIST.value,
                    added_at=now,
                    added_by=user.id,
                )
                for i, patient in enumerate(patients)
                for user, _ in clinicians[2 * i : 2 * i + 2]
            )
        rooms = []
        for i, patient in enumerate(patients):
            (first, first_token), (second, second_token) = clinicians[2 * i : 2 * i + 2]
            view, _ = await svc.visits.schedule(
                BenchActor(first.id, Role.PSYCHIATRIST),
                NewVisit(
                    patient_id=patient.id,
                    scheduled_start=now,
                    duration_minutes=VISIT_MINUTES,
                    clinician_ids=[first.id, second.id],
                    reason="signaling benchmark",
                ),
            )
            rooms.append(Room(view.visit.id, first_token, second_token))
    return rooms
