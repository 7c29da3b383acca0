"""Typed settings, read once at start.

Precedence, lowest first: ``config/liaison.toml`` (embedded defaults), the file given with
``--config`` (or ``LIAISON_CONFIG``), then ``LIAISON_*`` environment variables, nested with a
double underscore (``LIAISON_DATABASE__URL``). Any setting may instead be read from a file named
by ``LIAISON_<NAME>_FILE`` (``LIAISON_DATABASE__URL_FILE=/run/secrets/db``), so secrets can come
from a mounted secret rather than the environment.

Invalid configuration raises :class:`ConfigError`, whose message names every bad setting.
"""

from __future__ import annotations

import ipaddress
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, EnvSettingsSource, SettingsConfigDict, SettingsError

from server.auth.roles import Role
from server.record.demographics import normalise_language
from signaling.ice import IceSettings

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULTS_FILE = PROJECT_ROOT / "config" / "liaison.toml"
ENV_PREFIX = "LIAISON_"
ENV_NESTING = "__"


class ConfigError(Exception):
    """The configuration cannot be used; the message names the settings at fault."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _cidrs(value: list[str]) -> list[str]:
    """Networks that ``ipaddress.ip_network`` takes (server.forwarded.parse_networks relies on
    it): a host address with a prefix (``10.0.0.1/8``) is refused rather than guessed at."""
    for cidr in value:
        try:
            ipaddress.ip_network(cidr)
        except ValueError as exc:
            raise ValueError(f"{exc} (expected CIDRs such as 10.0.0.5/32)") from None
    return value


class ServerSettings(_Section):
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    public_url: str = "http://127.0.0.1:8080"
    max_body_bytes: int = Field(default=1_048_576, ge=1024)
    # Origins (scheme://host[:port]) allowed besides public_url for browser requests and sockets.
    allowed_origins: list[str] = Field(default_factory=list)
    # Reverse proxies (CIDR) whose X-Forwarded-For is believed: requests from them are taken to
    # come from the address they forward (server/forwarded.py). Empty: the connection's address.
    trusted_proxies: list[str] = Field(default_factory=list)

    _networks = field_validator("trusted_proxies")(_cidrs)

    @field_validator("public_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/")

    @property
    def tls(self) -> bool:
        return self.public_url.startswith("https://")

    @property
    def origins(self) -> frozenset[str]:
        scheme, _, rest = self.public_url.partition("://")
        own = f"{scheme}://{rest.split('/', 1)[0]}"
        return frozenset([own, *(o.rstrip("/") for o in self.allowed_origins)])


class DatabaseSettings(_Section):
    url: str = "sqlite+aiosqlite:///var/liaison.db"
    echo: bool = False

    @field_validator("url")
    @classmethod
    def _async_driver(cls, value: str) -> str:
        if not value.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
            raise ValueError(
                "must be an async SQLAlchemy URL: sqlite+aiosqlite:///path or "
                "postgresql+asyncpg://user:password@host/db"
            )
        return value


class SessionSettings(_Section):
    cookie_name: str = "liaison_session"
    idle_timeout_clinician_s: int = Field(default=900, ge=60)
    idle_timeout_patient_s: int = Field(default=1800, ge=60)
    absolute_lifetime_s: int = Field(default=43_200, ge=300)


class SecuritySettings(_Section):
    totp_required_roles: list[Role] = Field(default_factory=list)
    totp_issuer: str = "Liaison"
    login_failures_per_account: int = Field(default=5, ge=1)
    # Counted per IPv4 address and per IPv6 /64 (server.forwarded.throttle_key).
    login_failures_per_address: int = Field(default=20, ge=1)
    login_failure_window_s: int = Field(default=900, ge=1)


class PasswordSettings(_Section):
    """argon2id cost. The defaults are argon2-cffi's (RFC 9106 low-memory profile)."""

    time_cost: int = Field(default=3, ge=1)
    memory_cost_kib: int = Field(default=65_536, ge=8)
    parallelism: int = Field(default=4, ge=1)


