"""Recording assets are downloaded through the same /dl/ handler: on disk storage, by sendfile
(server/files/sendfile.py), byte-exact, whole and by range."""
from __future__ import annotations

import hashlib
import os

import pytest

from tests.files.test_sendfile_downloads import absolute, downloads, httpget
from tests.calls.helpers import calls_settle  # noqa: F401  (autouse: calls settle between tests)
from tests.recordings.test_recordings import put_asset, recording_call, start_recording

MIB = 1024 * 1024


@pytest.fixture
def config_overrides():
    return {"recording_start_timeout_s": 5.0, "recording_worker_grace_s": 5.0,
            "recording_max_asset_bytes": 8 * MIB}


async def test_recording_asset_downloads_by_sendfile(server):
    """A finished recording's 6 MiB composite video downloads by sendfile, whole and by range."""
    session, a, b, w, w_tok, a_tok, b_tok = await recording_call(server)
    rid = await start_recording(session, a, w)
    await a.request("recording.stop", session=session)
    await w.next_event("recording.stop")
    video = b"\x00\x00\x00\x18ftypmp42" + os.urandom(6 * MIB)
    status, body = await put_asset(server, w_tok, rid, "class.mp4", video)
    assert status == 201, body
    status, done = await server.http("POST", f"/api/recordings/{rid}/complete", w_tok,
                                     {"assets": [{"name": "class.mp4", "kind": "composite", "duration_s": 1.0}],
                                      "duration_s": 1.0}, headers={"X-Worker-Id": "w1"})
    assert status == 200, done
    status, body = await server.http("GET", f"/api/recordings/{rid}", b_tok)
    [asset] = [x for x in body["recording"]["assets"] if x["kind"] == "composite"]
    before = await downloads(server)
    [r] = await httpget(absolute(server, asset["url"]))
    assert r["status"] == 200 and r["sha256"] == hashlib.sha256(video).hexdigest()
    [r] = await httpget(absolute(server, asset["inline_url"]), "--range", f"bytes={MIB}-{3 * MIB - 1}")
    assert r["status"] == 206 and r["sha256"] == hashlib.sha256(video[MIB:3 * MIB]).hexdigest()
    assert r["headers"]["Content-Disposition"].startswith("inline")
    after = await downloads(server)
    assert after["sendfile"] == before["sendfile"] + 2 and after["streamed"] == before["streamed"]
