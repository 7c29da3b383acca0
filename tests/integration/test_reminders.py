"""Automatic visit reminders and outbox retries through the real server (server/outbox_tasks.py):
the reminder goes once, at the lead time, with a fresh link; the rules that make it unneeded;
failed deliveries retried with backoff and then given up; and two server processes on one
database (SQLite, and PostgreSQL under `make test`) sending each reminder and attempt once."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default
from pathlib import Path
from typing import Any, cast

import pytest
from sqlalchemy import func, select, update

from server.auth.roles import Role
from server.clinics.kinds import OutboxKind
from server.clock import FakeClock
from server.db.models import OutboxMessage, Visit, VisitLink
from server.outbox import MAX_ATTEMPTS, SCRUBBED
from server.outbox_tasks import OUTBOX_TASKS, OutboxTasks, TickReport
from server.record.patients import NewPatient, TeamRole
from server.state import SERVICES, Services
from tests.conftest import PASSWORD, AppFactory, SignIn
from tests.integration.clinic_support import BASE, set_up_clinic_session, two_processes
from tests.integration.visit_support import (
    Client,
    Clinic,
    Holders,
    error_code,
    ok_json,
)

pytestmark = pytest.mark.timeout(120)
LEAD = timedelta(minutes=60)
RETRY = timedelta(seconds=60)
# The background loop never fires during a test: the tests tick the task themselves.
QUIET = {"LIAISON_OUTBOX__SCAN_INTERVAL_S": "3600"}


@pytest.fixture
async def app_client(make_app: AppFactory) -> Client:
    return await make_app(**QUIET)


def mails(folder: Path) -> list[EmailMessage]:
    return [
        message_from_bytes(p.read_bytes(), policy=default) for p in sorted(folder.glob("*.eml"))
    ]


def link_in(mail: EmailMessage) -> str:
    text = cast(str, mail.get_content())
    return next(w for w in text.split() if "/join#" in w)


class Setup:
    def __init__(self, clinic: Clinic, sign_in: SignIn, session: dict[str, Any], patient: int):
        self.clinic = clinic
        self.sign_in = sign_in
        self.session = session
        self.patient_id = patient

    @property
    def svc(self) -> Services:
        return self.clinic.client.app[SERVICES]

    @property
    def tasks(self) -> OutboxTasks:
        return self.clinic.client.app[OUTBOX_TASKS]

    @property
    def outbox(self) -> Path:
        return self.svc.settings.paths.var_dir / "outbox"

    @property
    def start(self) -> datetime:
        return datetime.fromisoformat(self.session["slots"][0])

    async def staff(self) -> Any:
        # A fresh sign-in: the clock moves by hours between steps, past the idle timeout.
        return await self.sign_in(Role.CARE_MANAGER, "cm.patel")

    async def book(self, slot: int = 0) -> Any:
        response = await (await self.staff()).post(
            f"{BASE}/sessions/{self.session['id']}/bookings",
            json={"patient_id": self.patient_id, "slot_start": self.session["slots"][slot]},
        )
        return await ok_json(response, 201)

    async def resend(self, booking_id: int, kind: str = "invitation") -> Any:
        response = await (await self.staff()).post(
            f"{BASE}/bookings/{booking_id}/invitation", json={"kind": kind}
        )
        return await ok_json(response, 201)

    async def booking(self, booking_id: int) -> Any:
        detail = await ok_json(
            await (await self.staff()).get(f"{BASE}/sessions/{self.session['id']}")
        )
        return next(b for b in detail["bookings"] if b["id"] == booking_id)

    def at(self, when: datetime) -> None:
        self.clinic.clock.now = when

    async def tick(self) -> TickReport:
        return await self.tasks.tick()

    async def reminders(self) -> list[OutboxMessage]:
        async with self.svc.db() as db:
            found = await db.execute(
                select(OutboxMessage)
                .where(OutboxMessage.kind == OutboxKind.REMINDER.value)
                .order_by(OutboxMessage.id)
            )
            return list(found.scalars())

    async def stored(self, message_id: int) -> OutboxMessage:
        async with self.svc.db() as db:
            message = await db.get(OutboxMessage, message_id)
            assert message is not None
            return message


async def make_setup(
    client: Client, clock: FakeClock, sign_in: SignIn, starts_in: timedelta
) -> Setup:
    made = await set_up_clinic_session(client, clock, sign_in, starts_in)
    return Setup(made.clinic, sign_in, made.session, made.patient_id)


@pytest.fixture
async def setup(app_client: Client, clock: FakeClock, sign_in: SignIn) -> Setup:
    """A session starting in three hours: bookings are made well before the lead time."""
    return await make_setup(app_client, clock, sign_in, timedelta(hours=3))


# --- reminders ------------------------------------------------------------------------------


async def test_the_reminder_goes_once_at_the_lead_time_with_a_fresh_link(setup: Setup) -> None:
    booked = await setup.book()
    assert (await setup.tick()).reminders == []
    setup.at(setup.start - LEAD - timedelta(seconds=1))
    assert (await setup.tick()).reminders == []
    assert len(mails(setup.outbox)) == 1

    setup.at(setup.start - LEAD)
    [reminder] = (await setup.tick()).reminders
    assert reminder.kind == "reminder" and reminder.visit_id == booked["visit_id"]
    assert reminder.sent_at == setup.start - LEAD and reminder.created_by is None
    invitation, sent = mails(setup.outbox)
    assert sent["Subject"] == "Reminder: your video visit" and sent["To"] == "sam@example.org"
    assert "camera, microphone and connection" in cast(str, sent.get_content())
    # The stored copy keeps no usable link.
    stored = await setup.stored(reminder.id)
    assert "/join#" not in stored.body and SCRUBBED in stored.body

    async with Holders(setup.clinic.client) as holders:
        # The invitation's link was replaced by the reminder's, which works.
        response = await holders().exchange(link_in(invitation))
        assert await error_code(response, 410) == "link_revoked"
        await holders().join(link_in(sent))

    setup.clinic.clock.advance(30 * 60)
    assert (await setup.tick()).reminders == []
    assert len(await setup.reminders()) == 1
    async with setup.svc.db() as db:
        visit = await db.get(Visit, booked["visit_id"])
        assert visit is not None and visit.reminder_queued_at == setup.start - LEAD
    row = await setup.booking(booked["id"])
    assert row["invitation"]["kind"] == "reminder"
    assert row["invitation"]["delivery"] == "sent"


async def test_a_visit_booked_inside_the_lead_time_gets_no_second_message(
    app_client: Client, clock: FakeClock, sign_in: SignIn
) -> None:
    setup = await make_setup(app_client, clock, sign_in, timedelta(minutes=30))
    booked = await setup.book()
    assert (await setup.tick()).reminders == []
    clock.advance(10 * 60)
    assert (await setup.tick()).reminders == []
    assert len(mails(setup.outbox)) == 1
    async with setup.svc.db() as db:
        visit = await db.get(Visit, booked["visit_id"])
        assert visit is not None and visit.reminder_queued_at is not None  # decided: none


async def test_a_cancelled_visit_gets_no_reminder(setup: Setup) -> None:
    kept = await setup.book(0)
    dropped = await setup.book(1)
    response = await (await setup.staff()).post(f"{BASE}/bookings/{dropped['id']}/cancel")
    await ok_json(response)
    setup.at(setup.start + timedelta(minutes=30) - LEAD)  # both slots inside the lead time
    assert [m.visit_id for m in (await setup.tick()).reminders] == [kept["visit_id"]]
    assert [m.visit_id for m in await setup.reminders()] == [kept["visit_id"]]


async def test_a_resend_before_the_lead_time_keeps_the_reminder_one_inside_replaces_it(
    setup: Setup,
) -> None:
    first = await setup.book(0)  # starts at start
    second = await setup.book(1)  # 20 minutes later
    await setup.resend(first["id"], "reminder")  # three hours ahead: still reminded
    setup.at(setup.start - LEAD)
    assert [m.visit_id for m in (await setup.tick()).reminders] == [first["visit_id"]]

    # Inside the second visit's lead time, before any scan reaches it, the clinic resends.
    setup.at(setup.start + timedelta(minutes=20) - LEAD + timedelta(minutes=1))
    await setup.resend(second["id"])
    assert (await setup.tick()).reminders == []
    # A resend after the reminder is one more message, and brings no further reminder.
    await setup.resend(first["id"])
    setup.clinic.clock.advance(60)
    assert (await setup.tick()).reminders == []
    assert [m.visit_id for m in await setup.reminders()] == [
        first["visit_id"],  # the manual one
        first["visit_id"],  # the automatic one
    ]
    assert len(mails(setup.outbox)) == 6


async def test_a_patient_who_opened_the_link_is_not_put_out_by_a_reminder(setup: Setup) -> None:
    booked = await setup.book()
    async with Holders(setup.clinic.client) as holders:
        await holders().join(link_in(mails(setup.outbox)[0]))
    setup.at(setup.start - LEAD)
    assert (await setup.tick()).reminders == []
    async with setup.svc.db() as db:
        live = await db.scalar(
            select(func.count())
            .select_from(VisitLink)
            .where(VisitLink.visit_id == booked["visit_id"], VisitLink.revoked_at.is_(None))
        )
    assert live == 1


# --- retries --------------------------------------------------------------------------------


def break_folder(folder: Path) -> None:
    """A real failure of the folder sender: a file where its folder should be."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    folder.write_text("not a folder")