class LoggingSettings(_Section):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    format: Literal["json", "console"] = "json"


class PathSettings(_Section):
    var_dir: Path = Path("var")


class ClinicSettings(_Section):
    # The language the clinic's clinicians speak, as a BCP-47 tag ("en", "es"). A patient whose
    # preferred language differs gets an interpreter link proposed for their visits.
    language: str = "en"
    # --- automatic no-show (server/clinics/no_show.py) ---
    # A booked clinic visit whose patient never checked in is marked a no-show this many minutes
    # after its slot ends; 0: only by hand.
    auto_no_show_after_minutes: int = Field(default=15, ge=0, le=24 * 60)
    # --- end automatic no-show ---

    @field_validator("language")
    @classmethod
    def _language_tag(cls, value: str) -> str:
        return normalise_language(value)


class VisitSettings(_Section):
    # A join link stays valid until the visit's scheduled end plus this grace period.
    link_grace_minutes: int = Field(default=60, ge=0, le=24 * 60)
    # Wrong dates of birth a link holder may enter before the link is locked.
    identity_attempts: int = Field(default=5, ge=1, le=20)
    # The cookie that carries a link holder's short-lived visit session.
    cookie_name: str = "liaison_visit"


class SignalingSettings(_Section):
    # A participant who drops and returns within this many seconds comes back admitted.
    reconnect_grace_s: int = Field(default=120, ge=0, le=3600)
    # Mesh calls: every participant sends media to every other, so keep this small.
    max_in_call: int = Field(default=4, ge=2, le=8)
    # Largest socket.io message, in bytes (an SDP offer with many candidates is ~10 kB).
    max_message_bytes: int = Field(default=65_536, ge=4096)
    # Per-socket event rate: a steady rate and a burst; past them events are refused, and after
    # flood_strikes refusals the socket is disconnected.
    events_per_second: float = Field(default=50.0, gt=0)
    event_burst: int = Field(default=200, ge=1)
    flood_strikes: int = Field(default=100, ge=1)


class DeviceCheckSettings(_Section):
    """The server's echo peer, which a patient's device and network check connects to."""

    # Echo peers alive at once, server-wide. Each one decodes and re-encodes its caller's
    # video, so this is bounded by CPU; past it, offers get 429 echo_busy.
    max_peers: int = Field(default=20, ge=1, le=1000)
    # Echo peers one user (or visit link) may hold; a newer offer ends their oldest peer.
    max_peers_per_owner: int = Field(default=2, ge=1, le=10)
    # Seconds an echo peer lives at most, connected or not.
    max_lifetime_s: int = Field(default=60, ge=5, le=600)


class RecordSettings(_Section):
    """The shared patient record."""

    # Minutes a break-the-glass grant lasts; the clinician states a reason each time.
    break_glass_minutes: int = Field(default=60, ge=5, le=24 * 60)
    # Characters the stated reason must have at least.
    break_glass_min_reason: int = Field(default=20, ge=5, le=500)


class NotesSettings(_Section):
    """The key ring that encrypts consult notes (consult_notes/keyring.py)."""

    # The key file; relative paths are inside paths.var_dir. Created (0600, one fresh key) on
    # first start when missing; `liaison keys rotate` adds keys to it.
    key_file: Path = Path("keys/notes-keyring.json")
    # Or the ring itself, as KeyRing.to_env_value() prints it (base64 of the key file's JSON):
    # LIAISON_NOTES__KEYRING, or LIAISON_NOTES__KEYRING_FILE=/run/secrets/... . Wins over key_file.
    keyring: SecretStr | None = None
    # Seconds between checks of the key file for keys added by a rotation in another process.
    reload_interval_s: int = Field(default=30, ge=1, le=3600)


