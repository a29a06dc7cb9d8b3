"""Calls to an LMS's LTI Advantage services (IMS Security Framework §4): an OAuth 2 access
token by the client-credentials grant with a JWT assertion signed by the tool key (cached per
platform and scopes until a minute before it expires), and JSON requests with that token."""
from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass
from urllib.parse import urlencode

import jwt
from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest

from server.lti import keys

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
NRPS_SCOPE = "https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly"
AGS_LINEITEM = "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem"
AGS_SCORE = "https://purl.imsglobal.org/spec/lti-ags/scope/score"
TIMEOUT_S = 15.0


class ServiceError(Exception):
    """An LMS service call that did not work; ``reason`` says what, for logs and the user."""

    def __init__(self, reason: str, status: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status  # the LMS's HTTP status, when it answered one


@dataclass(frozen=True)
class Reply:
    status: int
    headers: object  # tornado.httputil.HTTPHeaders
    body: object

    def next_link(self) -> str | None:
        """The ``Link: <url>; rel="next"`` target (NRPS §2.4.1 paging), if any."""
        for value in self.headers.get_list("Link"):
            for part in value.split(","):
                url, _, params = part.strip().partition(";")
                rels = [p.strip().split("=", 1)[1].strip('"').split() for p in params.split(";")
                        if p.strip().lower().startswith("rel=")]
                if url.startswith("<") and url.endswith(">") and any("next" in r for r in rels):
                    return url[1:-1]
        return None


class AccessTokens:
    def __init__(self, tool_key) -> None:
        self._tool_key = tool_key  # () -> the tool's RSA private key
        self._cache: dict[tuple[int, str], tuple[str, float]] = {}

    def assertion(self, platform) -> str:
        """The client assertion: issued by and about the client id, for the token URL."""
        now = int(time.time())
        key = self._tool_key()
        return jwt.encode({"iss": platform.client_id, "sub": platform.client_id, "aud": platform.token_url,
                           "iat": now, "exp": now + 300, "jti": secrets.token_urlsafe(24)},
                          key, algorithm="RS256", headers={"kid": keys.kid_of(key)})

    async def token(self, platform, scopes: list[str]) -> str:
        scope = " ".join(sorted(scopes))
        cached = self._cache.get((platform.id, scope))
        if cached and cached[1] > time.monotonic():
            return cached[0]
        body = urlencode({"grant_type": "client_credentials", "client_assertion_type": ASSERTION_TYPE,
                          "client_assertion": self.assertion(platform), "scope": scope})
        reply = await fetch("POST", platform.token_url, None, "application/json", body.encode(),
                            "application/x-www-form-urlencoded", what="the access token request")
        answer = reply.body if isinstance(reply.body, dict) else {}
        token = answer.get("access_token")
        if not isinstance(token, str) or not token:
            raise ServiceError("the LMS's token endpoint answered no access_token")
        granted = answer.get("scope")
        if isinstance(granted, str) and granted and not set(scopes) & set(granted.split()):
            raise ServiceError(f"the LMS granted none of the scopes asked for ({scope}): enable them for Podium")
        expires_in = answer.get("expires_in") if isinstance(answer.get("expires_in"), (int, float)) else 3600
        self._cache[(platform.id, scope)] = (token, time.monotonic() + max(float(expires_in) - 60, 0))
        return token


async def fetch(method: str, url: str, token: str | None, accept: str, body: bytes | None = None,
                content_type: str | None = None, what: str = "the LMS service") -> Reply:
    """One request; the JSON answer (None for an empty one). ServiceError for a refusal, a
    network failure or an answer that is not JSON."""
    headers = {"Accept": accept}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    if content_type:
        headers["Content-Type"] = content_type
    req = HTTPRequest(url, method=method, headers=headers, body=body, request_timeout=TIMEOUT_S,
                      follow_redirects=False)
    try:
        resp = await AsyncHTTPClient().fetch(req, raise_error=False)
    except (OSError, HTTPClientError) as e:
        raise ServiceError(f"{what} failed: {e}") from None
    if resp.code == 599:
        raise ServiceError(f"{what} failed: {resp.error}")
    if resp.code >= 300:
        text = (resp.body or b"")[:200].decode("utf-8", "replace")
        raise ServiceError(f"{what} was refused: HTTP {resp.code} {text}".strip(), resp.code)
    try:
        data = json.loads(resp.body) if resp.body else None
    except ValueError:
        raise ServiceError(f"{what} answered something that is not JSON") from None
    return Reply(resp.code, resp.headers, data)
