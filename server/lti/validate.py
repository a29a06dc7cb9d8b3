"""Checks on a platform's id_token (LTI 1.3 Core §5, Security Framework §5.1.3): signature by a
key of the platform's JWKS (server/accounts/jwks.py: cached, refetched on an unknown ``kid``, bounded), issuer,
audience, expiry, the nonce of our login, the deployment, message type and version."""
from __future__ import annotations

import json

import jwt

from server.accounts.jwks import JwksCache, KeyNotFound
from server.lti import claims as c
from server.lti.origins import origin_of


class LaunchRefused(Exception):
    """A launch that is not accepted; ``reason`` is shown on the error page."""

    def __init__(self, reason: str, status: int = 400) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status


class KeySets:
    """Platforms' key sets through the shared bounded cache (server/accounts/jwks.py): kept
    for their max-age (5 minutes without one), fetched again on an unknown ``kid`` (key
    rotation) at most once per JWKS_REFETCH_S per platform, a failed fetch keeps the keys held."""

    def __init__(self, cache: JwksCache | None = None) -> None:
        self.cache = cache or JwksCache()

    async def key_for(self, url: str, token: str):
        try:
            return await self.cache.key_for(url, token, ("RS256",))
        except KeyNotFound as e:
            if e.unavailable:
                raise LaunchRefused(f"the platform's key set could not be fetched: {e.reason}", 502) from None
            raise LaunchRefused(f"the id_token is not signed by a key of the platform: {e.reason}") from None


async def check_id_token(keys: KeySets, token: str, platform, nonce: str) -> dict:
    """The verified claims of ``token`` from ``platform`` for our login with ``nonce``."""
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError as e:
        raise LaunchRefused(f"the id_token is not a JWT: {e}") from None
    if header.get("alg") != "RS256":
        raise LaunchRefused("the id_token must be signed with RS256")
    signing_key = await keys.key_for(platform.key_set_url, token)
    try:
        claims = jwt.decode(token, signing_key.key, algorithms=["RS256"], audience=platform.client_id,
                            issuer=platform.issuer, leeway=10,
                            options={"require": ["exp", "iat", "iss", "aud", "sub", "nonce"]})
    except jwt.ExpiredSignatureError:
        raise LaunchRefused("the id_token has expired") from None
    except jwt.InvalidAudienceError:
        raise LaunchRefused("the id_token is not meant for this tool (audience)") from None
    except jwt.InvalidIssuerError:
        raise LaunchRefused("the id_token's issuer does not match the login") from None
    except jwt.PyJWTError as e:
        raise LaunchRefused(f"the id_token is not valid: {e}") from None
    aud = claims["aud"]
    if isinstance(aud, list) and len(aud) > 1 and claims.get("azp") != platform.client_id:
        raise LaunchRefused("the id_token's authorized party is not this tool")
    if claims["nonce"] != nonce:
        raise LaunchRefused("the id_token's nonce is not the one of this login (replayed?)")
    if claims.get(c.DEPLOYMENT_ID) not in json.loads(platform.deployment_ids):
        raise LaunchRefused("the deployment is not registered with Podium")
    kind = claims.get(c.MESSAGE_TYPE)
    if kind not in (c.RESOURCE_LINK_REQUEST, c.DEEP_LINKING_REQUEST):
        raise LaunchRefused("only resource link launches (LtiResourceLinkRequest) and Deep Linking "
                            "(LtiDeepLinkingRequest) are supported")
    if claims.get(c.VERSION) != "1.3.0":
        raise LaunchRefused("only LTI version 1.3.0 is supported")
    if kind == c.RESOURCE_LINK_REQUEST:
        link = claims.get(c.RESOURCE_LINK)
        if not isinstance(link, dict) or not link.get("id"):
            raise LaunchRefused("the launch has no resource link")
    else:
        settings = claims.get(c.DEEP_LINKING_SETTINGS)
        if not isinstance(settings, dict) or not isinstance(settings.get("deep_link_return_url"), str) \
                or origin_of(settings["deep_link_return_url"]) is None:
            raise LaunchRefused("the Deep Linking request has no deep_link_return_url")
    context = claims.get(c.CONTEXT)
    if not isinstance(context, dict) or not isinstance(context.get("id"), str) or not context["id"]:
        raise LaunchRefused("the launch has no course context")
    if not isinstance(claims["sub"], str) or not claims["sub"]:
        raise LaunchRefused("anonymous launches are not supported")
    return claims
