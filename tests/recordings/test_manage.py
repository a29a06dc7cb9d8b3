"""Recordings managed by instructors (server/recordings/manage.py, issue 15.2): a title
(default: the room and the date) that names the downloads, renaming, deleting every stored
asset (on disk and on S3), and the retention sweep."""
from __future__ import annotations

from datetime import timedelta
from urllib.parse import unquote

import pytest
from server.db import recordings as rq
from server.db.models import Recording
from tests.calls.helpers import calls_settle  # noqa: F401  (autouse settle fixture)
from tests.files.test_files import fetch
from tests.recordings.test_recordings import put_asset, recording_call, start_recording
from tests.s3server import storage_settings  # noqa: F401  (disk and S3)

FILES = {"class.mp4": ("composite", b"\x00\x00\x00\x18ftypmp42" + b"v" * 2000),
         "chat.vtt": ("chat", b"WEBVTT\n\n00:00.000 --> 00:01.000\nhi\n"),
         "thumbnail.jpg": ("thumbnail", b"\xff\xd8\xff" + b"j" * 40)}


@pytest.fixture
def config_overrides():
    return {"recording_start_timeout_s": 5.0, "recording_retention_days": 30}


async def ready_recording(server):
    session, a, b, w, w_tok, a_tok, b_tok = await recording_call(server)
    rid = await start_recording(session, a, w)
    await a.request("recording.stop", session=session)
    await finish(server, rid, w_tok)
    return rid, a, b, a_tok, b_tok


async def finish(server, rid, w_tok) -> None:
    """The worker uploads the assets and completes: ready."""
    for name, (_, data) in FILES.items():
        status, _ = await put_asset(server, w_tok, rid, name, data)
        assert status == 201
    status, done = await server.http("POST", f"/api/recordings/{rid}/complete", w_tok,
                                     {"assets": [{"name": n, "kind": k} for n, (k, _) in FILES.items()]},
                                     headers={"X-Worker-Id": "w1"})
    assert status == 200, done


def download_name(resp) -> str:
    return unquote(resp.headers["Content-Disposition"].split("filename*=UTF-8''")[1])


async def stored_keys(server, rid: int) -> list[str]:
    async with server.deps.db.read() as s:
        return [f.storage_key for _, f in (await rq.assets(s, [int(rid)]))[int(rid)]]


async def test_title_names_the_downloads_and_instructors_rename(server):
    rid, a, b, a_tok, b_tok = await ready_recording(server)
    status, body = await server.http("GET", f"/api/recordings/{rid}", a_tok)
    rec = body["recording"]
    assert rec["title"].startswith("Call room — ")
    video = next(x for x in rec["assets"] if x["kind"] == "composite")
    assert download_name(await fetch(server, video["url"])) == f"{rec['title']}.mp4"
    for bad in ({}, {"title": ""}, {"title": "x" * 201}, {"title": 5}):
        status, _ = await server.http("PATCH", f"/api/recordings/{rid}", a_tok, bad)
        assert status == 400, bad
    status, _ = await server.http("PATCH", f"/api/recordings/{rid}", b_tok, {"title": "Mine"})
    assert status == 403
    await b.request("room.join", room=rec["room"])
    status, body = await server.http("PATCH", f"/api/recordings/{rid}", a_tok,
                                     {"title": "  Week 3:  Newton / forces "})
    assert status == 200 and body["recording"]["title"] == "Week 3: Newton / forces"
    assert (await b.next_event("recording.updated"))["recording"]["title"] == "Week 3: Newton / forces"
    names = {x["kind"]: download_name(await fetch(server, x["url"])) for x in body["recording"]["assets"]}
    assert names["composite"] == "Week 3 Newton forces.mp4"
    assert names["chat"] == "Week 3 Newton forces - chat.vtt"


async def test_delete_removes_every_stored_asset_and_the_links_stop(server):
    rid, a, b, a_tok, b_tok = await ready_recording(server)
    status, body = await server.http("GET", f"/api/recordings/{rid}", a_tok)
    urls = [x["url"] for x in body["recording"]["assets"]]
    keys = await stored_keys(server, rid)
    assert len(keys) == 3 and all([await server.deps.storage.exists(k) for k in keys])
    status, _ = await server.http("DELETE", f"/api/recordings/{rid}", b_tok)
    assert status == 403
    await b.request("room.join", room=body["recording"]["room"])
    status, _ = await server.http("DELETE", f"/api/recordings/{rid}", a_tok)
    assert status == 200
    gone = await b.next_event("recording.deleted")
    assert gone["recording"]["id"] == str(rid)
    assert not any([await server.deps.storage.exists(k) for k in keys])
    for url in urls:
        assert (await fetch(server, url)).code in (403, 404)  # the link no longer works
    status, _ = await server.http("GET", f"/api/recordings/{rid}", a_tok)
    assert status == 404


async def test_a_recording_being_made_cannot_be_deleted_and_retention_sweeps_old_ones(server):
    session, a, b, w, w_tok, a_tok, b_tok = await recording_call(server)
    live = await start_recording(session, a, w)
    status, _ = await server.http("DELETE", f"/api/recordings/{live}", a_tok)
    assert status == 409
    await a.request("recording.stop", session=session)
    await finish(server, live, w_tok)
    # A finished recording of 40 days ago goes with the sweep.
    rid = live
    keys = await stored_keys(server, rid)
    async with server.deps.db.write() as s:
        row = await s.get(Recording, int(rid))
        row.requested_at = row.requested_at - timedelta(days=40)
    assert await server.deps.recording_manager.sweep() == 1
    assert not any([await server.deps.storage.exists(k) for k in keys])
    status, _ = await server.http("GET", f"/api/recordings/{rid}", a_tok)
    assert status == 404
    assert await server.deps.recording_manager.sweep() == 0
