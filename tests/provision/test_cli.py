"""``python -m server service-credential add|list|revoke`` against a ``python -m server``
process: the secret is printed once and works on /api/provision/, the list never shows it,
a revoked credential stops at once."""
from __future__ import annotations

import json

from tests.procserver import procs  # noqa: F401 - procs is a fixture


async def test_cli_adds_lists_and_revokes_a_credential(procs):  # noqa: F811
    srv = procs.new()
    r = srv.cli("service-credential", "add", "canvas")
    assert r.returncode == 0, r.stderr
    secret = r.stdout.strip()
    assert secret.startswith("podium-svc-") and len(secret) > 50 and "not shown again" in r.stderr
    again = srv.cli("service-credential", "add", "canvas")
    assert again.returncode != 0 and "exists already" in again.stderr
    bad = srv.cli("service-credential", "add", "Bad Name")
    assert bad.returncode != 0 and "name must be" in bad.stderr
    status, body = await srv.http("PUT", "/api/provision/users/u-1", secret, {"display_name": "Una"})
    assert status == 201, body
    r = srv.cli("service-credential", "list")
    assert r.returncode == 0, r.stderr
    [item] = [json.loads(line) for line in r.stdout.splitlines()]
    assert item["name"] == "canvas" and item["issuer"] == "urn:podium:service:canvas"
    assert item["last_used_at"] and item["revoked_at"] is None
    assert secret not in r.stdout and secret[11:] not in r.stdout
    r = srv.cli("service-credential", "revoke", "canvas")
    assert r.returncode == 0, r.stderr
    status, body = await srv.http("PUT", "/api/provision/users/u-1", secret, {"display_name": "Una"})
    assert status == 401 and "revoked" in body["error"]["reason"]
    r = srv.cli("service-credential", "revoke", "nobody")
    assert r.returncode != 0 and "no credential" in r.stderr