class CurbsideSettings(_Section):
    """Curbside consults: on-call routing, ringing and the written queue (server/curbside)."""

    # Seconds a tier rings before the request moves on (to the backup tier, then to writing).
    ring_timeout_s: int = Field(default=60, ge=5, le=3600)
    # "Call now" rings only psychiatrists licensed in the patient's state. The default; an
    # admin may override it at run time (PUT /api/v1/admin/curbside/policy).
    require_license_match: bool = True
    # Written-answer targets, in minutes from the request, by urgency.
    answer_minutes_emergent: int = Field(default=60, ge=1)
    answer_minutes_urgent: int = Field(default=240, ge=1)
    answer_minutes_routine: int = Field(default=4320, ge=1)
    # Length of the visit created for a curbside call (it ends when either side hangs up).
    call_minutes: int = Field(default=30, ge=10, le=240)
    # Presence: each server process touches its dashboard sockets' rows this often; a row not
    # touched for presence_stale_s counts as offline (its process is gone).
    presence_heartbeat_s: float = Field(default=10.0, gt=0, le=60)
    presence_stale_s: float = Field(default=30.0, gt=0, le=600)
    # How often each process looks for requests whose ring deadline has passed.
    tick_interval_s: float = Field(default=1.0, gt=0, le=60)
    # Interprofessional consult billing rules: flagged when the consultant saw the patient face
    # to face within this many days, or the patient had another consult within this many days.
    face_to_face_window_days: int = Field(default=14, ge=0, le=365)
    repeat_consult_window_days: int = Field(default=7, ge=0, le=365)

    @model_validator(mode="after")
    def _stale_after_missed_beats(self) -> CurbsideSettings:
        if self.presence_stale_s < 2 * self.presence_heartbeat_s:
            raise ValueError(
                "presence_stale_s must be at least twice presence_heartbeat_s, or a live "
                "dashboard would look offline between two heartbeats"
            )
        return self


class OutboxSettings(_Section):
    """Messages to patients (visit invitations and reminders with the join link)."""

    # "folder": one .eml file per message under ``folder`` (the embedded default, for the
    # demo); "smtp": sent through the SMTP server below.
    mode: Literal["folder", "smtp"] = "folder"
    # Relative paths are inside paths.var_dir.
    folder: Path = Path("outbox")
    smtp_host: str = "localhost"
    smtp_port: int = Field(default=587, ge=1, le=65535)
    smtp_user: str | None = None
    # A file holding the SMTP password (read when a message is sent), e.g. a mounted secret.
    smtp_password_file: Path | None = None
    smtp_from: str = "Liaison <no-reply@localhost>"
    smtp_starttls: bool = True
    smtp_timeout_s: float = Field(default=20.0, gt=0, le=300)
    # A reminder with a fresh join link goes this many minutes before a booked clinic visit
    # (server/clinics/reminders.py); 0: no automatic reminders.
    reminder_lead_minutes: int = Field(default=60, ge=0, le=7 * 24 * 60)
    # How often every server process looks for reminders due and messages to retry.
    scan_interval_s: float = Field(default=30.0, gt=0, le=3600)
    # A message that failed is tried again after retry_base_s, then twice as long after each
    # further failure, up to server.outbox.MAX_ATTEMPTS attempts in all.
    retry_base_s: float = Field(default=60.0, gt=0, le=24 * 3600)

    @model_validator(mode="after")
    def _retry_outlasts_a_send(self) -> OutboxSettings:
        # A retry may be claimed by another process once its backoff is over: the backoff must
        # outlast an attempt still waiting on the SMTP server, or the message could go twice.
        if self.retry_base_s < 2 * self.smtp_timeout_s:
            raise ValueError("retry_base_s must be at least twice smtp_timeout_s")
        return self


