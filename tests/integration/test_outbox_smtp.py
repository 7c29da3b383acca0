"""The outbox's SMTP sender (server/outbox.py SmtpSender) against a real SMTP server: aiosmtpd on
127.0.0.1, in a thread of its own. A clinic booking's invitation arrives with the patient as
recipient and the join link in its body, and the stored copy is scrubbed; a server that refuses
the message leaves it unsent for the retry, which sends it once the server accepts again; the
sender signs in when a user and password file are configured; and STARTTLS checks the server's
certificate."""

from __future__ import annotations

import ipaddress
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default
from pathlib import Path
from typing import Any, cast

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from server.clock import FakeClock
from server.db.models import OutboxMessage
from server.outbox import SCRUBBED
from server.outbox_tasks import OUTBOX_TASKS
from server.state import SERVICES
from tests.conftest import AppFactory, SignIn, free_port
from tests.integration.clinic_support import BASE, ClinicSession, set_up_clinic_session
from tests.integration.visit_support import Client, ok_json

SENDER = "Riverside Clinic <visits@clinic.example>"
USER = "liaison"
PASSWORD = "correct horse battery staple"
RETRY = timedelta(seconds=60)  # outbox.retry_base_s, the default


@dataclass(frozen=True)
class Received:
    envelope: Envelope
    authenticated: bool


