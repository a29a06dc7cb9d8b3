"""The worker's configuration (media_worker/config.py): where its credential comes from."""
from __future__ import annotations

import json

import jwt
import pytest

from media_worker.config import WorkerConfigError, load_worker_config

SECRET = "worker-secret-" + "w" * 40
JWT_SECRET = "jwt-secret-" + "j" * 40


def claims(config) -> dict:
    """The claims of the token ``config`` presents, verified with the worker secret."""
    return jwt.decode(config.current_token(), SECRET, algorithms=["HS256"])


def test_worker_secret_signs_the_token(tmp_path):
    """The token is signed with WORKER_SECRET (never JWT_SECRET) and named from WORKER_NAME."""
    cfg = load_worker_config({"WORKER_SECRET": SECRET, "JWT_SECRET": JWT_SECRET,
                              "WORKER_NAME": "Rec A", "DATA_DIR": str(tmp_path)})
    assert claims(cfg)["name"] == "Rec A"
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(cfg.current_token(), JWT_SECRET, algorithms=["HS256"])


def test_audience_and_issuer_come_from_the_environment(tmp_path):
    """JWT_AUDIENCE / JWT_ISSUER become the token's aud / iss, which the server checks."""
    cfg = load_worker_config({"WORKER_SECRET": SECRET, "JWT_AUDIENCE": "podium",
                              "JWT_ISSUER": "lms", "DATA_DIR": str(tmp_path)})
    got = jwt.decode(cfg.current_token(), SECRET, algorithms=["HS256"], audience="podium", issuer="lms")
    assert (got["aud"], got["iss"]) == ("podium", "lms")


def test_development_reads_worker_secret_from_the_data_dir(tmp_path):
    """In development the worker_secret of $DATA_DIR/secrets.json signs the token."""
    (tmp_path / "secrets.json").write_text(json.dumps({"jwt_secret": JWT_SECRET, "worker_secret": SECRET}))
    cfg = load_worker_config({"DATA_DIR": str(tmp_path)})
    assert claims(cfg)["sub"] == "worker"


def test_development_without_secrets_file_names_what_is_missing(tmp_path):
    """No credential and no worker_secret in secrets.json raises, naming WORKER_SECRET."""
    with pytest.raises(WorkerConfigError, match="WORKER_SECRET.*secrets.json"):
        load_worker_config({"DATA_DIR": str(tmp_path)})
    (tmp_path / "secrets.json").write_text(json.dumps({"jwt_secret": JWT_SECRET}))
    with pytest.raises(WorkerConfigError, match="WORKER_SECRET"):
        load_worker_config({"DATA_DIR": str(tmp_path), "JWT_SECRET": JWT_SECRET})


def test_production_without_worker_secret_raises(tmp_path):
    """Production without WORKER_SECRET raises, even with JWT_SECRET and a dev secrets file."""
    (tmp_path / "secrets.json").write_text(json.dumps({"worker_secret": SECRET}))
    with pytest.raises(WorkerConfigError, match="WORKER_SECRET"):
        load_worker_config({"PODIUM_ENV": "production", "JWT_SECRET": JWT_SECRET, "DATA_DIR": str(tmp_path)})


def test_production_accepts_a_secret_or_a_token(tmp_path):
    """In production WORKER_SECRET mints tokens and WORKER_TOKEN is presented as given."""
    prod = {"PODIUM_ENV": "production", "DATA_DIR": str(tmp_path)}
    assert claims(load_worker_config(prod | {"WORKER_SECRET": SECRET}))["role"] == "recorder"
    assert load_worker_config(prod | {"WORKER_TOKEN": "given.jwt.token"}).current_token() == "given.jwt.token"


def test_short_worker_secret_is_refused(tmp_path):
    """A WORKER_SECRET under 32 bytes (which the server refuses too) stops the worker at start."""
    with pytest.raises(WorkerConfigError, match="32 bytes"):
        load_worker_config({"WORKER_SECRET": "short", "DATA_DIR": str(tmp_path)})
