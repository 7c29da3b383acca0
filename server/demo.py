"""Demo data for `make demo`: one account per role. Safe to run again (nothing is duplicated)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from sqlalchemy import select

from server.auth.roles import Role
from server.db.models import CareTeamMember, Patient, Visit
from server.record.patients import NewPatient, TeamRole
from server.settings import Settings
from server.state import Services, open_services
from server.visits.service import NewVisit
from server.visits.status import VisitStatus

# A demo password is printed for anyone to see: never use demo data in a real deployment.
DEMO_PASSWORD = "liaison-demo-password"  # noqa: S105 - printed for all to see, demo only


@dataclass(frozen=True)
class DemoAccount:
    username: str
    display_name: str
    role: Role


DEMO_ACCOUNTS = (
    DemoAccount("admin", "Avery Admin", Role.ADMIN),
    DemoAccount("dr.rivera", "Dr. Sofia Rivera", Role.PSYCHIATRIST),
    DemoAccount("dr.okafor", "Dr. James Okafor", Role.PSYCHIATRIST),
    DemoAccount("dr.chen", "Dr. Mei Chen", Role.PCP),
    DemoAccount("t.nguyen", "Tran Nguyen, LCSW", Role.THERAPIST),
    DemoAccount("cm.patel", "Priya Patel, RN", Role.CARE_MANAGER),
)


# A patient whose preferred language is not the clinic's, so the visit proposes an interpreter.
DEMO_PATIENT = NewPatient(
    given_name="Jordan",
    family_name="Alvarez",
    date_of_birth=date(1988, 4, 12),
    preferred_language="es",
    state="CA",
    phone="+1 415 555 0134",
    mrn="DEMO-0001",
)
DEMO_VISIT_LEAD = timedelta(minutes=5)
DEMO_VISIT_MINUTES = 45


@dataclass(frozen=True)
class DemoActor:
    """The demo clinician the seeding acts as (server.record.access.Actor)."""

    user_id: int
    role: Role


async def seed_demo(settings: Settings) -> str:
    """Create what is missing and return the text to show the user."""
    async with open_services(settings) as svc:
        async with svc.db() as db:
            existing = {
                a.username for a in DEMO_ACCOUNTS if await svc.users.by_username(db, a.username)
            }
        for account in DEMO_ACCOUNTS:
            if account.username not in existing:
                await svc.users.create(
                    account.username, account.display_name, account.role, DEMO_PASSWORD
                )
        visit_lines = await seed_demo_visit(svc)
    url = settings.server.public_url
    lines = [
        "",
        f"Liaison demo at {url}/login",
        f"Every demo account's password: {DEMO_PASSWORD}",
        *(f"  {a.role.value:<13} {a.username:<12} {a.display_name}" for a in DEMO_ACCOUNTS),
        "",
        *visit_lines,
    ]
    return "\n".join(lines)


async def seed_demo_visit(svc: Services) -> list[str]:
    """Jordan Alvarez on Dr. Rivera's and Dr. Chen's care team, with a visit starting in a few
    minutes (scheduled only if none is coming up), and a fresh patient join link for it."""
    now = svc.clock()
    async with svc.db() as db:
        rivera = await svc.users.by_username(db, "dr.rivera")
        chen = await svc.users.by_username(db, "dr.chen")
        assert rivera is not None and chen is not None
        patient = (
            await db.execute(select(Patient).where(Patient.mrn == DEMO_PATIENT.mrn))
        ).scalar_one_or_none()
    as_rivera = DemoActor(rivera.id, Role.PSYCHIATRIST)
    if patient is None:
        patient = (await svc.patients.create(as_rivera, DEMO_PATIENT)).patient
    async with svc.db() as db:
        team = set(
            (
                await db.execute(
                    select(CareTeamMember.user_id).where(CareTeamMember.patient_id == patient.id)
                )
            ).scalars()
        )
        upcoming = [
            v
            for v in (
                await db.execute(
                    select(Visit)
                    .where(
                        Visit.patient_id == patient.id,
                        Visit.status.in_([VisitStatus.SCHEDULED, VisitStatus.WAITING]),
                    )
                    .order_by(Visit.scheduled_start)
                )
            ).scalars()
            if v.scheduled_start + timedelta(minutes=v.duration_minutes) > now
        ]
    if rivera.id not in team:
        await svc.patients.add_to_care_team(as_rivera, patient.id, rivera.id, TeamRole.PSYCHIATRIST)
    if chen.id not in team:
        await svc.patients.add_to_care_team(as_rivera, patient.id, chen.id, TeamRole.PCP)
    if upcoming:
        visit = upcoming[0]
        link = await svc.visits.reissue_patient_link(as_rivera, visit.id)
        how = "A new link for the visit already scheduled (the previous link no longer works):"
    else:
        view, link = await svc.visits.schedule(
            as_rivera,
            NewVisit(
                patient_id=patient.id,
                scheduled_start=now + DEMO_VISIT_LEAD,
                duration_minutes=DEMO_VISIT_MINUTES,
                clinician_ids=[rivera.id],
                reason="Medication follow-up (demo)",
            ),
        )
        visit = view.visit
        how = "Patient join link (only its hash is stored, so every run issues a fresh one):"
    starts = visit.scheduled_start.strftime("%H:%M UTC")
    return [
        f"Demo video visit: {patient.given_name} {patient.family_name} with "
        f"{rivera.display_name}, {starts}, {visit.duration_minutes} minutes",
        f"  {how}",
        f"    {link.url}",
        "  Open it in another browser (or a private window), then enter the date of birth "
        f"{patient.date_of_birth.isoformat()}.",
        f"  Sign in as {rivera.username} to admit the patient. Jordan prefers Spanish, so the "
        "visit suggests inviting an interpreter.",
        "",
    ]