async def test_a_failed_delivery_is_retried_with_backoff_then_given_up(setup: Setup) -> None:
    break_folder(setup.outbox)
    booked = await setup.book()
    invitation = booked["invitation"]
    assert (invitation["attempts"], invitation["error"]) == (1, "folder_failed")
    assert invitation["sent_at"] is None and invitation["delivery"] == "pending"

    for attempts in range(1, MAX_ATTEMPTS):
        backoff = RETRY * 2 ** (attempts - 1)
        setup.clinic.clock.advance(backoff.total_seconds() - 1)
        assert (await setup.tick()).retried == []
        setup.clinic.clock.advance(1)
        [retried] = (await setup.tick()).retried
        assert retried.id == invitation["id"]
        assert (retried.attempts, retried.error) == (attempts + 1, "folder_failed")
        assert retried.last_attempt_at == setup.clinic.clock.now

    setup.clinic.clock.advance(3600)
    assert (await setup.tick()).retried == []
    row = await setup.booking(booked["id"])
    assert row["invitation"]["attempts"] == MAX_ATTEMPTS
    assert row["invitation"]["delivery"] == "failed"
    # Never sent, so the stored copy still holds the link; a resend replaces it.
    assert "/join#" in (await setup.stored(invitation["id"])).body

    setup.outbox.unlink()
    resent = await setup.resend(booked["id"])
    assert resent["delivery"] == "sent"
    assert "/join#" not in (await setup.stored(resent["id"])).body