class RegistrySettings(_Section):
    """The collaborative-care registry's flags (server/clinics/registry.py)."""

    # "Not improving": less than improvement_target_percent below baseline after
    # not_improving_weeks or more in treatment.
    not_improving_weeks: int = Field(default=10, ge=1, le=104)
    improvement_target_percent: int = Field(default=50, ge=1, le=100)
    # "Overdue contact": no care-manager contact for more than this many days.
    contact_overdue_days: int = Field(default=30, ge=1, le=365)


class ClusterSettings(_Section):
    """Running several server processes behind a load balancer (one process needs none of it)."""

    # Redis for python-socketio's message queue (AsyncRedisManager), e.g. "redis://10.0.0.5:6379/0".
    # Empty: one process, messages stay in memory. Several processes must share one Redis and
    # one PostgreSQL database.
    redis_url: SecretStr = SecretStr("")
    # This process's name in the cluster (rooms remember which node holds each socket, so a
    # dead node's participants can be removed). Empty: "<hostname>-<pid>".
    node_id: str = Field(default="", max_length=64)
    # A node that has not written its heartbeat for node_timeout_s is dead: its sockets' seats
    # in rooms and its curbside presence are cleared by any live node.
    heartbeat_s: float = Field(default=5.0, gt=0, le=60)
    node_timeout_s: float = Field(default=20.0, gt=0, le=600)
    # On SIGTERM: stop accepting, ask sockets to reconnect elsewhere, finish in-flight
    # requests, and exit within this many seconds.
    shutdown_grace_s: float = Field(default=20.0, ge=0, le=600)

    @model_validator(mode="after")
    def _timeout_covers_heartbeats(self) -> ClusterSettings:
        if self.node_timeout_s < 2 * self.heartbeat_s:
            raise ValueError("node_timeout_s must be at least twice heartbeat_s")
        return self


class MetricsSettings(_Section):
    """Prometheus metrics at /metrics."""

    enabled: bool = True
    # Addresses (CIDR) allowed to scrape /metrics; others get 404. Behind a trusted proxy
    # (server.trusted_proxies) both the proxy's address and the client's must be allowed.
    allowed_networks: list[str] = Field(default_factory=lambda: ["127.0.0.0/8", "::1/128"])

    _networks = field_validator("allowed_networks")(_cidrs)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, env_nested_delimiter=ENV_NESTING, extra="forbid", frozen=True
    )

    server: ServerSettings = Field(default_factory=ServerSettings)
    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    sessions: SessionSettings = Field(default_factory=SessionSettings)
    security: SecuritySettings = Field(default_factory=SecuritySettings)
    passwords: PasswordSettings = Field(default_factory=PasswordSettings)
    logging: LoggingSettings = Field(default_factory=LoggingSettings)
    paths: PathSettings = Field(default_factory=PathSettings)
    clinic: ClinicSettings = Field(default_factory=ClinicSettings)
    visits: VisitSettings = Field(default_factory=VisitSettings)
    signaling: SignalingSettings = Field(default_factory=SignalingSettings)
    ice: IceSettings = Field(default_factory=IceSettings)
    device_check: DeviceCheckSettings = Field(default_factory=DeviceCheckSettings)
    record: RecordSettings = Field(default_factory=RecordSettings)
    notes: NotesSettings = Field(default_factory=NotesSettings)
    curbside: CurbsideSettings = Field(default_factory=CurbsideSettings)
    outbox: OutboxSettings = Field(default_factory=OutboxSettings)
    registry: RegistrySettings = Field(default_factory=RegistrySettings)
    cluster: ClusterSettings = Field(default_factory=ClusterSettings)
    metrics: MetricsSettings = Field(default_factory=MetricsSettings)


