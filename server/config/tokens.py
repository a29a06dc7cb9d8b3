"""Tokens: the secret and public key that verify them, the accepted algorithms and claims, and
their lifetime. (An external identity provider's keys: identity_provider.py; the media workers'
own credential: workers.py.)"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from server.config.environment import ConfigError, Environment


@dataclass(frozen=True)
class TokenSettings:
    jwt_secret: str = ""
    jwt_public_key: str | None = None
    jwt_algorithms: tuple[str, ...] = ("HS256",)
    jwt_audience: str | None = None
    jwt_issuer: str | None = None
    token_ttl_s: int = 7 * 24 * 3600


def from_env(env: Environment) -> dict:
    """TokenSettings' fields from the environment; JWT_SECRET is a generated dev secret when
    unset, outside production. JWT_PUBLIC_KEY=@path reads the key from that file."""
    algorithms = env.items("JWT_ALGORITHMS") or None
    public_key = env.optional("JWT_PUBLIC_KEY")
    if public_key and public_key.startswith("@"):
        public_key = Path(public_key[1:]).read_text()
    jwt_secret = env.secret("JWT_SECRET", "jwt_secret")
    if algorithms is None:
        asymmetric = public_key or env.get("JWT_JWKS_URL")
        algorithms = ("HS256",) + (("RS256", "ES256") if asymmetric else ())
    if "none" in [a.lower() for a in algorithms]:
        raise ConfigError("JWT_ALGORITHMS may not contain 'none'")
    return dict(jwt_secret=jwt_secret, jwt_public_key=public_key, jwt_algorithms=algorithms,
                jwt_audience=env.optional("JWT_AUDIENCE"), jwt_issuer=env.optional("JWT_ISSUER"))
