"""Demo data for `make demo`: one account per role, and enough around them to try every workflow
at once (a video visit, curbside consults, a clinic session, the collaborative-care registry).

Safe to run again: nothing that exists is duplicated or changed. What is tied to the present
(on-call shifts, today's clinic session, the visit's join link) is added again only when the
earlier one is over, so a demo started on another day works just as well.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import select, update

from consult_notes.templates import CASELOAD_REVIEW
from server.auth.roles import Role
from server.clinics.kinds import BookingStatus, ContactKind
from server.curbside.service import NewConsult, WrittenAnswer
from server.db.models import (
    CareContact,
    CareTeamMember,
    ClinicBooking,
    ClinicSession,
    Condition,
    ConsultNote,
    ConsultRequest,
    MedicationStatement,
    Patient,
    SafetyFlag,
    Screening,
    User,
    Visit,
)
from server.outbox import outbox_folder
from server.record.chart import ConditionFields, MedicationFields
from server.record.entries import CodeSystem
from server.record.patients import NewPatient, TeamRole
from server.record.screening_service import EnteredBy
from server.record.screenings import PHQ9_SELF_HARM_ITEM, Instrument
from server.settings import Settings
from server.state import Services, open_services
from server.visits.service import NewVisit
from server.visits.status import VisitStatus
from signaling import curbside as cs

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


@dataclass(frozen=True)
class DemoActor:
    """The demo clinician the seeding acts as (server.record.access.Actor)."""

    user_id: int
    role: Role


@dataclass(frozen=True)
class DemoScore:
    instrument: Instrument
    days_ago: int
    total: int
    item9: int = 0  # PHQ-9 item 9 (self-harm); above 0 raises a safety flag


@dataclass(frozen=True)
class DemoPatient:
    new: NewPatient
    # Usernames on the care team; the first creates the patient.
    team: tuple[tuple[str, TeamRole], ...]
    problems: tuple[ConditionFields, ...]
    medications: tuple[MedicationFields, ...]
    scores: tuple[DemoScore, ...]
    contact_days_ago: int  # the care manager's last contact
    registry: str  # what the registry should show, for the printed guide


def _problem(text: str, icd10: str) -> ConditionFields:
    return ConditionFields(text=text, code=icd10, code_system=CodeSystem.ICD10CM)


def _med(name: str, dose: str, frequency: str) -> MedicationFields:
    return MedicationFields(name=name, dose=dose, route="oral", frequency=frequency)


PSYCHIATRIST, PCP, CARE_MANAGER = TeamRole.PSYCHIATRIST, TeamRole.PCP, TeamRole.CARE_MANAGER

# Jordan prefers Spanish, so the visit proposes an interpreter.
DEMO_PATIENT = NewPatient(
    given_name="Jordan",
    family_name="Alvarez",
    date_of_birth=date(1988, 4, 12),
    preferred_language="es",
    state="CA",
    phone="+1 415 555 0134",
    email="jordan.alvarez@example.org",
    mrn="DEMO-0001",
)

# Each registry flag once, and one patient on track (scores per the registry's default rules:
# not improving = less than 50 % below baseline after 10 weeks; overdue = 30 days).
DEMO_PATIENTS = (
    DemoPatient(
        DEMO_PATIENT,
        team=(("dr.rivera", PSYCHIATRIST), ("dr.chen", PCP), ("cm.patel", CARE_MANAGER)),
        problems=(
            _problem("Major depressive disorder, recurrent, moderate", "F33.1"),
            _problem("Essential hypertension", "I10"),
        ),
        medications=(_med("Sertraline", "100 mg", "daily"), _med("Lisinopril", "10 mg", "daily")),
        scores=(
            DemoScore(Instrument.PHQ9, 84, 18),
            DemoScore(Instrument.GAD7, 84, 12),
            DemoScore(Instrument.PHQ9, 56, 17),
            DemoScore(Instrument.PHQ9, 28, 16),
            DemoScore(Instrument.PHQ9, 4, 15),
            DemoScore(Instrument.GAD7, 4, 11),
        ),
        contact_days_ago=6,
        registry="not improving after 12 weeks",
    ),
    DemoPatient(
        NewPatient(
            given_name="Samira",
            family_name="Haddad",
            date_of_birth=date(1975, 9, 3),
            preferred_language="en",
            state="NY",
            phone="+1 212 555 0187",
            email="samira.haddad@example.org",
            mrn="DEMO-0002",
        ),
        team=(("dr.chen", PCP), ("dr.okafor", PSYCHIATRIST), ("cm.patel", CARE_MANAGER)),
        problems=(
            _problem("Generalized anxiety disorder", "F41.1"),
            _problem("Type 2 diabetes mellitus without complications", "E11.9"),
        ),
        medications=(
            _med("Escitalopram", "10 mg", "daily"),
            _med("Metformin", "500 mg", "twice daily"),
        ),
        scores=(
            DemoScore(Instrument.PHQ9, 42, 14),
            DemoScore(Instrument.GAD7, 42, 15),
            DemoScore(Instrument.PHQ9, 14, 12),
            DemoScore(Instrument.PHQ9, 1, 13, item9=1),
            DemoScore(Instrument.GAD7, 1, 13),
        ),
        contact_days_ago=2,
        registry="safety: PHQ-9 item 9 answered yesterday",
    ),
    DemoPatient(
        NewPatient(
            given_name="Marcus",
            family_name="Bell",
            date_of_birth=date(1961, 1, 22),
            preferred_language="en",
            state="CA",
            phone="+1 510 555 0110",
            email="marcus.bell@example.org",
            mrn="DEMO-0003",
        ),
        team=(
            ("dr.chen", PCP),
            ("dr.rivera", PSYCHIATRIST),
            ("dr.okafor", PSYCHIATRIST),
            ("cm.patel", CARE_MANAGER),
        ),
        problems=(
            _problem("Major depressive disorder, single episode, moderate", "F32.1"),
            _problem("Chronic low back pain", "M54.50"),
        ),
        medications=(_med("Bupropion XL", "150 mg", "every morning"),),
        scores=(
            DemoScore(Instrument.PHQ9, 98, 16),
            DemoScore(Instrument.GAD7, 98, 9),
            DemoScore(Instrument.PHQ9, 56, 10),
            DemoScore(Instrument.PHQ9, 14, 6),
            DemoScore(Instrument.GAD7, 14, 4),
        ),
        contact_days_ago=45,
        registry="overdue contact (45 days)",
    ),
    DemoPatient(
        NewPatient(
            given_name="Helen",
            family_name="Park",
            date_of_birth=date(1993, 6, 30),
            preferred_language="en",
            state="CA",
            phone="+1 408 555 0162",
            email="helen.park@example.org",
            mrn="DEMO-0004",
        ),
        team=(("dr.chen", PCP), ("dr.okafor", PSYCHIATRIST), ("cm.patel", CARE_MANAGER)),
        problems=(_problem("Postpartum depression", "F53.0"),),
        medications=(_med("Sertraline", "50 mg", "daily"),),
        scores=(
            DemoScore(Instrument.PHQ9, 35, 15),
            DemoScore(Instrument.GAD7, 35, 10),
            DemoScore(Instrument.PHQ9, 7, 9),
            DemoScore(Instrument.GAD7, 7, 6),
        ),
        contact_days_ago=4,
        registry="on track, no flags",
    ),
)

DEMO_VISIT_LEAD = timedelta(minutes=5)
DEMO_VISIT_MINUTES = 45

# On call from now for the next hours: a primary and a backup, licensed where the demo's
# patients live (NY only for the backup, so an NY patient's call skips Dr. Rivera).
SHIFT_HOURS = 12
SHIFT_AT_LEAST = timedelta(hours=2)  # an existing shift ending sooner gets a fresh one
DEMO_ROTA = (
    ("dr.rivera", cs.Tier.PRIMARY, ("CA", "OR", "WA")),
    ("dr.okafor", cs.Tier.BACKUP, ("CA", "NY")),
)

DEMO_CLINIC_TITLE = "Collaborative-care clinic (demo)"
DEMO_CLINIC_PSYCHIATRIST = "dr.okafor"
DEMO_CLINIC_SLOT_MINUTES = 30
DEMO_CLINIC_SLOTS = 6
DEMO_CLINIC_BOOKED = ("DEMO-0002", "DEMO-0004", "DEMO-0003")  # one patient per slot, in order


@dataclass(frozen=True)
class DemoWritten:
    mrn: str
    urgency: cs.Urgency
    question: str
    # The answering psychiatrist and their answer; None: left in the queue.
    answered_by: str | None = None
    assessment: str = ""
    recommendations: str = ""
    follow_up: str = ""


DEMO_WRITTEN = (
    DemoWritten(
        "DEMO-0003",
        cs.Urgency.ROUTINE,
        "PHQ-9 down from 16 to 6 on bupropion XL 150 mg over 14 weeks, but he now sleeps "
        "badly. Keep the dose, add something for sleep, or switch?",
        answered_by="dr.rivera",
        assessment="Depression responding well (over 60 % drop in PHQ-9). Insomnia is a "
        "plausible activating effect of bupropion, worse when taken late.",
        recommendations="Keep bupropion XL 150 mg, taken on waking. Sleep hygiene and "
        "CBT-I resources first; if still poor after 2 weeks, trazodone 25-50 mg at night.",
        follow_up="Repeat PHQ-9 in 4 weeks; curbside again if PHQ-9 rises above 10.",
    ),
    DemoWritten(
        "DEMO-0001",
        cs.Urgency.URGENT,
        "PHQ-9 still 15 after 12 weeks of sertraline 100 mg (baseline 18). Adherent, no "
        "side effects. Increase the dose, augment, or switch?",
    ),
)


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
        users = await _users(svc)
        patients = {p.new.mrn: await seed_patient(svc, users, p) for p in DEMO_PATIENTS}
        visit_lines = await seed_demo_visit(svc)
        rota_lines = await seed_rota(svc, users)
        await seed_written(svc, users, patients)
        await seed_review(svc, users, patients[DEMO_PATIENT.mrn])
        clinic_lines = await seed_clinic(svc, users, patients)
    url = settings.server.public_url
    outbox = outbox_folder(settings.outbox, settings.paths.var_dir)
    lines = [
        "",
        f"Liaison demo at {url}/login",
        f"Every demo account's password: {DEMO_PASSWORD}",
        *(f"  {a.role.value:<13} {a.username:<12} {a.display_name}" for a in DEMO_ACCOUNTS),
        "",
        *visit_lines,
        *rota_lines,
        "Curbside consults (two browsers, or one and a private window):",
        f"  Sign in as dr.rivera and open {url}/curbside: the on-call dashboard, with the "
        "written queue (one urgent question waiting).",
        f"  Sign in as dr.chen, open {url}/curbside and ask about Jordan Alvarez with "
        "'Call now': Dr. Rivera's dashboard rings; accept, talk, then sign the recommendation.",
        "  Dr. Chen's requests also hold a written answer about Marcus Bell to acknowledge.",
        f"  As admin, {url}/admin/curbside shows the licence rule and time to answer.",
        "",
        *clinic_lines,
        f"  Invitations with the patients' join links are files in {outbox}/ (the newest "
        "message for a patient holds the link that works).",
        "",
        f"Caseload review: sign in as dr.rivera (or cm.patel) and open {url}/registry/review:",
        "  the flagged patients one at a time, safety first; Jordan Alvarez was reviewed today,",
        "  with a follow-up for the care manager tied to the recommendation.",
        f"Registry: sign in as cm.patel and open {url}/registry. The caseload:",
        *(
            f"  {p.new.given_name} {p.new.family_name}: {p.registry}"
            for p in sorted(DEMO_PATIENTS, key=lambda p: p.new.family_name)
        ),
        "",
    ]
    return "\n".join(lines)


async def _users(svc: Services) -> dict[str, User]:
    async with svc.db() as db:
        found = {a.username: await svc.users.by_username(db, a.username) for a in DEMO_ACCOUNTS}
    return {name: user for name, user in found.items() if user is not None}


def _actor(user: User) -> DemoActor:
    return DemoActor(user.id, Role(user.role))


# --- patients, their records and the registry ---------------------------------------------------


async def seed_patient(svc: Services, users: dict[str, User], demo: DemoPatient) -> Patient:
    """The patient, their care team, and (each only if the record has none yet) problems,
    medications, score history and the care manager's last contact."""
    creator = _actor(users[demo.team[0][0]])
    async with svc.db() as db:
        patient = (
            await db.execute(select(Patient).where(Patient.mrn == demo.new.mrn))
        ).scalar_one_or_none()
    if patient is None:
        patient = (await svc.patients.create(creator, demo.new)).patient
    pid = patient.id
    async with svc.db() as db:
        team = set(
            (
                await db.execute(
                    select(CareTeamMember.user_id).where(CareTeamMember.patient_id == pid)
                )
            ).scalars()
        )
        has = {
            model: (await db.execute(select(model.id).where(model.patient_id == pid))).first()
            is not None
            for model in (Condition, MedicationStatement, Screening, CareContact)
        }
    for username, role_on_team in demo.team:
        if users[username].id not in team:
            await svc.patients.add_to_care_team(creator, pid, users[username].id, role_on_team)
    pcp = _actor(users["dr.chen"])
    if not has[Condition]:
        for problem in demo.problems:
            await svc.record.add(pcp, pid, problem)
    if not has[MedicationStatement]:
        for medication in demo.medications:
            await svc.record.add(pcp, pid, medication)
    if not has[Screening]:
        await _seed_scores(svc, pcp, pid, demo.scores)
    if not has[CareContact]:
        await svc.registry.add_contact(
            _actor(users["cm.patel"]),
            pid,
            20,
            ContactKind.PHONE,
            svc.clock() - timedelta(days=demo.contact_days_ago),
        )
    return patient


