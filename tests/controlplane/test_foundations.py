"""Settings, DSNs, secrets and durations: the small pieces everything stands on."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from controlplane.dsn import ConnInfo, redact
from controlplane.durations import parse_duration
from controlplane.errors import ConfigurationError, InvalidRequest
from controlplane.memory import default_shared_buffers, machine_memory
from controlplane.secretbox import SecretBox, read_or_create_secret_file
from controlplane.settings import NeonSettings, Settings, setting_docs


def test_settings_from_env_parses_and_rejects() -> None:
    settings = Settings.from_env(
        {
            "TENANTVEC_HOME": "/srv/tv",
            "TENANTVEC_PG_PORT": "6000",
            "TENANTVEC_PG_FSYNC": "off",
            "TENANTVEC_FAILPOINTS": "a, b",
            "TENANTVEC_PG_SHARED_BUFFERS": "2GB",
        }
    )
    assert settings.embedded.shared_buffers == "2GB"
    assert settings.home == Path("/srv/tv") and settings.embedded.port == 6000
    assert settings.embedded.fsync is False and settings.failpoints == {"a", "b"}
    for env in (
        {"TENANTVEC_PG_PORT": "70000"},
        {"TENANTVEC_PG_FSYNC": "maybe"},
        {"TENANTVEC_RETRY_SECONDS": "-1"},
        {"TENANTVEC_MIGRATE_CONCURRENCY": "x"},
        {"TENANTVEC_PG_SHARED_BUFFERS": "2 GB"},
        {"TENANTVEC_PG_SHARED_BUFFERS": "2G"},
        {"TENANTVEC_PG_SHARED_BUFFERS": "64kB"},
        {"TENANTVEC_PG_SHARED_BUFFERS": "0MB"},
        {"TENANTVEC_PG_SHARED_BUFFERS": "1GB; fsync=off"},
    ):
        with pytest.raises(ConfigurationError, match=next(iter(env))):
            Settings.from_env(env)


def test_shared_buffers_default_to_a_quarter_of_memory_within_bounds() -> None:
    megabytes = int(default_shared_buffers().removesuffix("MB"))
    quarter = machine_memory() // 4 >> 20
    assert megabytes == min(max(quarter, 128), 8192)
    assert Settings.from_env({}).embedded.shared_buffers == default_shared_buffers()


def test_every_setting_is_documented_in_readme() -> None:
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    for doc in setting_docs():
        assert doc.env in readme, f"{doc.env} is not documented in README.md"


def test_secrets_are_hidden_from_repr_and_display() -> None:
    key = Fernet.generate_key().decode()
    settings = Settings.from_env(
        {
            "TENANTVEC_SECRET_KEY": key,
            "TENANTVEC_CATALOG_URL": "postgresql://cat:hunter2-pw@db:5432/catalog",
        }
    )
    shown = settings.display_values()
    for text in (repr(settings), str(shown)):
        assert key not in text and "hunter2-pw" not in text
    assert shown["TENANTVEC_CATALOG_URL"] == "postgresql://cat:***@db:5432/catalog"
    assert shown["TENANTVEC_SECRET_KEY"] == "***"


def test_conninfo_round_trip_and_redaction() -> None:
    info = ConnInfo.parse("postgresql://acme:p%40ss:w0rd@db.example:6543/acme?sslmode=require")
    assert (info.user, info.password, info.host, info.port, info.dbname) == (
        "acme",
        "p@ss:w0rd",
        "db.example",
        6543,
        "acme",
    )
    assert ConnInfo.parse(info.dsn) == info
    assert "p@ss" not in str(info) and "p%40ss" not in info.redacted
    assert info.redacted == "postgresql://acme:***@db.example:6543/acme?sslmode=require"
    assert "w0rd" not in repr(info)
    socket = ConnInfo(host="/tmp/sock dir", port=5454, user="u", dbname="d", password="x")
    assert ConnInfo.parse(socket.dsn) == socket
    assert redact("host=h user=u password=topsecret") == "postgresql://u:***@h:5432/u"


@pytest.mark.parametrize("bad", ["not a dsn", "postgresql://", "host=h port=x user=u"])
def test_bad_dsns_are_invalid_requests(bad: str) -> None:
    with pytest.raises(InvalidRequest):
        ConnInfo.parse(bad)


def test_secret_box_encrypts_and_rotates(tmp_path: Path) -> None:
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    token = SecretBox([old]).encrypt("postgresql://u:Plaintext-Canary-7f3@h/d")
    # a long canary: a short one can turn up in random base64 by chance
    assert "Plaintext-Canary-7f3" not in token
    rotated = SecretBox.from_config(f"{new},{old}", tmp_path)
    assert rotated.decrypt(token) == "postgresql://u:Plaintext-Canary-7f3@h/d"
    with pytest.raises(ConfigurationError, match="cannot decrypt"):
        SecretBox([new]).decrypt(token)
    with pytest.raises(ConfigurationError, match="not a valid Fernet key"):
        SecretBox(["short"])


def test_key_file_is_private_and_stable(tmp_path: Path) -> None:
    first = SecretBox.from_config(None, tmp_path).encrypt("x")
    key_file = tmp_path / "secret.key"
    assert key_file.stat().st_mode & 0o777 == 0o600
    assert SecretBox.from_config(None, tmp_path).decrypt(first) == "x"
    key_file.chmod(0o644)
    with pytest.raises(ConfigurationError, match="readable by other users"):
        read_or_create_secret_file(key_file, lambda: "unused")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30m", timedelta(minutes=30)),
        ("1h30m", timedelta(hours=1, minutes=30)),
        ("7d", timedelta(days=7)),
        ("2w", timedelta(weeks=2)),
        ("45s", timedelta(seconds=45)),
    ],
)
def test_durations(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("bad", ["", "m", "10", "1.5h", "-1h", "0s", "1y", "99999d"])
def test_bad_durations(bad: str) -> None:
    with pytest.raises(InvalidRequest):
        parse_duration(bad)


def test_settings_come_in_groups_one_per_concern_each_read_and_checked_alone() -> None:
    settings = Settings.from_env(
        {
            "TENANTVEC_NEON_MODE": "branch",
            "TENANTVEC_NEON_TEMPLATE_PROJECT": "p-1",
            "TENANTVEC_ROUTE_TTL_SECONDS": "0.5",
            "TENANTVEC_EMBEDDER": "hash",
            "DOCKER_HOST": "tcp://engine:2375",
        }
    )
    assert (settings.neon.mode, settings.neon.template_project) == ("branch", "p-1")
    assert settings.routing.route_ttl_seconds == 0.5
    assert settings.embedding.default == "hash"
    assert settings.docker.host == "tcp://engine:2375"  # the alias Docker's tools read
    # A group is a value of its own: made, checked and replaced without the others.
    with pytest.raises(ConfigurationError, match="TENANTVEC_NEON_MODE"):
        NeonSettings(mode="cluster")
    with pytest.raises(ConfigurationError, match="TENANTVEC_MAX_CONNECTIONS_PER_SERVER"):
        settings.routing.replace(api_workers=500)
    moved = settings.replace(neon=settings.neon.replace(region="aws-eu-central-1"))
    assert moved.neon.mode == "branch" and moved.neon.region == "aws-eu-central-1"
    # Every variable is read by exactly one field of one group, and documented once.
    envs = [doc.env for doc in setting_docs()]
    assert len(envs) == len(set(envs))
    top = {f.name for f in dataclasses.fields(Settings) if "group" not in f.metadata}
    assert not {name for name in top if name.startswith(("neon_", "docker_", "pg_", "embed"))}
