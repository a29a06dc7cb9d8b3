"""Configuration (server/config/): read once from the environment, safe dev defaults, refusals."""
from __future__ import annotations

import base64
import json
import stat

import pytest

from server.config import ConfigError, load_config, normalise_database_url
from tests.dbutil import test_database_url as configured_database_url

SECRET = "s" * 32


@pytest.mark.parametrize("url,expected", [
    ("postgres://u:p@db.example:5432/podium", "postgresql+asyncpg://u:p@db.example:5432/podium"),
    ("postgresql://u:p@db.example/podium?sslmode=require", "postgresql+asyncpg://u:p@db.example/podium?ssl=require"),
    ("postgres://u:p@h/d?sslmode=verify-full&application_name=x", "postgresql+asyncpg://u:p@h/d?ssl=verify-full&application_name=x"),
    ("postgresql+asyncpg://u@h/d?ssl=require&sslmode=disable", "postgresql+asyncpg://u@h/d?ssl=require"),
    ("postgresql+asyncpg://u@h/d", "postgresql+asyncpg://u@h/d"),
    ("sqlite:///data/podium.db", "sqlite+aiosqlite:///data/podium.db"),
    ("sqlite+aiosqlite:///x.db", "sqlite+aiosqlite:///x.db"),
])
def test_normalise_database_url(url, expected):
    """Heroku-style postgres:// and postgresql:// URLs become asyncpg URLs; sqlite:// becomes aiosqlite."""
    assert normalise_database_url(url) == expected


@pytest.mark.skipif(not (configured_database_url() or "").startswith("postgresql"), reason="needs PostgreSQL")
async def test_a_libpq_sslmode_url_connects():
    """DATABASE_URL as hosted PostgreSQL services hand it out (``postgres://…?sslmode=…``)
    connects: asyncpg refuses ``sslmode`` as a keyword ("unexpected keyword argument")."""
    from sqlalchemy import text

    from server.db.engine import Database
    url = configured_database_url().replace("postgresql+asyncpg://", "postgres://", 1) + "?sslmode=disable"
    db = Database(normalise_database_url(url))
    try:
        async with db.read() as s:
            assert (await s.execute(text("SELECT 1"))).scalar_one() == 1
    finally:
        await db.close()


def test_load_config_normalises_database_url(tmp_path):
    """DATABASE_URL from the environment is normalised by load_config."""
    cfg = load_config({"DATA_DIR": str(tmp_path), "JWT_SECRET": SECRET,
                       "DATABASE_URL": "postgres://u:p@h:5432/d"})
    assert cfg.database_url == "postgresql+asyncpg://u:p@h:5432/d" and not cfg.is_sqlite


def test_default_database_under_data_dir(tmp_path):
    """Without DATABASE_URL the database is an SQLite file inside DATA_DIR."""
    cfg = load_config({"DATA_DIR": str(tmp_path), "JWT_SECRET": SECRET})
    assert cfg.database_url == f"sqlite+aiosqlite:///{tmp_path.as_posix()}/podium.db" and cfg.is_sqlite


def test_dev_secrets_generated_once_and_persisted(tmp_path):
    """In dev, load_config generates a JWT secret on first start, stores it mode 0600 and reuses it."""
    data = tmp_path / "data"
    first = load_config({"DATA_DIR": str(data)})
    path = data / "secrets.json"
    assert path.exists()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    stored = json.loads(path.read_text())
    assert stored["jwt_secret"] == first.jwt_secret
    assert len(first.jwt_secret.encode()) >= 32
    second = load_config({"DATA_DIR": str(data)})
    assert second.jwt_secret == first.jwt_secret
    assert json.loads(path.read_text()) == stored
    other = load_config({"DATA_DIR": str(tmp_path / "elsewhere")})
    assert other.jwt_secret != first.jwt_secret


def test_explicit_jwt_secret_used_as_given(tmp_path):
    """A JWT_SECRET from the environment is used as given."""
    cfg = load_config({"DATA_DIR": str(tmp_path), "JWT_SECRET": SECRET})
    assert cfg.jwt_secret == SECRET


def test_production_requires_jwt_secret(tmp_path):
    """PODIUM_ENV=production without JWT_SECRET raises ConfigError and generates no dev secret."""
    with pytest.raises(ConfigError, match="JWT_SECRET"):
        load_config({"PODIUM_ENV": "production", "DATA_DIR": str(tmp_path)})
    assert not (tmp_path / "secrets.json").exists()
    cfg = load_config({"PODIUM_ENV": "production", "DATA_DIR": str(tmp_path), "JWT_SECRET": SECRET,
                       "SIGNING_KEYS": SIGNING_KEYS, "WORKER_SECRET": "w" * 32})
    assert cfg.production and cfg.jwt_secret == SECRET


SIGNING_KEYS = "k2:" + base64.b64encode(b"a" * 32).decode() + ",k1:" + base64.urlsafe_b64encode(b"b" * 40).decode()


def test_signing_keys(tmp_path):
    """SIGNING_KEYS parses in order (first signs); production requires it; malformed keys are a ConfigError; dev uses the persisted signing_key."""
    base = {"DATA_DIR": str(tmp_path), "JWT_SECRET": SECRET}
    cfg = load_config({**base, "SIGNING_KEYS": SIGNING_KEYS})
    assert cfg.signing_keys == (("k2", b"a" * 32), ("k1", b"b" * 40))
    with pytest.raises(ConfigError, match="SIGNING_KEYS"):
        load_config({**base, "PODIUM_ENV": "production"})
    with pytest.raises(ConfigError, match="32 bytes"):
        load_config({**base, "SIGNING_KEYS": "k:" + base64.b64encode(b"short").decode()})
    dev = load_config(base)
    stored = json.loads((tmp_path / "secrets.json").read_text())["signing_key"]
    assert dev.signing_keys == (("dev", stored.encode()),)
    assert dev.storage_url == f"file://{tmp_path.as_posix()}/files"


