"""``python -m server lti add-platform|list-platforms|remove-platform`` and a launch through a
``python -m server`` process from a platform registered that way (the real platform of
tests/lti/platform.py): the tool's key pair is made on first start under DATA_DIR."""
from __future__ import annotations

import json

from tests.lti.platform import INSTRUCTOR, Platform, Scenario
from tests.lti.test_launch import launch, landing
from tests.procserver import procs  # noqa: F401 - procs is a fixture


async def test_cli_registers_lists_and_removes_a_platform_that_then_launches(procs):  # noqa: F811
    srv = procs.new()
    lms = Platform(srv.base_url).start()
    try:
        r = srv.cli("lti", "add-platform", "--issuer", lms.issuer, "--client-id", lms.client_id,
                    "--deployment-id", "dep-0", "--deployment-id", lms.deployment_id,
                    "--auth-login-url", lms.base + "/authorize", "--key-set-url", lms.base + "/jwks",
                    "--token-url", lms.base + "/token")
        assert r.returncode == 0, r.stderr
        assert "registered platform" in r.stdout
        again = srv.cli("lti", "add-platform", "--issuer", lms.issuer, "--client-id", lms.client_id,
                        "--deployment-id", "x", "--auth-login-url", lms.base + "/authorize",
                        "--key-set-url", lms.base + "/jwks", "--token-url", lms.base + "/token")
        assert again.returncode != 0 and "registered already" in again.stderr
        r = srv.cli("lti", "list-platforms")
        assert r.returncode == 0, r.stderr
        [mine] = [p for p in map(json.loads, r.stdout.splitlines()) if p["issuer"] == lms.issuer]
        assert mine["deployment_ids"] == ["dep-0", lms.deployment_id]
        assert mine["frame_origins"] == [lms.base]  # default: the issuer's origin (the same as the login URL's)

        resp, _ = await launch(lms, Scenario("prof-1", name="Prof Plum", roles=[INSTRUCTOR],
                                             context_title="Statistics"))
        assert resp.code == 200, resp.body
        token, room_id = landing(resp)
        status, room = await srv.http("GET", f"/api/rooms/{room_id}", token)
        assert status == 200 and room["room"]["name"] == "Statistics"
        assert [m["role"] for m in room["members"]] == ["instructor"]
        assert (srv.data_dir / "lti_tool_key.pem").exists()

        r = srv.cli("lti", "remove-platform", "--id", str(mine["id"]))
        assert r.returncode == 0, r.stderr
        r = srv.cli("lti", "list-platforms")
        assert lms.issuer not in r.stdout
        resp = await launch_refused(lms)
        assert resp.code == 400 and "not registered" in resp.body.decode()
    finally:
        lms.stop()


async def launch_refused(lms: Platform):
    from tests.lti.test_launch import fetch
    r = await fetch(lms.start_url(Scenario("prof-1")))
    return await fetch(r.headers["Location"])
