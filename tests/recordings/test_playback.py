"""The playback page's API (issue 15.1, server/recordings/playback.py): ``GET
/api/recordings/{id}/playback`` gives a ready recording's members its signed video links,
chapters (the worker's rule), the chat replayed and the speaker timeline, every time from the
video's start; the room is told, with a link, when a recording becomes ready."""
from __future__ import annotations

import asyncio
import json

import pytest

from server.recordings.playback import chapters_from_marks, parse_speakers
from tests.api import assert_error
from tests.calls.helpers import calls_settle  # noqa: F401  (autouse settle fixture)
from tests.recordings.test_recordings import put_asset, recording_call, start_recording

SPEAKERS = {"speakers": [{"user_id": "7", "display_name": "Ana", "segments": [[0.0, 1.5], [3, 4.25]]},
                         {"user_id": "8", "display_name": "Ben", "segments": [[1.6, 2.9], [5, 4], "x", [1, True]]}]}


@pytest.fixture
def config_overrides():
    return {"recording_start_timeout_s": 5.0, "recording_worker_grace_s": 5.0}


async def complete(server, w_tok, rid, files: dict[str, tuple[str, bytes]], duration_s=6.0):
    for name, (_, data) in files.items():
        status, body = await put_asset(server, w_tok, rid, name, data)
        assert status == 201, body
    status, body = await server.http("POST", f"/api/recordings/{rid}/complete", w_tok,
                                     {"assets": [{"name": n, "kind": k, "duration_s": duration_s if k == "composite" else None}
                                                 for n, (k, _) in files.items()], "duration_s": duration_s},
                                     headers={"X-Worker-Id": "w1"})
    assert status == 200, body


def media(speakers: bytes | None) -> dict[str, tuple[str, bytes]]:
    files = {"class.mp4": ("composite", b"\x00\x00\x00\x18ftypmp42" + b"v" * 500),
             "chat.vtt": ("chat", b"WEBVTT\n\n00:00.000 --> 00:01.000\nhi\n")}
    if speakers is not None:
        files["speakers.json"] = ("speakers", speakers)
    return files


async def test_members_get_chapters_chat_and_speakers_and_the_room_is_told(server):
    session, a, b, w, w_tok, a_tok, b_tok = await recording_call(server)
    room = (await a.request("call.join", session=session))["session"]["room"]
    await b.request("room.join", room=room)
    rid = await start_recording(session, a, w)
    # Refused while it is being made: nothing to watch yet.
    status, resp = await server.http("GET", f"/api/recordings/{rid}/playback", b_tok)
    assert_error(status, resp, 409, "conflict")
    assert "not ready" in resp["error"]["reason"] and "recording" in resp["error"]["reason"]

    await a.request("recording.mark", session=session, label="Intro")  # < 0.5 s: the first chapter, at 0
    await asyncio.sleep(0.6)
    await b.request("message.send", room=room, client_msg_id="m1", kind="text", content="Is F = ma?")
    await asyncio.sleep(0.1)
    await a.request("recording.mark", session=session, label="Forces")
    await a.request("recording.mark", session=session, label="Newton")  # same instant: one chapter
    await b.request("message.send", room=room, client_msg_id="m2", kind="text", content="Thanks")
    await a.request("recording.stop", session=session)
    await complete(server, w_tok, rid, media(json.dumps(SPEAKERS).encode()))

    # The room hears it is ready, with a link to the playback page.
    note = await b.next_event("message.new")
    while note["message"]["kind"] != "system" or "ready" not in note["message"]["content"]:
        note = await b.next_event("message.new")
    assert note["message"]["content"].startswith("Recording ready: Call room — ")
    assert note["message"]["content"].endswith(f"watch it: /#/recordings/{rid}")

    status, pb = await server.http("GET", f"/api/recordings/{rid}/playback", b_tok)
    assert status == 200, pb
    assert pb["duration_s"] == 6.0 and pb["recording"]["id"] == str(rid)
    assert {x["kind"] for x in pb["recording"]["assets"]} == {"composite", "chat"}  # a student's links
    assert all("/dl/" in x["url"] for x in pb["recording"]["assets"])
    # The worker's rule (its details: test_chapters_follow_the_workers_rule) on the span's marks;
    # on a quiet machine that is [Intro, Forces / Newton] (a busy one may space the marks more).
    status, tl = await server.http("GET", f"/api/recordings/{rid}/timeline", a_tok)
    assert pb["chapters"] == chapters_from_marks(tl["marks"], 6.0)
    assert pb["chapters"][0]["start_s"] == 0 and pb["chapters"][-1]["end_s"] == 6.0
    assert [m["label"] for m in tl["marks"]] == ["Intro", "Forces", "Newton"]
    forces = next(c for c in pb["chapters"] if c["title"].startswith("Forces"))
    assert 0.6 <= forces["start_s"] < 6
    chat = pb["chat"]
    assert [(m["text"], m["user"]["display_name"], m["kind"]) for m in chat] == [
        ("Is F = ma?", "Ben", "text"), ("Thanks", "Ben", "text")]
    assert 0.6 <= chat[0]["t_s"] <= forces["start_s"] <= chat[1]["t_s"]
    assert pb["speakers"] == [
        {"user_id": "7", "display_name": "Ana", "segments": [[0.0, 1.5], [3.0, 4.25]]},
        {"user_id": "8", "display_name": "Ben", "segments": [[1.6, 2.9]]}]  # bad segments left out

    # The instructor too; someone outside the room, a bad id, an unknown one, nobody signed in: no.
    status, pb_a = await server.http("GET", f"/api/recordings/{rid}/playback", a_tok)
    assert status == 200 and "speakers" in {x["kind"] for x in pb_a["recording"]["assets"]}
    _, c_tok = await server.user("cleo", "student")
    status, resp = await server.http("GET", f"/api/recordings/{rid}/playback", c_tok)
    assert_error(status, resp, 403, "forbidden")
    for bad, code in (("abc", 400), ("-1", 400), ("99999999", 404)):
        status, resp = await server.http("GET", f"/api/recordings/{bad}/playback", b_tok)
        assert status == code, (bad, status, resp)
    status, _ = await server.http("GET", f"/api/recordings/{rid}/playback")
    assert status == 401


