"""Proxy headers (server/http/proxy.py, PROXY_HEADERS / TRUSTED_PROXIES): a client's
X-Forwarded-For, X-Real-Ip or X-Forwarded-Proto change nothing unless the server is told a
proxy is in front; then the address the proxy saw is the one the server logs and limits by."""
from __future__ import annotations

import logging

import pytest

from server.config import ConfigError, load_config
from server.http.proxy import ProxyHeaders
from tests.files.test_files import upload

SPOOF = {"X-Forwarded-For": "203.0.113.9", "X-Real-Ip": "198.51.100.7", "X-Forwarded-Proto": "https"}


async def seen_address(server, caplog, headers: dict) -> str:
    """The client address the access log line of one ``GET /healthz`` names."""
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="tornado.access"):
        status, _ = await server.http("GET", "/healthz", headers=headers)
    assert status == 200
    lines = [r for r in caplog.records if r.name == "tornado.access" and r.args[2] == "/healthz"]
    assert len(lines) == 1, caplog.records
    return lines[0].args[3]


async def link_scheme(server, headers: dict) -> str:
    """The scheme of a signed download link minted for a request with ``headers``."""
    _, tok = await server.user("ana")
    [f] = await upload(server, tok, [("notes.txt", b"hello\n")])
    status, body = await server.http("POST", f"/api/files/{f['id']}/signed-url", tok,
                                     {"disposition": "attachment"}, headers=headers)
    assert status == 200, body
    return body["url"].split("://", 1)[0]


# -- the default: no proxy ---------------------------------------------------------------------
async def test_spoofed_forwarding_headers_are_ignored_by_default(server, caplog):
    """With the default configuration a client's X-Forwarded-For / X-Real-Ip do not change the address the server logs, nor X-Forwarded-Proto the scheme of its links."""
    assert server.deps.config.proxy_headers is False
    assert await seen_address(server, caplog, SPOOF) == "127.0.0.1"
    assert await seen_address(server, caplog, {"X-Real-Ip": "198.51.100.7"}) == "127.0.0.1"
    assert await link_scheme(server, SPOOF) == "http"


# -- PROXY_HEADERS on, any peer is the proxy (Heroku) -----------------------------------------
@pytest.mark.parametrize("config_overrides", [{"proxy_headers": True}])
async def test_behind_a_proxy_the_address_it_appended_is_the_client(server, caplog):
    """With PROXY_HEADERS the client is the X-Forwarded-For entry the proxy appended (the last), not what the client wrote before it; X-Real-Ip is not read; X-Forwarded-Proto gives the links' scheme."""
    assert await seen_address(server, caplog, {"X-Forwarded-For": "203.0.113.9"}) == "203.0.113.9"
    chain = {"X-Forwarded-For": "198.51.100.1, 203.0.113.9"}  # client wrote the first
    assert await seen_address(server, caplog, chain) == "203.0.113.9"
    assert await seen_address(server, caplog, {"X-Real-Ip": "198.51.100.7"}) == "127.0.0.1"
    assert await seen_address(server, caplog, {"X-Forwarded-For": "not-an-address"}) == "127.0.0.1"
    assert await seen_address(server, caplog, {}) == "127.0.0.1"
    assert await link_scheme(server, {"X-Forwarded-Proto": "https"}) == "https"


# -- TRUSTED_PROXIES ---------------------------------------------------------------------------
@pytest.mark.parametrize("config_overrides", [{"proxy_headers": True, "trusted_proxies": ("10.0.0.0/8",)}])
async def test_headers_from_a_peer_outside_trusted_proxies_are_ignored(server, caplog):
    """With TRUSTED_PROXIES set, a connection from elsewhere (here 127.0.0.1) is a client, whatever it claims."""
    assert await seen_address(server, caplog, SPOOF) == "127.0.0.1"
    assert await link_scheme(server, SPOOF) == "http"


@pytest.mark.parametrize("config_overrides", [{"proxy_headers": True,
                                               "trusted_proxies": ("127.0.0.1/32", "10.0.0.0/8")}])
