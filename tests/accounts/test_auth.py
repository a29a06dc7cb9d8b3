"""Identity (PROTOCOL §1): JWT verification on HTTP and /ws, sign-up and login, Origin and CORS."""
from __future__ import annotations

import asyncio
import base64
import functools
import hashlib
import hmac
import json
import time

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest
from tornado.websocket import websocket_connect

from server.accounts.passwords import verify_password
from server.db import users as uq
from tests.conftest import JWT_SECRET
from tests.wsclient import ProtocolError, WsClient

AUDIENCE = "podium-tests"
ISSUER = "https://lms.example"


# -- keys ------------------------------------------------------------------------------------
@functools.lru_cache(maxsize=None)
def rsa_key(which: str = "lms") -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@functools.lru_cache(maxsize=None)
def ec_key(which: str = "lms") -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def public_pem(key) -> str:
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def private_pem(key) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


# -- token builders --------------------------------------------------------------------------
def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def claims_for(user: dict, **changes) -> dict:
    """Claims the module's server accepts; ``changes`` overrides (``None`` deletes a claim)."""
    now = int(time.time())
    claims = {"sub": user["id"], "name": user["display_name"], "role": user["role"], "iat": now,
              "exp": now + 600, "aud": AUDIENCE, "iss": ISSUER}
    for k, v in changes.items():
        if v is None:
            claims.pop(k, None)
        else:
            claims[k] = v
    return claims