class Mailbox:
    """An aiosmtpd handler that keeps what it accepts, or refuses every recipient while
    ``refusing`` (a 5xx, as a relay does for an address it will not take)."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        self.refusing = False

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if self.refusing:
            return "550 5.7.1 Recipient refused"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        # The client waits for this reply, so the list is complete once its send returns.
        self.received.append(Received(envelope, bool(session.authenticated)))
        return "250 Message accepted"


def authenticate(
    server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
) -> AuthResult:
    good = isinstance(auth_data, LoginPassword) and auth_data == LoginPassword(
        USER.encode(), PASSWORD.encode()
    )
    # handled=False: aiosmtpd then answers a refusal itself (535), as a real server does.
    return AuthResult(success=good, handled=False)


def self_signed(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 that no system trusts, and its key."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "smtp.test")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = folder / "smtp-cert.pem", folder / "smtp-key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file


@dataclass(frozen=True)
class MailServer:
    port: int
    mailbox: Mailbox
    cert: Path | None  # with STARTTLS: the server's self-signed certificate


@pytest.fixture
def starttls() -> bool:
    """Whether the server offers (and requires) STARTTLS; a test parametrizes it."""
    return False


@pytest.fixture
def mail_server(starttls: bool, tmp_path: Path) -> Iterator[MailServer]:
    """aiosmtpd in its own thread, stopped after the test. It does not require AUTH, so a
    sender without a user is served too. Without STARTTLS it offers AUTH in the clear
    (auth_require_tls=False), acceptable on loopback only."""
    mailbox = Mailbox()
    port = free_port()
    cert: Path | None = None
    tls: dict[str, Any] = {"auth_require_tls": False}
    if starttls:
        cert, key = self_signed(tmp_path)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(cert, key)
        tls = {"tls_context": context, "require_starttls": True}
    controller = Controller(
        mailbox, hostname="127.0.0.1", port=port, authenticator=authenticate, **tls
    )
    controller.start()
    try:
        yield MailServer(port, mailbox, cert)
    finally:
        controller.stop()


@pytest.fixture
def password() -> str | None:
    """The SMTP password the clinic configured, or none (no smtp_user); a test parametrizes it."""
    return None


@pytest.fixture
async def app_client(
    make_app: AppFactory, mail_server: MailServer, password: str | None, tmp_path: Path
) -> Client:
    overrides = {
        "LIAISON_OUTBOX__MODE": "smtp",
        "LIAISON_OUTBOX__SMTP_HOST": "127.0.0.1",
        "LIAISON_OUTBOX__SMTP_PORT": str(mail_server.port),
        "LIAISON_OUTBOX__SMTP_STARTTLS": str(mail_server.cert is not None).lower(),
        "LIAISON_OUTBOX__SMTP_FROM": SENDER,
        "LIAISON_OUTBOX__SMTP_TIMEOUT_S": "10",
        # The background loop never fires during a test: the tests tick the task themselves.
        "LIAISON_OUTBOX__SCAN_INTERVAL_S": "3600",
    }
    if password is not None:
        secret = tmp_path / "smtp-password"
        secret.write_text(password + "\n")  # as a mounted secret often ends
        # In a config file, as config/production.example.toml has it: in the environment,
        # LIAISON_OUTBOX__SMTP_PASSWORD_FILE would be taken for the secret-file form of a
        # setting "smtp_password" (server/settings.py _with_file_secrets).
        config = tmp_path / "liaison.toml"
        config.write_text(f'[outbox]\nsmtp_user = "{USER}"\nsmtp_password_file = "{secret}"\n')
        overrides["LIAISON_CONFIG"] = str(config)
    return await make_app(**overrides)


@pytest.fixture
async def clinic(app_client: Client, clock: FakeClock, sign_in: SignIn) -> ClinicSession:
    return await set_up_clinic_session(app_client, clock, sign_in, timedelta(hours=3))


async def book(clinic: ClinicSession) -> Any:
    response = await clinic.clinic.care_manager.post(
        f"{BASE}/sessions/{clinic.session['id']}/bookings",
        json={"patient_id": clinic.patient_id, "slot_start": clinic.session["slots"][0]},
    )
    return await ok_json(response, 201)  # whatever became of the delivery


async def stored(clinic: ClinicSession, message_id: int) -> OutboxMessage:
    async with clinic.clinic.client.app[SERVICES].db() as db:
        message = await db.get(OutboxMessage, message_id)
        assert message is not None
        return message


def parsed(received: Received) -> EmailMessage:
    content = received.envelope.content
    assert isinstance(content, bytes)  # aiosmtpd's default: the message as it came
    return message_from_bytes(content, policy=default)


def join_link(mail: EmailMessage) -> str:
    return next(w for w in cast(str, mail.get_content()).split() if "/join#" in w)


def assert_invitation(clinic: ClinicSession, received: Received) -> None:
    assert received.envelope.mail_from == "visits@clinic.example"
    assert received.envelope.rcpt_tos == ["sam@example.org"]
    mail = parsed(received)
    assert mail["From"] == SENDER and mail["To"] == "sam@example.org"
    assert mail["Subject"] == "Your video visit"
    assert "Hello Sam" in cast(str, mail.get_content())
    public_url = clinic.clinic.client.app[SERVICES].settings.server.public_url
    assert join_link(mail).startswith(f"{str(public_url).rstrip('/')}/join#")


async def test_an_invitation_is_delivered_over_smtp_and_its_stored_link_scrubbed(
    clinic: ClinicSession, mail_server: MailServer
) -> None:
    booked = await book(clinic)
    invitation = booked["invitation"]
    assert invitation["delivery"] == "sent" and invitation["error"] is None
    assert invitation["attempts"] == 1

    [received] = mail_server.mailbox.received
    assert not received.authenticated  # no smtp_user: the sender does not sign in
    assert_invitation(clinic, received)
    message = await stored(clinic, invitation["id"])
    assert message.sent_at == clinic.clinic.clock.now
    assert "/join#" not in message.body and SCRUBBED in message.body
    assert join_link(parsed(received)) not in message.body


async def test_a_refused_message_stays_unsent_with_its_link_until_a_retry_sends_it(
    clinic: ClinicSession, mail_server: MailServer
) -> None:
    mail_server.mailbox.refusing = True
    booked = await book(clinic)  # the 5xx does not reach the staff member booking
    invitation = booked["invitation"]
    assert (invitation["attempts"], invitation["error"]) == (1, "smtp_failed")
    assert invitation["sent_at"] is None and invitation["delivery"] == "pending"
    assert mail_server.mailbox.received == []
    kept = await stored(clinic, invitation["id"])
    assert "/join#" in kept.body  # the retry needs the link

    mail_server.mailbox.refusing = False
    clinic.clinic.clock.advance(RETRY.total_seconds())
    [retried] = (await clinic.clinic.client.app[OUTBOX_TASKS].tick()).retried
    assert retried.id == invitation["id"]
    assert (retried.attempts, retried.error) == (2, None) and retried.sent_at is not None
    [received] = mail_server.mailbox.received
    assert_invitation(clinic, received)
    # The link that arrived is the one the failed attempt kept; the stored copy is scrubbed.
    assert join_link(parsed(received)) in kept.body
    assert "/join#" not in (await stored(clinic, invitation["id"])).body


@pytest.mark.parametrize("password", [PASSWORD])
async def test_the_sender_signs_in_with_the_configured_user_and_password_file(
    clinic: ClinicSession, mail_server: MailServer
) -> None:
    booked = await book(clinic)
    assert booked["invitation"]["delivery"] == "sent"
    [received] = mail_server.mailbox.received
    assert received.authenticated
    assert_invitation(clinic, received)


@pytest.mark.parametrize("password", ["not the password"])
async def test_a_refused_sign_in_leaves_the_message_unsent(
    clinic: ClinicSession, mail_server: MailServer
) -> None:
    booked = await book(clinic)
    invitation = booked["invitation"]
    assert (invitation["attempts"], invitation["error"]) == (1, "smtp_failed")
    assert invitation["delivery"] == "pending"
    assert mail_server.mailbox.received == []
    assert "/join#" in (await stored(clinic, invitation["id"])).body


# --- STARTTLS -------------------------------------------------------------------------------


@pytest.mark.parametrize(("starttls", "password"), [(True, PASSWORD)])
async def test_starttls_refuses_a_certificate_the_server_host_does_not_trust(
    clinic: ClinicSession, mail_server: MailServer
) -> None:
    booked = await book(clinic)
    invitation = booked["invitation"]
    assert (invitation["attempts"], invitation["error"]) == (1, "smtp_failed")
    assert mail_server.mailbox.received == []  # neither the password nor the link went out
    assert "/join#" in (await stored(clinic, invitation["id"])).body


@pytest.mark.parametrize(("starttls", "password"), [(True, PASSWORD)])
async def test_starttls_to_a_trusted_server_then_sign_in_delivers(
    clinic: ClinicSession, mail_server: MailServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # How a host trusts a private CA: OpenSSL's default verify paths, read per context.
    assert mail_server.cert is not None
    monkeypatch.setenv("SSL_CERT_FILE", str(mail_server.cert))
    booked = await book(clinic)
    assert booked["invitation"]["delivery"] == "sent"
    [received] = mail_server.mailbox.received
    assert received.authenticated
    assert_invitation(clinic, received)
