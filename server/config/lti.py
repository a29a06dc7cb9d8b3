"""LMS integration (docs/LMS.md): how often course rooms are synced with the LMS roster."""
from __future__ import annotations

from dataclasses import dataclass

from server.config.environment import Environment


@dataclass(frozen=True)
class LtiSettings:
    # LMS roster sync (server/lti/roster.py): every course room linked to an LMS with a roster
    # service is synced when its last sync is older than this (seconds; 0: only on launch and
    # on demand).
    lti_roster_sync_s: float = 6 * 3600.0


def from_env(env: Environment) -> dict:
    """LtiSettings' fields from the environment (a negative period counts as 0)."""
    return dict(lti_roster_sync_s=max(env.real("LTI_ROSTER_SYNC_S", 6 * 3600), 0.0))
