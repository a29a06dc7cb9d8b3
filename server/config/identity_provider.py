"""An external identity provider (docs/SECURITY.md "External identity provider"): its tokens
verify with the RS256/ES256 keys of its JWKS (server/accounts/jwks.py) and name their user by
(iss, sub); its claims may set the name and the site role."""
from __future__ import annotations

from dataclasses import dataclass

from server.config.environment import ConfigError, Environment, has_scheme_and_host, split_list

SITE_ROLES = ("student", "instructor", "admin")
JWKS_ALGORITHMS = ("RS256", "ES256")


@dataclass(frozen=True)
class IdentityProviderSettings:
    jwt_jwks_url: str | None = None
    jwt_auto_provision: bool = False
    jwt_name_claim: str = "name"
    jwt_role_claim: str | None = None
    jwt_role_map: tuple[tuple[str, str], ...] = ()  # (claim value, site role)
    # Key sets (the IdP's and LTI platforms'): at most one fetch per set per jwks_refetch_s,
    # kept for the response's max-age clamped to [jwks_refetch_s, jwks_cache_max_s], or
    # jwks_cache_s without one.
    jwks_refetch_s: float = 10.0
    jwks_cache_s: float = 300.0
    jwks_cache_max_s: float = 86400.0


def role_map(value: str) -> tuple[tuple[str, str], ...]:
    """``JWT_ROLE_MAP``: comma-separated ``claim value=site role`` pairs."""
    pairs = []
    for item in split_list(value):
        claim_value, sep, role = item.rpartition("=")
        if not sep or not claim_value.strip() or role.strip() not in SITE_ROLES:
            raise ConfigError(f"JWT_ROLE_MAP: {item!r} is not 'claim value=student|instructor|admin'")
        pairs.append((claim_value.strip(), role.strip()))
    return tuple(pairs)


def from_env(env: Environment, public_key: str | None, algorithms: tuple[str, ...]) -> dict:
    """IdentityProviderSettings' fields (JWT_JWKS_URL and what goes with it), given the
    JWT_PUBLIC_KEY and JWT_ALGORITHMS in force."""
    url = env.optional("JWT_JWKS_URL")
    auto = env.flag("JWT_AUTO_PROVISION", False)
    role_claim = env.optional("JWT_ROLE_CLAIM")
    roles = role_map(env.get("JWT_ROLE_MAP", ""))
    refetch_s = env.real("JWKS_REFETCH_S", 10)
    cache_s = env.real("JWKS_CACHE_S", 300)
    cache_max_s = env.real("JWKS_CACHE_MAX_S", 86400)
    if not 0 < refetch_s <= cache_s <= cache_max_s:
        raise ConfigError("JWKS_REFETCH_S, JWKS_CACHE_S and JWKS_CACHE_MAX_S must be positive and in that order")
    if url is not None:
        if not has_scheme_and_host(url, ("http", "https")):
            raise ConfigError(f"JWT_JWKS_URL: {url!r} is not an http(s) URL")
        if public_key:
            raise ConfigError("set JWT_JWKS_URL or JWT_PUBLIC_KEY, not both")
        if not env.get("JWT_ISSUER") or not env.get("JWT_AUDIENCE"):
            raise ConfigError("JWT_JWKS_URL needs JWT_ISSUER and JWT_AUDIENCE (the provider's issuer, "
                              "and the audience its tokens for Podium carry)")
        odd = [a for a in algorithms if a != "HS256" and a not in JWKS_ALGORITHMS]
        if odd:
            raise ConfigError(f"JWT_ALGORITHMS with JWT_JWKS_URL: {', '.join(odd)} not supported (RS256, ES256)")
    elif auto or role_claim:
        raise ConfigError("JWT_AUTO_PROVISION and JWT_ROLE_CLAIM need JWT_JWKS_URL")
    if roles and not role_claim:
        raise ConfigError("JWT_ROLE_MAP needs JWT_ROLE_CLAIM")
    return dict(jwt_jwks_url=url, jwt_auto_provision=auto, jwt_name_claim=env.optional("JWT_NAME_CLAIM") or "name",
                jwt_role_claim=role_claim, jwt_role_map=roles, jwks_refetch_s=refetch_s,
                jwks_cache_s=cache_s, jwks_cache_max_s=cache_max_s)
