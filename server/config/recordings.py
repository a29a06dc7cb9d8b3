"""Recording (docs/RECORDING.md): how long a start may take, how long a worker may be silent,
the largest asset, and how long finished recordings are kept."""
from __future__ import annotations

from dataclasses import dataclass

from server.config.environment import MB, Environment


@dataclass(frozen=True)
class RecordingSettings:
    recording_start_timeout_s: float = 30.0
    recording_worker_grace_s: float = 30.0
    recording_max_asset_bytes: int = 8000 * MB
    # Finished recordings older than this many days are deleted daily (0: kept).
    recording_retention_days: int = 0


def from_env(env: Environment) -> dict:
    """RecordingSettings' fields from the environment."""
    return dict(
        recording_start_timeout_s=env.real("RECORDING_START_TIMEOUT_S", 30),
        recording_worker_grace_s=env.real("RECORDING_WORKER_GRACE_S", 30),
        recording_max_asset_bytes=env.megabytes("RECORDING_MAX_ASSET_MB", 8000),
        recording_retention_days=env.integer("RECORDING_RETENTION_DAYS", 0),
    )
