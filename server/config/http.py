"""HTTP and browsers: the origins that may call the API, the public URL, a reverse proxy in
front, and the bound on a JSON request body."""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from urllib.parse import urlparse

from server.config.environment import ConfigError, Environment, split_list


@dataclass(frozen=True)
class HttpSettings:
    allowed_origins: tuple[str, ...] = ()
    public_url: str | None = None
    # Behind a reverse proxy (docs/DEPLOYMENT.md, server/http/proxy.py): the client address and
    # scheme come from X-Forwarded-For / X-Forwarded-Proto; with TRUSTED_PROXIES only on
    # connections from those networks. Off: the headers are ignored.
    proxy_headers: bool = False
    trusted_proxies: tuple[str, ...] = ()
    # A request body read whole (every endpoint but the streamed uploads): 413 beyond it,
    # answered before the body is read (server/http/base.py).
    max_json_body_bytes: int = 1024 * 1024

    def origin_allowed(self, origin: str, host: str) -> bool:
        """A browser origin may call the API and open /ws: the same host, or listed in
        ALLOWED_ORIGINS (``*`` allows any)."""
        if origin in self.allowed_origins or "*" in self.allowed_origins:
            return True
        return urlparse(origin).netloc.lower() == host.lower()


def networks(value: str) -> tuple[str, ...]:
    """``TRUSTED_PROXIES``: comma-separated IP addresses or CIDR networks, normalised."""
    found = []
    for item in split_list(value):
        try:
            found.append(str(ipaddress.ip_network(item, strict=False)))
        except ValueError:
            raise ConfigError(f"TRUSTED_PROXIES: {item!r} is not an IP address or CIDR network") from None
    return tuple(found)


def from_env(env: Environment) -> dict:
    """HttpSettings' fields from the environment."""
    proxy_headers = env.flag("PROXY_HEADERS", False)
    trusted_proxies = networks(env.get("TRUSTED_PROXIES", ""))
    if trusted_proxies and not proxy_headers:
        raise ConfigError("TRUSTED_PROXIES is set but PROXY_HEADERS is off: set PROXY_HEADERS=1 too")
    return dict(allowed_origins=env.items("ALLOWED_ORIGINS"), public_url=env.optional("PUBLIC_URL"),
                proxy_headers=proxy_headers, trusted_proxies=trusted_proxies)
