"""Live calls (PROTOCOL §2.2, docs/CALLS.md): the ICE and TURN servers browsers use, and how
long a call rings, waits for an instructor, and keeps a dropped SFU participant."""
from __future__ import annotations

import json
from dataclasses import dataclass

from server.config.environment import ConfigError, Environment, split_list


@dataclass(frozen=True)
class CallSettings:
    ice_servers: tuple[dict, ...] = ()
    turn_secret: str | None = None
    turn_urls: tuple[str, ...] = ()
    turn_ttl_s: int = 3600
    call_end_without_instructor: bool = True
    call_end_grace_s: float = 60.0
    # SFU calls: how long a participant whose socket dropped keeps its Janus session (its
    # camera and microphone keep flowing) for a rejoin with its resume token; at most Janus's
    # reclaim_session_timeout (30 s) so a restarted web process can still claim it.
    call_resume_grace_s: float = 20.0
    # How long a call rings someone before the caller hears "no answer" (calls/ringing.py).
    ring_timeout_s: float = 30.0


def ice_servers(value: str) -> tuple[dict, ...]:
    """``ICE_SERVERS``: a JSON list of RTCIceServer objects, or comma-separated URLs."""
    value = value.strip()
    if not value:
        return ()
    if value.startswith("["):
        try:
            servers = json.loads(value)
        except ValueError as e:
            raise ConfigError(f"ICE_SERVERS is not valid JSON: {e}") from None
        if not isinstance(servers, list) or not all(isinstance(s, dict) and "urls" in s for s in servers):
            raise ConfigError("ICE_SERVERS must be a list of objects with 'urls'")
        return tuple(servers)
    return tuple({"urls": [u]} for u in split_list(value))


def from_env(env: Environment) -> dict:
    """CallSettings' fields from the environment."""
    return dict(
        ice_servers=ice_servers(env.get("ICE_SERVERS", "")),
        turn_secret=env.optional("TURN_SECRET"),
        turn_urls=env.items("TURN_URLS"),
        turn_ttl_s=env.integer("TURN_TTL_S", 3600),
        call_end_without_instructor=env.flag("CALL_END_WITHOUT_INSTRUCTOR", True),
        call_end_grace_s=env.real("CALL_END_GRACE_S", 60),
        call_resume_grace_s=env.real("CALL_RESUME_GRACE_S", 20),
        ring_timeout_s=env.real("RING_TIMEOUT_S", 30),
    )