def load_settings(
    config_file: Path | None = None,
    environ: Mapping[str, str] | None = None,
    defaults_file: Path = DEFAULTS_FILE,
) -> Settings:
    """Build the settings from the defaults file, an optional file and the environment."""
    env = dict(os.environ if environ is None else environ)
    merged: dict[str, Any] = {}
    _deep_merge(merged, _read_toml(defaults_file))
    if config_file is None and env.get(f"{ENV_PREFIX}CONFIG"):
        config_file = Path(env[f"{ENV_PREFIX}CONFIG"])
    if config_file is not None:
        _deep_merge(merged, _read_toml(config_file))
    try:
        _deep_merge(merged, _MappingEnvSource(Settings, _with_file_secrets(env))())
    except SettingsError as exc:
        raise ConfigError(f"invalid configuration: {exc}") from None
    try:
        # model_validate, not Settings(...): the sources were merged above, in our order.
        settings = Settings.model_validate(merged)
    except ValidationError as exc:
        raise ConfigError(_describe(exc)) from None
    return _resolve_paths(settings, defaults_file.parent.parent)


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"configuration file not found: {path}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"configuration file {path} is not valid TOML: {exc}") from None


class _MappingEnvSource(EnvSettingsSource):
    """pydantic-settings' environment parsing, over a mapping the caller hands in."""

    def __init__(self, settings_cls: type[BaseSettings], env: Mapping[str, str]) -> None:
        self._mapping = env
        super().__init__(settings_cls, case_sensitive=False)

    def _load_env_vars(self) -> Mapping[str, str | None]:
        return {key.lower(): value for key, value in self._mapping.items()}


def _is_setting(env_name: str) -> bool:
    """A setting whose own name ends in ``_file`` (``outbox.smtp_password_file``) is set by
    its variable directly, not read from the file it names."""
    section, _, field = env_name[len(ENV_PREFIX) :].lower().partition(ENV_NESTING)
    model = Settings.model_fields.get(section)
    if model is None or not isinstance(model.annotation, type):
        return False
    return issubclass(model.annotation, BaseModel) and field in model.annotation.model_fields


def _with_file_secrets(env: dict[str, str]) -> dict[str, str]:
    """``LIAISON_X_FILE=/path`` stands for ``LIAISON_X=<contents of /path>``."""
    resolved = dict(env)
    for name, path in env.items():
        if name.startswith(ENV_PREFIX) and name.endswith("_FILE") and not _is_setting(name):
            try:
                resolved[name[: -len("_FILE")]] = Path(path).read_text().strip()
            except OSError as exc:
                raise ConfigError(f"{name}: cannot read {path}: {exc.strerror}") from None
            del resolved[name]
    return resolved


def _deep_merge(into: dict[str, Any], new: Mapping[str, Any]) -> None:
    for key, value in new.items():
        if isinstance(value, Mapping) and isinstance(into.get(key), dict):
            _deep_merge(into[key], value)
        else:
            into[key] = dict(value) if isinstance(value, Mapping) else value


def _describe(exc: ValidationError) -> str:
    lines = []
    for error in exc.errors():
        where = ".".join(str(part) for part in error["loc"])
        env_name = ENV_PREFIX + ENV_NESTING.join(str(p).upper() for p in error["loc"])
        message = error["msg"]
        if error["type"] == "extra_forbidden":
            message = "unknown setting"
        lines.append(f"{where} (env {env_name}): {message}")
    return "invalid configuration:\n  " + "\n  ".join(lines)


def _resolve_paths(settings: Settings, root: Path) -> Settings:
    """Relative paths in the defaults are relative to the project, not the working directory."""
    var_dir = settings.paths.var_dir
    if not var_dir.is_absolute():
        var_dir = root / var_dir
    url = settings.database.url
    prefix = "sqlite+aiosqlite:///"
    if url.startswith(prefix) and not url.startswith(prefix + "/") and ":memory:" not in url:
        url = prefix + str(root / url[len(prefix) :])
    key_file = settings.notes.key_file
    if not key_file.is_absolute():
        key_file = var_dir / key_file
    return settings.model_copy(
        update={
            "paths": settings.paths.model_copy(update={"var_dir": var_dir}),
            "database": settings.database.model_copy(update={"url": url}),
            "notes": settings.notes.model_copy(update={"key_file": key_file}),
        }
    )