def _answers(instrument: Instrument, total: int, item9: int) -> list[int]:
    """Item answers adding up to ``total``, spread evenly (PHQ-9 item 9 as given)."""
    items = 9 if instrument is Instrument.PHQ9 else 7
    free = items - 1 if instrument is Instrument.PHQ9 else items
    rest = total - item9
    answers = [rest // free + (1 if i < rest % free else 0) for i in range(free)]
    if instrument is Instrument.PHQ9:
        answers.insert(PHQ9_SELF_HARM_ITEM - 1, item9)
    return answers


async def _seed_scores(
    svc: Services, who: DemoActor, patient_id: int, scores: tuple[DemoScore, ...]
) -> None:
    """Entered through the screening service (scored, flagged and audited like any other),
    then moved back to when they were "administered": the service records only the present,
    and the registry needs weeks of history."""
    now = svc.clock()
    for score in sorted(scores, key=lambda s: -s.days_ago):
        answers = _answers(score.instrument, score.total, score.item9)
        entered = await svc.screenings.enter(
            EnteredBy.user(who), patient_id, score.instrument, answers
        )
        at = now - timedelta(days=score.days_ago)
        async with svc.db.begin() as db:
            await db.execute(
                update(Screening)
                .where(Screening.id == entered.screening.id)
                .values(administered_at=at)
            )
            if entered.flag is not None:
                await db.execute(
                    update(SafetyFlag).where(SafetyFlag.id == entered.flag.id).values(raised_at=at)
                )


# --- the video visit ----------------------------------------------------------------------------


async def seed_demo_visit(svc: Services) -> list[str]:
    """A visit with Jordan Alvarez starting in a few minutes (scheduled only if none is coming
    up), and a fresh patient join link for it."""
    now = svc.clock()
    async with svc.db() as db:
        rivera = await svc.users.by_username(db, "dr.rivera")
        assert rivera is not None
        patient = (
            await db.execute(select(Patient).where(Patient.mrn == DEMO_PATIENT.mrn))
        ).scalar_one()
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
    as_rivera = DemoActor(rivera.id, Role.PSYCHIATRIST)
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


# --- curbside -----------------------------------------------------------------------------------


async def seed_rota(svc: Services, users: dict[str, User]) -> list[str]:
    """Licences (if none are recorded) and shifts covering the next hours."""
    now = svc.clock()
    oncall = svc.curbside.oncall
    current = await oncall.shifts(now, now + timedelta(seconds=1))
    lines = ["On call now (curbside):"]
    for username, tier, states in DEMO_ROTA:
        user = users[username]
        me = _actor(user)
        if not await oncall.licenses(me):
            await oncall.set_licenses(me, states)
        mine = [s for s in current if s.psychiatrist_id == user.id and s.tier is tier]
        if mine and max(s.ends_at for s in mine) >= now + SHIFT_AT_LEAST:
            ends = max(s.ends_at for s in mine)
        else:
            added = await oncall.add_shift(
                me, user.id, tier, now, now + timedelta(hours=SHIFT_HOURS)
            )
            ends = added.ends_at
        licensed = ", ".join(await oncall.licenses(me))
        lines.append(
            f"  {tier.value:<8} {user.display_name} until {ends:%H:%M UTC}, licensed in {licensed}"
        )
    return [*lines, ""]


async def seed_written(
    svc: Services, users: dict[str, User], patients: dict[str | None, Patient]
) -> None:
    """Dr. Chen's written questions: one answered (to acknowledge), one in the queue. Only
    for a patient Dr. Chen has never asked about."""
    chen = _actor(users["dr.chen"])
    async with svc.db() as db:
        asked = set(
            (
                await db.execute(
                    select(ConsultRequest.patient_id).where(ConsultRequest.pcp_id == chen.user_id)
                )
            ).scalars()
        )
    for demo in DEMO_WRITTEN:
        patient = patients[demo.mrn]
        if patient.id in asked:
            continue
        request_id = await svc.curbside.open(
            chen,
            patient.id,
            NewConsult(
                question=demo.question,
                urgency=demo.urgency,
                mode=cs.Mode.WRITTEN,
                patient_consented=True,
            ),
        )
        if demo.answered_by is not None:
            await svc.curbside.answer(
                _actor(users[demo.answered_by]),
                request_id,
                WrittenAnswer(
                    assessment=demo.assessment,
                    recommendations=demo.recommendations,
                    follow_up=demo.follow_up,
                    face_to_face_advised=False,
                ),
            )


# --- the caseload review -------------------------------------------------------------------------


async def seed_review(svc: Services, users: dict[str, User], patient: Patient) -> None:
    """Dr. Rivera's signed caseload-review recommendation for the patient who is not improving,
    and the care manager's follow-up from it; once (none if any review note exists)."""
    async with svc.db() as db:
        reviewed = (
            await db.execute(
                select(ConsultNote.id).where(
                    ConsultNote.patient_id == patient.id,
                    ConsultNote.template_id == CASELOAD_REVIEW.id,
                )
            )
        ).first()
    if reviewed is not None:
        return
    rivera = _actor(users["dr.rivera"])
    draft = await svc.notes.create(
        rivera,
        patient.id,
        CASELOAD_REVIEW.id,
        {
            "current_status": "PHQ-9 18 to 15 (-17%) after 12 weeks on sertraline 100 mg; "
            "adherent, no side effects reported to the care manager.",
            "recommendation": "Not improving: augment rather than switch.",
            "medication": "Add bupropion XL 150 mg each morning; check blood pressure in 2 weeks.",
            "therapy": "Offer behavioural activation with the care manager, weekly.",
            "follow_up": "Care manager calls in 2 weeks about tolerability; PHQ-9 in 4 weeks.",
        },
    )
    signed = await svc.notes.sign(rivera, draft.meta.id)
    await svc.registry.add_task(
        rivera,
        patient.id,
        title="Call about bupropion tolerability and blood pressure",
        due=(svc.clock() + timedelta(days=14)).date(),
        owner_id=users["cm.patel"].id,
        source_note_id=signed.meta.id,
    )


# --- the clinic ---------------------------------------------------------------------------------


def _next_quarter_hour(at: datetime) -> datetime:
    """The first quarter hour not before ``at`` (08:30:44 gives 08:45: a first slot already
    begun would be skipped as past)."""
    floor = at.replace(minute=at.minute - at.minute % 15, second=0, microsecond=0)
    return floor if floor >= at else floor + timedelta(minutes=15)


async def seed_clinic(
    svc: Services, users: dict[str, User], patients: dict[str | None, Patient]
) -> list[str]:
    """A clinic session starting at the next quarter hour (unless a demo session has not ended
    yet), with patients booked into its first slots through the clinics service: each booking
    is a video visit, and its invitation goes to the outbox."""
    now = svc.clock()
    psychiatrist = users[DEMO_CLINIC_PSYCHIATRIST]
    staff = _actor(users["cm.patel"])
    async with svc.db() as db:
        session = (
            (
                await db.execute(
                    select(ClinicSession)
                    .where(
                        ClinicSession.psychiatrist_id == psychiatrist.id,
                        ClinicSession.title == DEMO_CLINIC_TITLE,
                        ClinicSession.ends_at > now,
                    )
                    .order_by(ClinicSession.starts_at)
                )
            )
            .scalars()
            .first()
        )
    if session is None:
        start = _next_quarter_hour(now)
        created = await svc.clinics.create_session(
            staff,
            psychiatrist_id=psychiatrist.id,
            title=DEMO_CLINIC_TITLE,
            starts_at=start,
            ends_at=start + timedelta(minutes=DEMO_CLINIC_SLOT_MINUTES * DEMO_CLINIC_SLOTS),
            slot_minutes=DEMO_CLINIC_SLOT_MINUTES,
        )
        session = created.session
    async with svc.db() as db:
        booked = set(
            (
                await db.execute(
                    select(ClinicBooking.patient_id).where(
                        ClinicBooking.session_id == session.id,
                        ClinicBooking.status == BookingStatus.BOOKED.value,
                    )
                )
            ).scalars()
        )
    slot_step = timedelta(minutes=session.slot_minutes)
    for index, mrn in enumerate(DEMO_CLINIC_BOOKED):
        patient = patients[mrn]
        slot = session.starts_at + index * slot_step
        # A session already under way keeps its past slots as they were.
        if patient.id in booked or slot < now:
            continue
        await svc.clinics.book(staff, session.id, patient.id, slot)
    names = ", ".join(
        f"{patients[m].given_name} {patients[m].family_name}" for m in DEMO_CLINIC_BOOKED
    )
    return [
        f"Clinic: '{session.title}' with {psychiatrist.display_name}, "
        f"{session.starts_at:%H:%M}-{session.ends_at:%H:%M UTC}, booked: {names}.",
        f"  Sign in as cm.patel and open {svc.settings.server.public_url}/clinics to book, "
        f"move or resend; as {psychiatrist.username}, the session's live board.",
    ]