async def test_messages_waiting_out_their_backoff_do_not_hold_back_one_that_is_due(
    setup: Setup,
) -> None:
    break_folder(setup.outbox)
    waiting = (await setup.book(0))["invitation"]
    due = (await setup.book(1))["invitation"]
    # The older message has failed twice: its next try is 2 x RETRY after its last one.
    async with setup.svc.db.begin() as db:
        await db.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id == waiting["id"])
            .values(attempts=2, last_attempt_at=setup.clinic.clock.now)
        )
    setup.outbox.unlink()
    setup.clinic.clock.advance(RETRY.total_seconds())
    [retried] = await setup.svc.clinics.outbox.deliver_due(RETRY, limit=1)
    assert retried.id == due["id"] and retried.sent_at is not None
    assert (await setup.stored(waiting["id"])).sent_at is None


async def test_a_retry_sends_only_the_newest_message_and_scrubs_its_link(setup: Setup) -> None:
    break_folder(setup.outbox)
    booked = await setup.book()
    replaced = booked["invitation"]
    resent = await setup.resend(booked["id"])  # a fresh link; this one fails too
    assert resent["delivery"] == "pending"
    setup.outbox.unlink()

    setup.clinic.clock.advance(RETRY.total_seconds())
    [retried] = (await setup.tick()).retried
    assert retried.id == resent["id"] and retried.sent_at is not None
    assert retried.attempts == 2 and retried.error is None
    assert "/join#" not in retried.body
    [mail] = mails(setup.outbox)
    async with Holders(setup.clinic.client) as holders:
        await holders().join(link_in(mail))
    # The invitation it replaced holds a revoked link: never sent.
    old = await setup.stored(replaced["id"])
    assert old.sent_at is None and old.attempts == 1
    assert (await setup.booking(booked["id"]))["invitation"]["delivery"] == "sent"


