"""Security headers: every API answer and the page carry ``Referrer-Policy: same-origin``; the
page's CSP lets it connect to its own origin (``'self'``, which covers its ws/wss URL) and the
configured ALLOWED_ORIGINS only, not to any host."""
from __future__ import annotations

import pytest
from tornado.httpclient import AsyncHTTPClient


async def get(server, path: str, headers: dict | None = None):
    return await AsyncHTTPClient().fetch(server.base_url + path, headers=headers, raise_error=False)


def directives(csp: str) -> dict[str, list[str]]:
    out = {}
    for part in csp.split(";"):
        name, *values = part.split()
        out[name] = values
    return out


async def test_api_answers_carry_referrer_policy(server):
    """JSON answers — success, 401, 404, 413 paths alike — send Referrer-Policy: same-origin."""
    _, tok = await server.user("ana")
    for path, token, status in (("/healthz", None, 200), ("/api/me", None, 401), ("/api/me", tok, 200),
                                ("/api/rooms/999999", tok, 404), ("/api/nothing", None, 404)):
        resp = await get(server, path, {"Authorization": f"Bearer {token}"} if token else None)
        assert resp.code == status, (path, resp.code)
        assert resp.headers.get("Referrer-Policy") == "same-origin", path


async def test_page_csp_connects_to_its_own_origin_only(server):
    """The page and its assets send Referrer-Policy: same-origin and a CSP whose connect-src is 'self' alone (no ws:/wss: wildcard schemes)."""
    for path in ("/", "/index.html", "/js/main.js"):
        resp = await get(server, path)
        assert resp.code == 200, path
        assert resp.headers.get("Referrer-Policy") == "same-origin", path
        csp = directives(resp.headers["Content-Security-Policy"])
        assert csp["connect-src"] == ["'self'"], csp
        assert csp["default-src"] == ["'self'"] and csp["frame-ancestors"] == ["'none'"], csp
    resp = await get(server, "/missing.js")
    assert resp.code == 404 and resp.headers.get("Referrer-Policy") == "same-origin"


ORIGINS = ("https://lms.example.org", "http://localhost:3000", "*", "https://evil.example; script-src *",
           "javascript:alert(1)", "https://lms.example.org/path", "lms.example.org")


@pytest.mark.parametrize("config_overrides", [{"allowed_origins": ORIGINS}])
async def test_page_csp_adds_the_configured_origins(server):
    """With ALLOWED_ORIGINS the page may also connect to each listed origin over http(s) and ws(s); '*' and anything that is not an origin are left out and cannot add a directive."""
    resp = await get(server, "/")
    csp = directives(resp.headers["Content-Security-Policy"])
    assert csp["connect-src"] == ["'self'", "https://lms.example.org", "wss://lms.example.org",
                                  "http://localhost:3000", "ws://localhost:3000"], csp
    assert "script-src" not in csp


def test_csp_without_origins():
    """Without ALLOWED_ORIGINS the connect-src is 'self' alone."""
    from server.http.static import content_security_policy
    assert "connect-src 'self';" in content_security_policy(())
