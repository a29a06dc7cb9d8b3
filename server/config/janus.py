"""Media routing through Janus (docs/CALLS.md "Media through Janus"): the Janus WebSocket API
URLs (none: every call is a mesh), its api_secret, the VideoRoom admin_key when rooms are
locked, and when a Janus that stays unreachable fails over."""
from __future__ import annotations

from dataclasses import dataclass

from server.config.environment import ConfigError, Environment, has_scheme_and_host, split_list


@dataclass(frozen=True)
class JanusSettings:
    janus_urls: tuple[str, ...] = ()
    janus_api_secret: str | None = None
    janus_admin_key: str | None = None
    # Several Janus: a Janus whose connection stays down this long fails over (its sessions are
    # placed on another live one and their participants start again; docs/CALLS.md).
    janus_failover_grace_s: float = 3.0


def janus_urls(value: str) -> tuple[str, ...]:
    """``JANUS_URLS`` (or ``JANUS_URL``): comma-separated ``ws://`` / ``wss://`` URLs of Janus's
    WebSocket API."""
    urls = tuple(split_list(value))
    for url in urls:
        if not has_scheme_and_host(url, ("ws", "wss")):
            raise ConfigError(f"JANUS_URLS: {url!r} is not a ws:// or wss:// URL")
    return urls


def from_env(env: Environment) -> dict:
    """JanusSettings' fields from the environment; production needs JANUS_API_SECRET with Janus."""
    urls = janus_urls(env.get("JANUS_URLS") or env.get("JANUS_URL") or "")
    if urls and env.production and not env.get("JANUS_API_SECRET"):
        raise ConfigError("JANUS_API_SECRET is required with JANUS_URL(S) when PODIUM_ENV=production")
    return dict(janus_urls=urls, janus_api_secret=env.optional("JANUS_API_SECRET"),
                janus_admin_key=env.optional("JANUS_ADMIN_KEY"),
                janus_failover_grace_s=env.real("JANUS_FAILOVER_GRACE_S", 3))
