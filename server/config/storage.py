"""Where stored bytes live (docs/FILES.md): a directory, or an S3-compatible bucket."""
from __future__ import annotations

from dataclasses import dataclass

from server.config.environment import ConfigError, Environment


@dataclass(frozen=True)
class StorageSettings:
    # An empty storage_url means ``file://<data_dir>/files`` (load_config always sets it).
    storage_url: str = ""
    # S3-compatible storage (STORAGE_URL=s3://bucket/prefix); None credentials mean botocore's
    # chain (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, instance roles).
    s3_endpoint_url: str | None = None
    s3_region: str = "us-east-1"
    s3_access_key_id: str | None = None
    s3_secret_access_key: str | None = None
    s3_addressing_style: str = "auto"


def from_env(env: Environment) -> dict:
    """StorageSettings' fields from the environment."""
    addressing_style = (env.get("S3_ADDRESSING_STYLE") or "auto").lower()
    if addressing_style not in ("auto", "path", "virtual"):
        raise ConfigError("S3_ADDRESSING_STYLE must be auto, path or virtual")
    return dict(
        storage_url=env.get("STORAGE_URL") or f"file://{env.data_dir.as_posix()}/files",
        s3_endpoint_url=env.optional("S3_ENDPOINT_URL"),
        s3_region=env.get("S3_REGION") or env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "us-east-1",
        s3_access_key_id=env.optional("S3_ACCESS_KEY_ID"),
        s3_secret_access_key=env.optional("S3_SECRET_ACCESS_KEY"),
        s3_addressing_style=addressing_style,
    )