def test_file_limits_from_env(tmp_path):
    """FILE_MAX_MB_<CATEGORY> and FILE_EXTENSIONS_<CATEGORY> override defaults; an extension in two categories is refused."""
    base = {"DATA_DIR": str(tmp_path), "JWT_SECRET": SECRET}
    cfg = load_config({**base, "FILE_MAX_MB_IMAGE": "2", "FILE_EXTENSIONS_ARCHIVE": "zip"})
    assert cfg.file_limits["image"] == 2_000_000 and cfg.file_limits["video"] == 500_000_000
    assert cfg.file_extensions["archive"] == ("zip",)
    with pytest.raises(ConfigError, match="both"):
        load_config({**base, "FILE_EXTENSIONS_AUDIO": "mp3,png"})


@pytest.mark.parametrize("production", ["", "production"])
def test_short_jwt_secret_refused(tmp_path, production):
    """A JWT_SECRET under 32 bytes is refused in dev and in production."""
    with pytest.raises(ConfigError, match="32"):
        load_config({"PODIUM_ENV": production, "DATA_DIR": str(tmp_path), "JWT_SECRET": "s" * 31})


@pytest.mark.parametrize("algs", ["none", "HS256,none", "HS256, NONE"])
def test_none_algorithm_refused(tmp_path, algs):
    """`none` anywhere in JWT_ALGORITHMS (any case) is refused."""
    with pytest.raises(ConfigError, match="none"):
        load_config({"DATA_DIR": str(tmp_path), "JWT_SECRET": SECRET, "JWT_ALGORITHMS": algs})


def test_algorithm_defaults(tmp_path):
    """The default algorithm list is HS256 only; a JWT_PUBLIC_KEY adds RS256 and ES256; an explicit list wins."""
    base = {"DATA_DIR": str(tmp_path), "JWT_SECRET": SECRET}
    assert load_config(base).jwt_algorithms == ("HS256",)
    key = tmp_path / "lms.pem"
    key.write_text("-----BEGIN PUBLIC KEY-----\nabc\n-----END PUBLIC KEY-----\n")
    cfg = load_config(base | {"JWT_PUBLIC_KEY": f"@{key}"})
    assert cfg.jwt_algorithms == ("HS256", "RS256", "ES256")
    assert cfg.jwt_public_key == key.read_text()
    cfg = load_config(base | {"JWT_PUBLIC_KEY": "inline-pem", "JWT_ALGORITHMS": "RS256"})
    assert cfg.jwt_algorithms == ("RS256",) and cfg.jwt_public_key == "inline-pem"


def test_lists_flags_and_numbers(tmp_path):
    """ALLOWED_ORIGINS is a comma list, ALLOW_SIGNUP a flag, and a malformed number is a ConfigError."""
    base = {"DATA_DIR": str(tmp_path), "JWT_SECRET": SECRET}
    cfg = load_config(base | {"ALLOWED_ORIGINS": " https://a.example, ,https://b.example ",
                              "ALLOW_SIGNUP": "off", "PORT": "9001", "JWT_AUDIENCE": "podium"})
    assert cfg.allowed_origins == ("https://a.example", "https://b.example")
    assert cfg.allow_signup is False and cfg.port == 9001 and cfg.jwt_audience == "podium"
    assert load_config(base).allow_signup is True and load_config(base).jwt_audience is None
    with pytest.raises(ConfigError):
        load_config(base | {"PORT": "eighty"})


def test_a_call_rings_30_seconds_unless_configured(tmp_path):
    """A call rings someone 30 s before "no answer" (issue 19.1); RING_TIMEOUT_S changes it."""
    base = {"DATA_DIR": str(tmp_path), "JWT_SECRET": SECRET}
    assert load_config(base).ring_timeout_s == 30.0
    assert load_config(base | {"RING_TIMEOUT_S": "4"}).ring_timeout_s == 4.0


def test_worker_secret_generated_in_dev_required_in_production(tmp_path):
    """WORKER_SECRET: dev persists a generated one beside jwt_secret (the worker reads it there);
    production without it, one under 32 bytes or one equal to JWT_SECRET is a ConfigError."""
    dev = load_config({"DATA_DIR": str(tmp_path)})
    stored = json.loads((tmp_path / "secrets.json").read_text())
    assert stored["worker_secret"] == dev.worker_secret != dev.jwt_secret
    assert load_config({"DATA_DIR": str(tmp_path)}).worker_secret == dev.worker_secret
    prod = {"PODIUM_ENV": "production", "DATA_DIR": str(tmp_path / "p"), "JWT_SECRET": SECRET,
            "SIGNING_KEYS": SIGNING_KEYS}
    with pytest.raises(ConfigError, match="WORKER_SECRET"):
        load_config(prod)
    with pytest.raises(ConfigError, match="WORKER_SECRET"):
        load_config({**prod, "WORKER_SECRET": "w" * 31})
    with pytest.raises(ConfigError, match="WORKER_SECRET"):
        load_config({**prod, "WORKER_SECRET": SECRET})
    assert load_config({**prod, "WORKER_SECRET": "w" * 32}).worker_secret == "w" * 32