def hs_token_raw(claims: dict, key: bytes) -> str:
    """An HS256 token signed by hand (PyJWT refuses PEM text as an HMAC key)."""
    head = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    body = _b64(json.dumps(claims).encode())
    sig = hmac.new(key, f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{_b64(sig)}"


def none_token(claims: dict) -> str:
    head = _b64(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    return f"{head}.{_b64(json.dumps(claims).encode())}."


def good(user):
    return jwt.encode(claims_for(user), JWT_SECRET, algorithm="HS256")


BAD_TOKENS = {
    "alg_none": lambda u: none_token(claims_for(u)),
    "wrong_hmac_key": lambda u: jwt.encode(claims_for(u), "another-secret-" + "x" * 40, algorithm="HS256"),
    "wrong_rsa_key": lambda u: jwt.encode(claims_for(u), private_pem(rsa_key("attacker")), algorithm="RS256"),
    "expired": lambda u: jwt.encode(claims_for(u, exp=int(time.time()) - 120), JWT_SECRET, algorithm="HS256"),
    "missing_exp": lambda u: jwt.encode(claims_for(u, exp=None), JWT_SECRET, algorithm="HS256"),
    "hs256_with_public_key": lambda u: hs_token_raw(claims_for(u), public_pem(rsa_key()).encode()),
    "wrong_aud": lambda u: jwt.encode(claims_for(u, aud="someone-else"), JWT_SECRET, algorithm="HS256"),
    "missing_aud": lambda u: jwt.encode(claims_for(u, aud=None), JWT_SECRET, algorithm="HS256"),
    "wrong_iss": lambda u: jwt.encode(claims_for(u, iss="https://evil.example"), JWT_SECRET, algorithm="HS256"),
    "tampered_payload": lambda u: _tamper(jwt.encode(claims_for(u), JWT_SECRET, algorithm="HS256")),
    "unknown_user": lambda u: jwt.encode(claims_for(u, sub="999999"), JWT_SECRET, algorithm="HS256"),
    "garbage": lambda u: "not-a-jwt",
}


def _tamper(token: str) -> str:
    head, body, sig = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    claims["role"] = "admin"
    return f"{head}.{_b64(json.dumps(claims).encode())}.{sig}"


@pytest.fixture
def config_overrides():
    """RS256 with an LMS public key next to HS256, and aud/iss checked."""
    return {"jwt_public_key": public_pem(rsa_key()), "jwt_algorithms": ("HS256", "RS256"),
            "jwt_audience": AUDIENCE, "jwt_issuer": ISSUER}


# -- transports ------------------------------------------------------------------------------
async def try_token(server, transport: str, token: str) -> tuple[bool, object]:
    """Present ``token`` over ``transport``; return ``(accepted, detail)``.

    detail: the HTTP status for ``http``; the close code (or the hello) for the sockets.
    """
    if transport == "http":
        status, body = await server.http("GET", "/api/me", token)
        if status != 200:
            assert body["error"]["code"] == "unauthorized", body
        return status == 200, status
    c = await server.client(token, first_frame_auth=(transport == "ws_frame"), wait_hello=False)
    hello = asyncio.ensure_future(c.next_event("hello"))
    closed = asyncio.ensure_future(c.wait_closed(timeout=5))
    done, _ = await asyncio.wait({hello, closed}, return_when=asyncio.FIRST_COMPLETED)
    if hello in done:
        closed.cancel()
        return True, hello.result()
    hello.cancel()
    return False, closed.result()


TRANSPORTS = ["http", "ws_query", "ws_frame"]


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("bad", list(BAD_TOKENS))
async def test_bad_token_rejected(server, bad, transport):
    """A forged, expired, mis-addressed or otherwise invalid JWT gets 401 on HTTP and close 4401 on /ws."""
    user, _ = await server.user("ana")
    accepted, detail = await try_token(server, transport, BAD_TOKENS[bad](user))
    assert not accepted
    assert detail == (401 if transport == "http" else 4401)


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_well_formed_token_accepted(server, transport):
    """The same claims correctly signed (HS256 with JWT_SECRET, right aud/iss) are accepted on every transport."""
    user, _ = await server.user("ana")
    accepted, detail = await try_token(server, transport, good(user))
    assert accepted, detail
    if transport != "http":
        assert detail["user"]["id"] == user["id"] and detail["connection_id"]


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_rs256_lms_token_accepted(server, transport):
    """An RS256 token signed by the LMS private key verifies against JWT_PUBLIC_KEY."""
    user, _ = await server.user("ana", "instructor")
    token = jwt.encode(claims_for(user), private_pem(rsa_key()), algorithm="RS256")
    accepted, detail = await try_token(server, transport, token)
    assert accepted, detail
    if transport == "http":
        status, body = await server.http("GET", "/api/me", token)
        assert body["user"]["id"] == user["id"]


@pytest.mark.parametrize("config_overrides", [{
    "jwt_public_key": public_pem(ec_key()), "jwt_algorithms": ("ES256",),
    "jwt_audience": AUDIENCE, "jwt_issuer": ISSUER}])
@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_es256_lms_token_accepted(server, transport):
    """An ES256 token signed by the LMS EC key verifies against an EC JWT_PUBLIC_KEY."""
    user, _ = await server.user("ana")
    token = jwt.encode(claims_for(user), private_pem(ec_key()), algorithm="ES256")
    accepted, detail = await try_token(server, transport, token)
    assert accepted, detail


@pytest.mark.parametrize("config_overrides", [{
    "jwt_public_key": public_pem(ec_key()), "jwt_algorithms": ("ES256",)}])
async def test_algorithm_outside_configured_list_rejected(server):
    """With only ES256 configured, a correctly signed HS256 token is refused: the list comes from config."""
    user, _ = await server.user("ana")
    token = jwt.encode(claims_for(user, aud=None, iss=None), JWT_SECRET, algorithm="HS256")
    status, body = await server.http("GET", "/api/me", token)
    assert status == 401 and body["error"]["code"] == "unauthorized"


@pytest.mark.parametrize("config_overrides", [{"jwt_algorithms": ("HS256", "RS256")}])
async def test_rs256_without_public_key_rejected(server):
    """RS256 in the list but no JWT_PUBLIC_KEY: an RS256 token cannot be verified and is refused."""
    user, _ = await server.user("ana")
    token = jwt.encode(claims_for(user, aud=None, iss=None), private_pem(rsa_key()), algorithm="RS256")
    status, _ = await server.http("GET", "/api/me", token)
    assert status == 401


# -- socket auth details ---------------------------------------------------------------------
@pytest.mark.parametrize("config_overrides", [{"auth_timeout_s": 1.5}])
async def test_auth_timeout_closes_4401(server):
    """A socket that never authenticates is closed with 4401 after auth_timeout_s."""
    c = await server.client(None)
    started = time.monotonic()
    assert await c.wait_closed(timeout=10) == 4401
    assert time.monotonic() - started < 6


@pytest.mark.parametrize("config_overrides", [{"auth_timeout_s": 1.5}])
async def test_first_frame_auth_cancels_timeout(server):
    """A socket that authenticates by first frame is not closed when the auth timeout passes.
    (A 1.5 s timeout: the auth frame must reach the server within it, even under CI load.)"""
    _, tok = await server.user("ana")
    c = await server.client(tok, first_frame_auth=True)
    await asyncio.sleep(2.0)
    assert not c.closed.is_set()
    assert await c.request("presence.status", status="away") == {"status": "away"}


async def test_frame_before_auth_is_unauthorized(server):
    """A request sent before authenticating gets an `unauthorized` error and the socket may still authenticate."""
    user, tok = await server.user("ana")
    c = await server.client(None)
    with pytest.raises(ProtocolError) as err:
        await c.request("room.join", room="1")
    assert err.value.code == "unauthorized"
    ack = await c.request("auth", token=tok)
    assert ack["user"]["id"] == user["id"]
    assert (await c.next_event("hello"))["user"]["id"] == user["id"]


async def test_auth_frame_after_auth_is_bad_request(server):
    """Once authenticated, another `auth` frame is a bad request and the socket stays open."""
    _, tok = await server.user("ana")
    c = await server.client(tok)
    with pytest.raises(ProtocolError) as err:
        await c.request("auth", token=tok)
    assert err.value.code == "bad_request"
    assert await c.request("presence.status", status="busy") == {"status": "busy"}


# -- register / login / me -------------------------------------------------------------------
async def test_register_returns_token_and_stores_scrypt_hash(server):
    """Register answers 201 {token, user}, the token works, and the password is stored as scrypt, not plaintext."""
    await server.user("existing")  # not the first account (that one is the site's admin)
    status, body = await server.http("POST", "/api/auth/register", None,
                                     {"username": "Carla", "password": "correct horse", "display_name": "Carla C"})
    assert status == 201, body
    assert body["user"] == {"id": body["user"]["id"], "username": "carla", "display_name": "Carla C",
                            "role": "student", "avatar": None}
    status, me = await server.http("GET", "/api/me", body["token"])
    assert status == 200 and me["user"] == body["user"]
    async with server.deps.db.read() as s:
        row = await uq.get_user_by_username(s, "carla")
    assert row.password_hash.startswith("scrypt$")
    assert "correct horse" not in row.password_hash
    assert verify_password("correct horse", row.password_hash)
    assert not verify_password("wrong horse", row.password_hash)


async def test_register_duplicate_username_409(server):
    """Registering a taken username (case-insensitively) answers 409 conflict."""
    await server.user("dave")
    status, body = await server.http("POST", "/api/auth/register", None,
                                     {"username": "Dave", "password": "violet-ladder-42"})
    assert status == 409 and body["error"]["code"] == "conflict"


@pytest.mark.parametrize("payload", [
    {"username": "erin", "password": "short"},
    {"username": "erin"},
    {"username": "x", "password": "violet-ladder-42"},
    {"username": "bad name!", "password": "violet-ladder-42"},
    {"username": "erin", "password": "violet-ladder-42", "role": "admin"},
    {"username": "erin\n", "password": "violet-ladder-42"},
    {"username": " erin", "password": "violet-ladder-42"},
    {"username": "erin", "password": "violet-ladder-42", "display_name": "   "},
])
async def test_register_rejects_bad_input_400(server, payload):
    """A short password, a malformed username (even by one trailing newline) or a self-granted admin role is a 400 and creates no user."""
    status, body = await server.http("POST", "/api/auth/register", None, payload)
    assert status == 400 and body["error"]["code"] == "bad_request"
    async with server.deps.db.read() as s:
        assert await uq.search_users(s, "", 50) == []


@pytest.mark.parametrize("config_overrides", [{"allow_signup": False}])
async def test_register_disabled_403(server):
    """With ALLOW_SIGNUP off, register answers 403 forbidden."""
    status, body = await server.http("POST", "/api/auth/register", None,
                                     {"username": "frank", "password": "violet-ladder-42"})
    assert status == 403 and body["error"]["code"] == "forbidden"


async def test_login_ok(server):
    """Login with the right password answers {token, user} and the token authenticates /api/me."""
    user, _ = await server.user("gina", "instructor")
    status, body = await server.http("POST", "/api/auth/login", None, {"username": "Gina", "password": "password1"})
    assert status == 200 and body["user"] == user | {"avatar": None}
    status, me = await server.http("GET", "/api/me", body["token"])
    assert status == 200 and me["user"] == body["user"]


@pytest.mark.parametrize("username,password", [("gina", "password2"), ("nobody", "password1")])
async def test_login_wrong_credentials_401(server, username, password):
    """A wrong password and an unknown user both answer 401 with the same reason (no user probing)."""
    await server.user("gina")
    status, body = await server.http("POST", "/api/auth/login", None, {"username": username, "password": password})
    assert status == 401
    assert body["error"] == {"code": "unauthorized", "reason": "wrong username or password"}


async def test_me_requires_bearer_token(server):
    """/api/me without a bearer token is 401 with a WWW-Authenticate challenge."""
    resp = await AsyncHTTPClient().fetch(server.base_url + "/api/me", raise_error=False)
    assert resp.code == 401
    assert resp.headers["WWW-Authenticate"].startswith("Bearer")
    assert json.loads(resp.body)["error"]["code"] == "unauthorized"


# -- Origin and CORS -------------------------------------------------------------------------
async def ws_with_origin(server, origin: str, token: str) -> WsClient:
    req = HTTPRequest(f"{server.ws_url}?token={token}", headers={"Origin": origin})
    c = WsClient(await websocket_connect(req))
    server.clients.append(c)
    return c


@pytest.mark.parametrize("config_overrides", [{"allowed_origins": ("https://lms.example",)}])
async def test_ws_foreign_origin_rejected(server):
    """A /ws handshake from a foreign Origin is refused with 403 (cross-site WebSocket hijacking)."""
    _, tok = await server.user("ana")
    with pytest.raises(HTTPClientError) as err:
        await ws_with_origin(server, "https://evil.example", tok)
    assert err.value.code == 403


@pytest.mark.parametrize("config_overrides", [{"allowed_origins": ("https://lms.example",)}])
@pytest.mark.parametrize("origin", ["same-host", "https://lms.example"])
async def test_ws_allowed_origin_accepted(server, origin):
    """A /ws handshake from the server's own host or from an ALLOWED_ORIGINS entry is accepted."""
    user, tok = await server.user("ana")
    if origin == "same-host":
        origin = f"http://127.0.0.1:{server.port}"
    c = await ws_with_origin(server, origin, tok)
    assert (await c.next_event("hello"))["user"]["id"] == user["id"]


async def fetch(server, method: str, path: str, headers: dict):
    req = HTTPRequest(server.base_url + path, method=method, headers=headers,
                      allow_nonstandard_methods=True)
    return await AsyncHTTPClient().fetch(req, raise_error=False)


@pytest.mark.parametrize("config_overrides", [{"allowed_origins": ("https://lms.example",)}])
async def test_cors_headers_only_for_allowed_origins(server):
    """CORS headers name an ALLOWED_ORIGINS origin (on preflight and on the request) and never a foreign one."""
    _, tok = await server.user("ana")
    pre = await fetch(server, "OPTIONS", "/api/me", {
        "Origin": "https://lms.example", "Access-Control-Request-Method": "GET",
        "Access-Control-Request-Headers": "authorization"})
    assert pre.code == 204
    assert pre.headers["Access-Control-Allow-Origin"] == "https://lms.example"
    assert "authorization" in pre.headers["Access-Control-Allow-Headers"].lower()
    assert "GET" in pre.headers["Access-Control-Allow-Methods"]

    ok = await fetch(server, "GET", "/api/me", {"Origin": "https://lms.example", "Authorization": f"Bearer {tok}"})
    assert ok.code == 200
    assert ok.headers["Access-Control-Allow-Origin"] == "https://lms.example"
    assert "Origin" in ok.headers.get("Vary", "")

    denied = await fetch(server, "GET", "/api/me", {"Origin": "https://lms.example", "Authorization": "Bearer nope"})
    assert denied.code == 401  # the LMS front end can read why it was refused
    assert denied.headers["Access-Control-Allow-Origin"] == "https://lms.example"

    for method in ("OPTIONS", "GET"):
        foreign = await fetch(server, method, "/api/me", {"Origin": "https://evil.example",
                                                          "Authorization": f"Bearer {tok}"})
        assert "Access-Control-Allow-Origin" not in foreign.headers
    no_origin = await fetch(server, "GET", "/api/me", {"Authorization": f"Bearer {tok}"})
    assert "Access-Control-Allow-Origin" not in no_origin.headers


async def test_the_first_account_of_a_fresh_install_is_the_site_admin(server):
    """The first person to sign up on a fresh install becomes the site's admin (issue 15.8);
    later sign-ups are students."""
    status, first = await server.http("POST", "/api/auth/register", body={
        "username": "founder", "password": "violet-ladder-42", "display_name": "Founder"})
    assert status == 201 and first["user"]["role"] == "admin"
    status, second = await server.http("POST", "/api/auth/register", body={
        "username": "second", "password": "violet-ladder-42", "display_name": "Second"})
    assert status == 201 and second["user"]["role"] == "student"