async def test_trusted_proxies_are_skipped_in_a_chain(server, caplog):
    """From a trusted peer, the client is the nearest X-Forwarded-For entry that is not itself a trusted proxy (CIDRs match)."""
    chain = {"X-Forwarded-For": "198.51.100.1, 203.0.113.9, 10.1.2.3"}
    assert await seen_address(server, caplog, chain) == "203.0.113.9"
    assert await seen_address(server, caplog, {"X-Forwarded-For": "10.9.9.9, 10.1.2.3"}) == "10.9.9.9"


# -- the rule without I/O ----------------------------------------------------------------------
@pytest.mark.parametrize("trusted,peer,xff,expected", [
    ((), "10.0.0.5", None, "10.0.0.5"),
    ((), "10.0.0.5", "203.0.113.9", "203.0.113.9"),
    ((), "10.0.0.5", "1.1.1.1,203.0.113.9", "203.0.113.9"),
    ((), "10.0.0.5", "1.1.1.1, garbage", "10.0.0.5"),
    ((), "10.0.0.5", " 2001:db8::1 ", "2001:db8::1"),
    ((), "10.0.0.5", "::ffff:203.0.113.9", "203.0.113.9"),
    (("10.0.0.0/8",), "10.0.0.5", "1.1.1.1, 10.2.2.2", "1.1.1.1"),
    (("10.0.0.0/8",), "10.0.0.5", "10.3.3.3, 10.2.2.2", "10.3.3.3"),
    (("10.0.0.0/8", "2001:db8::/32"), "10.0.0.5", "1.1.1.1, 2001:db8::9", "1.1.1.1"),
])
def test_client_address_rule(trusted, peer, xff, expected):
    """client_address walks X-Forwarded-For from the right past trusted proxies; a malformed entry there leaves the peer's address."""
    assert ProxyHeaders(trusted).client_address(peer, xff) == expected


def test_only_trusted_peers_are_proxies_when_a_list_is_given():
    """No list: every peer is the proxy in front; a list: only peers in it (IPv4-mapped peers match their IPv4 network)."""
    assert ProxyHeaders().from_proxy("192.0.2.1")
    p = ProxyHeaders(["10.0.0.0/8"])
    assert p.from_proxy("10.1.2.3") and p.from_proxy("::ffff:10.1.2.3")
    assert not p.from_proxy("192.0.2.1") and not p.from_proxy("garbage")


@pytest.mark.parametrize("proto,expected", [(None, "http"), ("https", "https"), ("http, https", "https"),
                                            ("HTTPS", "https"), ("gopher", "http")])
def test_scheme_rule(proto, expected):
    """The last X-Forwarded-Proto entry gives the scheme when it is http or https."""
    assert ProxyHeaders.scheme(proto, "http") == expected


# -- configuration -----------------------------------------------------------------------------
def test_proxy_settings_are_read_and_checked(tmp_path):
    """PROXY_HEADERS is off by default; TRUSTED_PROXIES takes addresses and CIDRs, refuses anything else, and needs PROXY_HEADERS."""
    base = {"DATA_DIR": str(tmp_path)}
    cfg = load_config(base)
    assert cfg.proxy_headers is False and cfg.trusted_proxies == ()
    cfg = load_config(base | {"PROXY_HEADERS": "1", "TRUSTED_PROXIES": "10.0.0.0/8, 192.168.1.7,2001:db8::/32"})
    assert cfg.proxy_headers is True
    assert cfg.trusted_proxies == ("10.0.0.0/8", "192.168.1.7/32", "2001:db8::/32")
    with pytest.raises(ConfigError, match="TRUSTED_PROXIES"):
        load_config(base | {"PROXY_HEADERS": "1", "TRUSTED_PROXIES": "10.0.0.0/8,nginx"})
    with pytest.raises(ConfigError, match="PROXY_HEADERS"):
        load_config(base | {"TRUSTED_PROXIES": "10.0.0.0/8"})
