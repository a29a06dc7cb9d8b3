"""Recording asset links follow access (issue 13.6): assets live outside rooms, so who may
read one is the recording's rule (recordings.assets.AssetAccess), checked at download."""
from __future__ import annotations

import pytest

from tests.files.test_files import fetch
from tests.recordings.test_recordings import put_asset, recording_call, start_recording


@pytest.fixture
def config_overrides():
    return {"recording_start_timeout_s": 5.0, "recording_worker_grace_s": 5.0}


async def ready_recording(server):
    """A ready recording with a class video and a manifest; returns what the tests need."""
    session, a, b, w, w_tok, a_tok, b_tok = await recording_call(server)
    rid = await start_recording(session, a, w)
    await a.request("recording.stop", session=session)
    for name in ("class.mp4", "manifest.json"):
        status, body = await put_asset(server, w_tok, rid, name, b"\x00\x00\x00\x18ftypmp42" + b"v" * 100)
        assert status == 201, body
    status, body = await server.http("POST", f"/api/recordings/{rid}/complete", w_tok,
                                     {"assets": [{"name": "class.mp4", "kind": "composite"},
                                                 {"name": "manifest.json", "kind": "manifest"}]},
                                     headers={"X-Worker-Id": "w1"})
    assert status == 200, body
    return rid, body["recording"]["room"], a_tok, b_tok


async def asset_urls(server, token, rid) -> dict[str, str]:
    status, body = await server.http("GET", f"/api/recordings/{rid}", token)
    assert status == 200, body
    return {x["kind"]: x["url"] for x in body["recording"]["assets"]}


async def test_a_students_asset_link_stops_when_they_leave_the_room(server):
    """ben's class-video link works while he is in the room and gives 403 once he is removed;
    the instructor's links keep working."""
    rid, room, a_tok, b_tok = await ready_recording(server)
    ben_urls, ana_urls = await asset_urls(server, b_tok, rid), await asset_urls(server, a_tok, rid)
    assert set(ben_urls) == {"composite"} and set(ana_urls) == {"composite", "manifest"}
    assert (await fetch(server, ben_urls["composite"])).code == 200
    status, me = await server.http("GET", "/api/me", b_tok)
    status, _ = await server.http("DELETE", f"/api/rooms/{room}/members/{me['user']['id']}", a_tok)
    assert status == 200
    assert (await fetch(server, ben_urls["composite"])).code == 403
    assert (await fetch(server, ana_urls["composite"])).code == 200


async def test_a_student_cannot_turn_an_instructor_only_asset_link_into_theirs(server):
    """The manifest (instructors only) minted for ana and re-signed for ben does not exist: a
    link rewritten to name ben fails its signature, and ben's own listing has no manifest."""
    rid, room, a_tok, b_tok = await ready_recording(server)
    ana_urls = await asset_urls(server, a_tok, rid)
    status, me = await server.http("GET", "/api/me", b_tok)
    status, ana = await server.http("GET", "/api/me", a_tok)
    forged = ana_urls["manifest"].replace(f"u={ana['user']['id']}", f"u={me['user']['id']}")
    assert (await fetch(server, forged)).code == 403
    assert "manifest" not in await asset_urls(server, b_tok, rid)