# --- two server processes on one database ---------------------------------------------------


@dataclass(frozen=True)
class Who:
    user_id: int
    role: Role


@pytest.fixture
async def two(
    shared_database_url: str, tmp_path: Path, clock: FakeClock
) -> AsyncIterator[tuple[Services, Services]]:
    """Two processes' services on one database (and one outbox folder)."""
    async with two_processes(shared_database_url, tmp_path, clock, **QUIET) as both:
        yield both


def tasks_of(svc: Services) -> OutboxTasks:
    return OutboxTasks(svc.db, svc.settings, svc.clock, svc.clinics.outbox, svc.visits, svc.audit)


async def book_visits(svc: Services, clock: FakeClock, count: int) -> datetime:
    """``count`` bookings of one patient, in consecutive slots three hours ahead."""
    staff = await svc.users.create("cm.patel", "Cm Patel", Role.CARE_MANAGER, PASSWORD)
    doctor = await svc.users.create("dr.rivera", "Dr. Rivera", Role.PSYCHIATRIST, PASSWORD)
    as_doctor, as_staff = Who(doctor.id, Role.PSYCHIATRIST), Who(staff.id, Role.CARE_MANAGER)
    patient = await svc.patients.create(
        as_doctor,
        NewPatient("Sam", "Lee", date(1988, 4, 12), "en", "CA", "+1 415 555 0134", "s@x.org"),
    )
    patient_id = patient.patient.id
    await svc.patients.add_to_care_team(as_doctor, patient_id, staff.id, TeamRole.CARE_MANAGER)
    start = (clock.now + timedelta(hours=3)).replace(second=0, microsecond=0, tzinfo=UTC)
    session = await svc.clinics.create_session(
        as_staff,
        psychiatrist_id=doctor.id,
        title="Consults",
        starts_at=start,
        ends_at=start + timedelta(minutes=10 * count),
        slot_minutes=10,
    )
    for slot in session.slots:
        await svc.clinics.book(as_staff, session.session.id, patient_id, slot)
    return start


async def test_two_processes_send_each_reminder_once(
    two: tuple[Services, Services], clock: FakeClock
) -> None:
    a, b = two
    start = await book_visits(a, clock, 5)
    clock.now = start + timedelta(minutes=50) - LEAD  # every visit inside its lead time
    first, second = await asyncio.gather(
        tasks_of(a).queue_reminders(), tasks_of(b).queue_reminders()
    )
    assert len(first) + len(second) == 5
    async with a.db() as db:
        per_visit = (
            await db.execute(
                select(OutboxMessage.visit_id, func.count())
                .where(OutboxMessage.kind == OutboxKind.REMINDER.value)
                .group_by(OutboxMessage.visit_id)
            )
        ).all()
    assert len(per_visit) == 5 and all(n == 1 for _, n in per_visit)


async def test_two_processes_make_each_retry_once(
    two: tuple[Services, Services], clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    a, b = two
    folder = a.settings.paths.var_dir / "outbox"
    break_folder(folder)
    await book_visits(a, clock, 5)
    folder.unlink()
    clock.advance(RETRY.total_seconds())
    caplog.set_level(logging.INFO, "liaison.outbox")
    await asyncio.gather(a.clinics.outbox.deliver_due(RETRY), b.clinics.outbox.deliver_due(RETRY))
    sent = [r.__dict__["message_id"] for r in caplog.records if r.msg == "outbox message delivered"]
    async with a.db() as db:
        messages = list((await db.execute(select(OutboxMessage))).scalars())
    assert len(messages) == 5
    # One claim each: a second sender would have made it three attempts.
    assert all(m.attempts == 2 and m.sent_at is not None for m in messages)
    assert sorted(sent) == sorted(m.id for m in messages)  # each sent once, by one of them
    assert len(list(folder.glob("*.eml"))) == 5
