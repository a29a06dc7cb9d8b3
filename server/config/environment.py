"""The environment as typed values: each feature's settings are read through ``Environment``,
so a malformed number, flag, list or secret is refused the same way everywhere."""
from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlparse

from server.config.secrets_file import kept_secrets

MB = 1000 * 1000
# The dev secrets generated into DATA_DIR/secrets.json on first start.
DEV_SECRETS = ("jwt_secret", "signing_key", "worker_secret")

N = TypeVar("N", int, float)


class ConfigError(RuntimeError):
    """The environment does not describe a startable server."""


def split_list(value: str) -> list[str]:
    """Comma-separated items, stripped; empty items are dropped."""
    return [v.strip() for v in value.split(",") if v.strip()]


def has_scheme_and_host(url: str, schemes: tuple[str, ...]) -> bool:
    """``url`` has one of ``schemes`` and a host name."""
    parts = urlparse(url)
    return parts.scheme in schemes and bool(parts.hostname)


class Environment:
    """The variables of one ``load_config``. Numbers read through it raise ConfigError
    ("malformed number in environment: …") when they do not parse."""

    def __init__(self, values: Mapping[str, str]) -> None:
        self.values = dict(values)
        self.production = self.values.get("PODIUM_ENV", "").lower() == "production"
        self.data_dir = Path(self.values.get("DATA_DIR", "data"))

    def get(self, name: str, default: str | None = None) -> str | None:
        """The raw value (``default`` when unset)."""
        return self.values.get(name, default)

    def optional(self, name: str) -> str | None:
        """The value, or None when unset or empty."""
        return self.values.get(name) or None

    def items(self, name: str) -> tuple[str, ...]:
        """A comma-separated list (empty when unset)."""
        return tuple(split_list(self.values.get(name, "")))

    def flag(self, name: str, default: bool) -> bool:
        """``1``/``true``/``yes``/``on`` (any case) is true, anything else false; unset or
        empty is ``default``."""
        value = self.values.get(name)
        if value is None or value == "":
            return default
        return value.strip().lower() in ("1", "true", "yes", "on")

    def integer(self, name: str, default: int) -> int:
        return self._number(name, default, int)

    def real(self, name: str, default: float) -> float:
        return self._number(name, default, float)

    def megabytes(self, name: str, default: float) -> int:
        """A decimal number of megabytes (10⁶ bytes), in bytes."""
        return int(self._number(name, default, float) * MB)

    def _number(self, name: str, default: N, kind: Callable[[object], N]) -> N:
        raw = self.values.get(name)
        try:
            return kind(default if raw is None else raw)
        except ValueError as e:
            raise ConfigError(f"malformed number in environment: {e}") from None

    def secret(self, name: str, dev_name: str) -> str:
        """A secret of at least 32 bytes: the variable, or when it is unset or empty the dev
        secret ``dev_name`` (see ``dev_secret``)."""
        value = self.values.get(name, "") or self.dev_secret(name, dev_name)
        if len(value.encode()) < 32:
            raise ConfigError(f"{name} must be at least 32 bytes")
        return value

    def dev_secret(self, name: str, dev_name: str) -> str:
        """The generated secret ``dev_name`` of DATA_DIR/secrets.json, standing in for the
        unset variable ``name``; ConfigError with PODIUM_ENV=production."""
        if self.production:
            raise ConfigError(f"{name} is required when PODIUM_ENV=production")
        return kept_secrets(self.data_dir / "secrets.json", DEV_SECRETS, 48)[dev_name]