@pytest.mark.parametrize("speakers", [None, b"{not json", b'{"speakers": 5}', b"\xff\xfe"])
async def test_without_a_speaker_timeline_or_with_a_broken_one_nothing_is_shown(server, speakers):
    session, a, b, w, w_tok, a_tok, b_tok = await recording_call(server)
    rid = await start_recording(session, a, w)
    await a.request("recording.stop", session=session)
    await complete(server, w_tok, rid, media(speakers))
    status, pb = await server.http("GET", f"/api/recordings/{rid}/playback", b_tok)
    assert status == 200, pb
    assert pb["speakers"] == [] and pb["chapters"] == [] and pb["chat"] == []


async def test_a_failed_recording_is_refused_with_its_reason(server):
    session, a, b, w, w_tok, a_tok, b_tok = await recording_call(server)
    rid = await start_recording(session, a, w)
    await w.request("worker.status", recording=rid, state="failed", detail="disk full")
    await a.next_event("recording.failed")
    status, resp = await server.http("GET", f"/api/recordings/{rid}/playback", a_tok)
    assert_error(status, resp, 409, "conflict")
    assert "failed" in resp["error"]["reason"] and "disk full" in resp["error"]["reason"]


def test_chapters_follow_the_workers_rule():
    marks = [{"label": "B", "offset_s": 5.0}, {"label": "A", "offset_s": 2.0}, {"label": "A2", "offset_s": 2.3},
             {"label": "late", "offset_s": 9.0}]
    assert chapters_from_marks(marks, 8.0) == [
        {"title": "Start", "start_s": 0.0, "end_s": 2.0}, {"title": "A / A2", "start_s": 2.0, "end_s": 5.0},
        {"title": "B", "start_s": 5.0, "end_s": 8.0}]
    assert chapters_from_marks([], 8.0) == []
    assert chapters_from_marks([{"label": "Go", "offset_s": 0.2}], 8.0) == [{"title": "Go", "start_s": 0.0, "end_s": 8.0}]


def test_speakers_parse_or_refuse():
    assert parse_speakers(b'{"speakers": []}') == []
    for bad in (b"[]", b'{"speakers": 3}', b'{"speakers": [{"user_id": "1"}]}', b"\xff"):
        with pytest.raises(ValueError):
            parse_speakers(bad)
