from pathlib import Path

import pytest

from server.auth.roles import Role
from server.settings import ConfigError, load_settings


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_it_reads_the_embedded_defaults() -> None:
    settings = load_settings(environ={})
    assert settings.server.port == 8080
    assert settings.database.url.startswith("sqlite+aiosqlite:////")
    assert settings.database.url.endswith("/var/liaison.db")
    assert settings.sessions.idle_timeout_clinician_s == 900
    assert settings.sessions.absolute_lifetime_s == 12 * 3600


def test_a_config_file_overrides_the_defaults_and_env_overrides_the_file(tmp_path: Path) -> None:
    config = write(tmp_path / "site.toml", "[server]\nport = 9000\nhost = '0.0.0.0'\n")
    settings = load_settings(config, environ={"LIAISON_SERVER__PORT": "9100"})
    assert settings.server.port == 9100  # env beats file
    assert settings.server.host == "0.0.0.0"  # noqa: S104 - file beats defaults
    assert settings.server.public_url == "http://127.0.0.1:8080"  # defaults remain


def test_the_config_file_can_come_from_liaison_config(tmp_path: Path) -> None:
    config = write(tmp_path / "site.toml", "[logging]\nlevel = 'DEBUG'\n")
    settings = load_settings(environ={"LIAISON_CONFIG": str(config)})
    assert settings.logging.level == "DEBUG"


def test_lists_in_the_environment_are_parsed() -> None:
    settings = load_settings(environ={"LIAISON_SECURITY__TOTP_REQUIRED_ROLES": '["psychiatrist"]'})
    assert settings.security.totp_required_roles == [Role.PSYCHIATRIST]


def test_a_setting_can_be_read_from_a_file_named_by_an_env_var(tmp_path: Path) -> None:
    secret = write(tmp_path / "db-url", "postgresql+asyncpg://liaison:s3cret@db/liaison\n")
    settings = load_settings(environ={"LIAISON_DATABASE__URL_FILE": str(secret)})
    assert settings.database.url == "postgresql+asyncpg://liaison:s3cret@db/liaison"


def test_it_names_the_bad_setting_and_its_environment_variable() -> None:
    with pytest.raises(ConfigError) as error:
        load_settings(environ={"LIAISON_SERVER__PORT": "eighty"})
    assert "server.port" in str(error.value)
    assert "LIAISON_SERVER__PORT" in str(error.value)


def test_a_setting_whose_name_ends_in_file_is_set_by_its_own_variable(tmp_path: Path) -> None:
    # outbox.smtp_password_file names the file itself: its variable is not a "_FILE" secret.
    password = tmp_path / "smtp-password"
    password.write_text("not read at start")
    settings = load_settings(environ={"LIAISON_OUTBOX__SMTP_PASSWORD_FILE": str(password)})
    assert settings.outbox.smtp_password_file == password


def test_it_refuses_an_unknown_setting_in_a_file(tmp_path: Path) -> None:
    config = write(tmp_path / "site.toml", "[server]\nprot = 9000\n")
    with pytest.raises(ConfigError, match=r"server\.prot .*unknown setting"):
        load_settings(config, environ={})


def test_it_refuses_an_unknown_role_for_totp() -> None:
    with pytest.raises(ConfigError, match=r"security\.totp_required_roles"):
        load_settings(environ={"LIAISON_SECURITY__TOTP_REQUIRED_ROLES": '["surgeon"]'})


def test_it_refuses_a_synchronous_database_url() -> None:
    with pytest.raises(ConfigError, match=r"database\.url"):
        load_settings(environ={"LIAISON_DATABASE__URL": "sqlite:///x.db"})


def test_it_refuses_a_public_url_without_scheme() -> None:
    with pytest.raises(ConfigError, match=r"server\.public_url"):
        load_settings(environ={"LIAISON_SERVER__PUBLIC_URL": "liaison.example.org"})


@pytest.mark.parametrize("networks", ['["10.0.0.1/8"]', '["10.0.0.0/8", "prometheus.internal"]'])
def test_it_refuses_a_metrics_network_that_is_no_cidr(networks: str) -> None:
    with pytest.raises(ConfigError) as error:
        load_settings(environ={"LIAISON_METRICS__ALLOWED_NETWORKS": networks})
    assert "metrics.allowed_networks" in str(error.value)
    assert "LIAISON_METRICS__ALLOWED_NETWORKS" in str(error.value)
    assert "expected CIDRs" in str(error.value)


def test_it_refuses_a_metrics_network_in_a_config_file(tmp_path: Path) -> None:
    config = write(tmp_path / "liaison.toml", '[metrics]\nallowed_networks = ["10.0.0.1/8"]\n')
    with pytest.raises(ConfigError, match=r"metrics\.allowed_networks .*10\.0\.0\.1/8"):
        load_settings(config)


def test_it_reports_a_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_settings(tmp_path / "nope.toml", environ={})


def test_it_reports_a_file_that_is_not_toml(tmp_path: Path) -> None:
    config = write(tmp_path / "bad.toml", "[server\nport=1")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(config, environ={})


def test_it_reports_an_unreadable_secret_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="LIAISON_DATABASE__URL_FILE"):
        load_settings(environ={"LIAISON_DATABASE__URL_FILE": str(tmp_path / "missing")})


def test_tls_follows_the_public_url() -> None:
    settings = load_settings(environ={"LIAISON_SERVER__PUBLIC_URL": "https://liaison.example.org/"})
    assert settings.server.tls
    assert settings.server.origins == frozenset({"https://liaison.example.org"})


def test_the_production_example_documents_only_real_settings() -> None:
    example = Path(__file__).resolve().parents[2] / "config" / "production.example.toml"
    settings = load_settings(example, environ={})
    assert settings.server.public_url.startswith("https://")
