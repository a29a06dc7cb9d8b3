"""Tokens of an external identity provider (``JWT_JWKS_URL``; docs/SECURITY.md "External
identity provider").

An RS256/ES256 token verifies with a key of the provider's key set (server/accounts/jwks.py:
cached, fetched again on an unknown ``kid``, bounded), must be unexpired and already valid
(``exp`` required, ``nbf`` when present, 5 s leeway), issued by ``JWT_ISSUER`` and meant for
``JWT_AUDIENCE``. Its user is the one linked to its ``(iss, sub)`` (``external_identities``;
never matched by name or email); with ``JWT_AUTO_PROVISION`` an unknown identity gets a new
account, otherwise it is 401 until the provisioning API (server/provision/) links it.

Claims: ``JWT_NAME_CLAIM`` (default ``name``) sets the display name when it is present;
``JWT_ROLE_CLAIM`` (a string or a list of strings), through ``JWT_ROLE_MAP``, sets the site
role whenever the token carries it (the provider is then the authority for that role).
"""
from __future__ import annotations

import logging

import jwt
from sqlalchemy.exc import IntegrityError

from server.accounts.jwks import JwksCache, KeyNotFound
from server.config import JWKS_ALGORITHMS
from server.db import external as eq
from server.db import users as uq
from server.db.models import User
from server.kernel.errors import PodiumError, Unauthorized

log = logging.getLogger("podium.accounts")

_RANK = {"student": 0, "instructor": 1, "admin": 2}
MAX_SUBJECT_CHARS = 255


class ExternalTokens:
    def __init__(self, config, db, jwks: JwksCache) -> None:
        self.config, self.db, self.jwks = config, db, jwks
        self.algorithms = tuple(a for a in config.jwt_algorithms if a in JWKS_ALGORITHMS)
        # Without JWT_ROLE_MAP the claim's own values count, but only student and instructor:
        # admin must be mapped explicitly.
        self.role_map = dict(config.jwt_role_map) or {"student": "student", "instructor": "instructor"}

    def handles(self, token) -> bool:
        """Is ``token`` one for the provider (JWT_JWKS_URL set, an RS256/ES256 header)?"""
        if not self.config.jwt_jwks_url or not isinstance(token, str):
            return False
        try:
            return jwt.get_unverified_header(token).get("alg") in self.algorithms
        except jwt.PyJWTError:
            return False

    async def user(self, token: str) -> User:
        """The user row ``token`` speaks for (made or brought up to date by its claims)."""
        claims = await self.verify(token)
        return await self._user_for(claims)

    async def verify(self, token: str) -> dict:
        cfg = self.config
        try:
            key = await self.jwks.key_for(cfg.jwt_jwks_url, token, self.algorithms)
        except KeyNotFound as e:
            if e.unavailable:
                raise PodiumError("the identity provider's key set could not be fetched: try again shortly",
                                  "unavailable") from None
            raise Unauthorized(f"invalid token: {e.reason}") from None
        alg = jwt.get_unverified_header(token)["alg"]
        try:
            claims = jwt.decode(token, key.key, algorithms=[alg], audience=cfg.jwt_audience, issuer=cfg.jwt_issuer,
                                leeway=5, options={"require": ["exp", "iss", "aud", "sub"]})
        except jwt.ExpiredSignatureError:
            raise Unauthorized("the token has expired") from None
        except jwt.ImmatureSignatureError:
            raise Unauthorized("the token is not valid yet (nbf or iat in the future)") from None
        except jwt.InvalidIssuerError:
            raise Unauthorized(f"wrong issuer: tokens must be issued by {cfg.jwt_issuer}") from None
        except jwt.InvalidAudienceError:
            raise Unauthorized("wrong audience: the token is not meant for Podium (JWT_AUDIENCE)") from None
        except jwt.MissingRequiredClaimError as e:
            raise Unauthorized(f"the token has no {e.claim} claim") from None
        except jwt.InvalidSignatureError:
            raise Unauthorized("invalid token: the signature does not verify") from None
        except jwt.PyJWTError as e:
            raise Unauthorized(f"invalid token: {e}") from None
        sub = claims["sub"]
        if not isinstance(sub, str) or not sub or len(sub) > MAX_SUBJECT_CHARS:
            raise Unauthorized(f"the token's sub must be a string of 1-{MAX_SUBJECT_CHARS} characters")
        return claims

    # -- the user of a verified token -----------------------------------------------------------
    def _name(self, claims: dict) -> str | None:
        value = claims.get(self.config.jwt_name_claim)
        if isinstance(value, str) and value.strip():
            return value.strip()[:128]
        return None

    def _role(self, claims: dict) -> str | None:
        """The site role the role claim maps to (the highest of its values'), student when
        none of them maps; None without JWT_ROLE_CLAIM or when the token lacks the claim."""
        claim = self.config.jwt_role_claim
        if not claim or claim not in claims:
            return None
        value = claims[claim]
        values = [value] if isinstance(value, str) else [v for v in value if isinstance(v, str)] \
            if isinstance(value, list) else []
        roles = [self.role_map[v] for v in values if v in self.role_map]
        return max(roles, key=_RANK.__getitem__) if roles else "student"

    async def _user_for(self, claims: dict) -> User:
        issuer, sub = claims["iss"], claims["sub"]
        name, role = self._name(claims), self._role(claims)
        for attempt in range(3):
            async with self.db.read() as s:
                found = await eq.linked_user(s, issuer, sub)
            if found is not None:
                return await self._sync(found[0], name, role)
            if not self.config.jwt_auto_provision:
                raise Unauthorized("this identity is not linked to a Podium account (JWT_AUTO_PROVISION is off: "
                                   "an administrator or the LMS provisioning API must create it first)")
            try:
                async with self.db.write() as s:
                    user = await uq.create_user(s, eq.username_for(issuer, sub), name or "External user", None,
                                                role or "student")
                    await eq.link_user(s, issuer, sub, user.id)
                log.info("user %s created for the external identity %s of %s", user.id, sub, issuer)
                return user
            except IntegrityError:  # a concurrent first request of the same identity won
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    async def _sync(self, user: User, name: str | None, role: str | None) -> User:
        """Bring the row up to date with the token's name and role claims (a write only when
        they differ); a recorder account is never changed (it cannot sign in)."""
        if user.role == "recorder":
            return user
        if (name is None or name == user.display_name) and (role is None or role == user.role):
            return user
        async with self.db.write() as s:
            row = await uq.get_user(s, user.id)
            if row is None:
                raise Unauthorized("unknown user")
            if name is not None:
                row.display_name = name
            if role is not None and row.role != role:
                log.info("user %s: site role %s → %s from the identity provider's claim", row.id, row.role, role)
                row.role = role
            await s.flush()
            return row
