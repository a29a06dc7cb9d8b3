"""Recordings on the server (PROTOCOL §2.2–§2.3, docs/RECORDING.md), without media: the web
process's side of the contract, driven by a protocol-level media worker (a real WebSocket
client with a worker token that speaks worker.register / call.join / worker.status and uploads
assets over HTTP). The real worker process with real media is tested in
tests/recordings/test_recording_e2e.py."""
from __future__ import annotations

import asyncio
import hashlib
import json

import pytest
from tornado.httpclient import AsyncHTTPClient, HTTPRequest

from server.accounts.tokens import issue_worker_token
from server.db import recordings as rq
from tests.calls.helpers import calls_settle, call_room, joined  # noqa: F401  (autouse settle fixture)
from tests.files.test_files import fetch
from tests.api import assert_error
from tests.recordings.test_worker_claim import pending_recordings
from tests.wsclient import ProtocolError


@pytest.fixture
def config_overrides():
    # Timers the tests wait out; 3 s, not less, so that under CI load a worker's join or
    # reconnect (a new socket's handshake) fits inside them.
    return {"recording_start_timeout_s": 3.0, "recording_worker_grace_s": 3.0,
            "recording_max_asset_bytes": 256 * 1024}


async def worker(server, worker_id="w1", capacity=2, recordings=None, name="Recorder"):
    """A worker's socket, registered: (client, token, register ack)."""
    c, token = await worker_socket(server, name)
    return c, token, await register(c, worker_id, capacity, recordings)


async def worker_socket(server, name="Recorder"):
    """A worker's socket, connected but not yet registered: (client, token)."""
    token = issue_worker_token(server.deps.config, name)
    return await server.client(token), token


async def register(c, worker_id="w1", capacity=2, recordings=None) -> dict:
    return await c.request("worker.register", capacity=capacity, worker_id=worker_id, recordings=recordings or [])


async def put_asset(server, token, rid, name, data: bytes, worker_id="w1"):
    req = HTTPRequest(f"{server.base_url}/api/recordings/{rid}/assets/{name}", method="PUT", body=data,
                      headers={"Authorization": f"Bearer {token}", "X-Worker-Id": worker_id},
                      request_timeout=30)
    r = await AsyncHTTPClient().fetch(req, raise_error=False)
    return r.code, json.loads(r.body) if r.body else None


async def recording_call(server):
    """A live call with an instructor and a student joined, and a registered worker.
    Returns (session, a, b, w, w_token, a_tok, b_tok)."""
    session, [(_, a_tok), (_, b_tok)] = await call_room(server, "ana", "ben")
    a, _ = await joined(server, a_tok, session)
    b, _ = await joined(server, b_tok, session)
    w, w_tok, _ = await worker(server)
    return session, a, b, w, w_tok, a_tok, b_tok


async def start_recording(session, a, w):
    """Instructor presses Record; the worker takes the job and joins: status recording."""
    ack = await a.request("recording.start", session=session)
    assert ack["recording"]["status"] == "pending"
    job = await w.next_event("recording.job")
    assert job["recording"]["id"] == ack["recording"]["id"] and job["session"]["id"] == session
    await w.request("call.join", session=session)
    started = await a.next_event("recording.started")
    assert started["recording"]["status"] == "recording" and started["recording"]["started_at"]
    return ack["recording"]["id"]


def test_worker_token_verifies_with_worker_secret_only(server):
    """A worker token (sub "worker", role recorder) verifies with WORKER_SECRET alone: the same
    claims signed with JWT_SECRET, a recorder-role user token and a non-recorder worker token
    are refused."""
    import jwt

    from server.accounts.tokens import verify_token
    from server.kernel.errors import Unauthorized

    cfg = server.deps.config
    ident = verify_token(cfg, issue_worker_token(cfg, "Rec 1"))
    assert (ident.user_id, ident.role, ident.name) == (0, "recorder", "Rec 1")
    for claims, key in (({"sub": "worker", "role": "instructor", "exp": 2**31}, cfg.worker_secret),
                        ({"sub": "worker", "role": "recorder", "exp": 2**31}, cfg.jwt_secret),
                        ({"sub": "1", "role": "recorder", "exp": 2**31}, cfg.jwt_secret),
                        ({"sub": "1", "role": "admin", "exp": 2**31}, cfg.worker_secret)):
        with pytest.raises(Unauthorized):
            verify_token(cfg, jwt.encode(claims, key, algorithm="HS256"))


async def test_full_lifecycle_with_marks_progress_assets_and_links(server):
    """pending → recording (the worker joined; everyone sees recording.started, a newcomer's
    join ack carries it) → marks → stop (recording.stopped, the worker gets recording.stop) →
    progress → assets uploaded and completed → ready, with signed links that download the
    uploaded bytes; students see only the class video, chat and thumbnail."""
    session, a, b, w, w_tok, a_tok, b_tok = await recording_call(server)
    rid = await start_recording(session, a, w)
    assert (await b.next_event("recording.started"))["recording"]["id"] == rid
    again = await a.request("recording.start", session=session)
    assert again["recording"]["id"] == rid  # pressing Record twice records once
    _, ack = await joined(server, b_tok, session)
    assert ack["session"]["recording"]["status"] == "recording"
    recorder = [p for p in ack["participants"] if p["recorder"]]
    assert len(recorder) == 1 and recorder[0]["user"]["role"] == "recorder"

    await asyncio.sleep(0.05)
    mark = (await a.request("recording.mark", session=session, label="  Newton's laws "))["mark"]
    assert mark["label"] == "Newton's laws" and mark["offset_s"] > 0
    assert (await b.next_event("recording.marked"))["mark"]["label"] == "Newton's laws"
    # The worker reads marks from the timeline (one path, from SQL); they are not pushed to it.
    status, timeline = await server.http("GET", f"/api/recordings/{rid}/timeline", w_tok)
    assert status == 200 and [m["label"] for m in timeline["marks"]] == ["Newton's laws"]

    stopped = await a.request("recording.stop", session=session)
    assert stopped["recording"]["status"] == "processing" and stopped["recording"]["duration_s"] > 0
    assert (await b.next_event("recording.stopped"))["recording"]["status"] == "processing"
    assert (await w.next_event("recording.stop"))["recording"] == rid
    with pytest.raises(ProtocolError):  # nothing is being recorded any more
        await a.request("recording.mark", session=session, label="late")

    await w.request("worker.status", recording=rid, state="processing", percent=40)
    prog = await a.next_event("recording.progress")
    assert prog["percent"] == 40 and prog["recording"]["progress"] == 40

    files = {"class.mp4": b"\x00\x00\x00\x18ftypmp42" + b"v" * 5000, "participant-1-0.mkv": b"\x1a\x45\xdf\xa3" + b"p" * 100,
             "chat.vtt": b"WEBVTT\n\n00:00.000 --> 00:04.000\n<v Ana>hi\n", "thumbnail.jpg": b"\xff\xd8\xff" + b"j" * 50,
             "manifest.json": b"{}"}
    for name, data in files.items():
        status, body = await put_asset(server, w_tok, rid, name, data)
        assert status == 201 and body["asset"]["sha256"] == hashlib.sha256(data).hexdigest(), body
    kinds = {"class.mp4": "composite", "participant-1-0.mkv": "participant", "chat.vtt": "chat",
             "thumbnail.jpg": "thumbnail", "manifest.json": "manifest"}
    status, done = await server.http("POST", f"/api/recordings/{rid}/complete", w_tok,
                                     {"assets": [{"name": n, "kind": k, "duration_s": 1.5 if k == "composite" else None}
                                                 for n, k in kinds.items()], "duration_s": 1.5},
                                     headers={"X-Worker-Id": "w1"})
    assert status == 200, done
    ready = await a.next_event("recording.ready")
    assert ready["recording"]["status"] == "ready" and ready["recording"]["duration_s"] == 1.5

    status, body = await server.http("GET", f"/api/recordings/{rid}", a_tok)
    rec = body["recording"]
    assert status == 200 and sorted(x["kind"] for x in rec["assets"]) == sorted(kinds.values())
    for asset in rec["assets"]:
        r = await fetch(server, asset["url"])
        assert r.code == 200 and r.body == files[asset["name"]]
        assert r.headers["Content-Disposition"].startswith("attachment")
    composite = next(x for x in rec["assets"] if x["kind"] == "composite")
    r = await fetch(server, composite["inline_url"], {"Range": "bytes=0-7"})
    assert r.code == 206 and r.headers["Content-Disposition"].startswith("inline")
    status, body = await server.http("GET", f"/api/recordings/{rid}", b_tok)
    assert sorted(x["kind"] for x in body["recording"]["assets"]) == ["chat", "composite", "thumbnail"]
    status, body = await server.http("GET", f"/api/rooms/{rec['room']}/recordings", b_tok)
    assert status == 200 and [r["id"] for r in body["recordings"]] == [rid]
    _, outsider = await server.user("olga")
    status, resp = await server.http("GET", f"/api/recordings/{rid}", outsider)
    assert status in (403, 404)
    status, resp = await put_asset(server, w_tok, rid, "late.mp4", b"x")
    assert_error(status, resp, 409, "conflict")


async def test_timeline_has_the_chat_and_marks_of_the_recorded_span(server):
    """The worker's timeline lists the room's messages sent while recording (not before or
    after) and the marks, as offsets from the start on the server's clock."""
    session, a, b, w, w_tok, a_tok, b_tok = await recording_call(server)
    room = (await a.request("call.join", session=session))["session"]["room"]
    await b.request("room.join", room=room)
    await b.request("message.send", room=room, client_msg_id="before", kind="text", content="before")
    rid = await start_recording(session, a, w)
    await asyncio.sleep(0.2)
    await b.request("message.send", room=room, client_msg_id="m1", kind="text", content="Is F = ma?")
    await a.request("recording.mark", session=session, label="Questions")
    await a.request("recording.stop", session=session)
    await b.request("message.send", room=room, client_msg_id="after", kind="text", content="after")
    status, tl = await server.http("GET", f"/api/recordings/{rid}/timeline", w_tok)
    assert status == 200
    assert [m["text"] for m in tl["chat"]] == ["Is F = ma?"]
    assert tl["chat"][0]["user"]["display_name"] == "Ben" and 0.15 <= tl["chat"][0]["offset_s"] < 5
    assert [k["label"] for k in tl["marks"]] == ["Questions"]
    assert tl["marks"][0]["offset_s"] >= tl["chat"][0]["offset_s"]
    status, resp = await server.http("GET", f"/api/recordings/{rid}/timeline", b_tok)
    assert_error(status, resp, 403, "forbidden")


async def test_no_worker_fails_with_a_reason_the_instructor_sees(server):
    """With no worker registered, a recording stays pending, then fails after
    RECORDING_START_TIMEOUT_S with a reason sent to the instructor and kept on the recording."""
    session, [(_, a_tok), _] = await call_room(server, "ana", "ben")
    a, _ = await joined(server, a_tok, session)
    ack = await a.request("recording.start", session=session)
    assert ack["recording"]["status"] == "pending"
    failed = await a.next_event("recording.failed")
    assert "no recording worker" in failed["reason"] and failed["recording"]["status"] == "failed"
    status, body = await server.http("GET", f"/api/recordings/{ack['recording']['id']}", a_tok)
    assert body["recording"]["status"] == "failed" and "no recording worker" in body["recording"]["reason"]
    again = await a.request("recording.start", session=session)  # a new attempt is possible
    assert again["recording"]["id"] != ack["recording"]["id"]


async def test_a_worker_that_registers_later_takes_the_pending_job(server):
    """A recording asked for before any worker is connected goes to the first that registers."""
    session, [(_, a_tok), _] = await call_room(server, "ana", "ben")
    a, _ = await joined(server, a_tok, session)
    ack = await a.request("recording.start", session=session)
    w, _, _ = await worker(server, "late")
    job = await w.next_event("recording.job")
    assert job["recording"]["id"] == ack["recording"]["id"]


async def test_vanished_worker_fails_the_recording_after_grace(server):
    """A worker whose socket closes mid-recording and does not come back: the recording fails
    after RECORDING_WORKER_GRACE_S and the instructor is told why."""
    session, a, b, w, w_tok, a_tok, b_tok = await recording_call(server)
    rid = await start_recording(session, a, w)
    w.close()
    failed = await a.next_event("recording.failed")
    assert failed["recording"]["id"] == rid and "disconnected" in failed["reason"]


async def test_worker_that_reconnects_within_grace_keeps_its_recording(server):
    """A worker that reconnects (new socket, same worker_id) and lists its recording keeps it:
    nothing fails, and it can stop and complete it."""
    session, a, b, w, w_tok, a_tok, b_tok = await recording_call(server)
    rid = await start_recording(session, a, w)
    w2, _ = await worker_socket(server)
    w.close()
    await asyncio.sleep(0.3)
    ack = await register(w2, "w1", recordings=[rid])
    assert ack["recordings"] == [rid]
    await w2.request("call.join", session=session)
    assert await a.no_event("recording.failed", 3.5)
    await a.request("recording.stop", session=session)
    assert (await w2.next_event("recording.stop"))["recording"] == rid
    status, _ = await put_asset(server, w_tok, rid, "class.mp4", b"\x00\x00\x00\x18ftypmp42")
    assert status == 201
    status, _ = await server.http("POST", f"/api/recordings/{rid}/complete", w_tok,
                                  {"assets": [{"name": "class.mp4", "kind": "composite"}]},
                                  headers={"X-Worker-Id": "w1"})
    assert status == 200


async def test_call_end_stops_the_recording(server):
    """Ending the call stops its recording: processing, and the worker is told."""
    session, a, b, w, w_tok, a_tok, b_tok = await recording_call(server)
    rid = await start_recording(session, a, w)
    await a.request("call.end", session=session)
    assert (await w.next_event("recording.stop"))["reason"] == "call_ended"
    status, body = await server.http("GET", f"/api/recordings/{rid}", a_tok)
    assert body["recording"]["status"] == "processing"


async def test_worker_reported_failure_and_self_stop(server):
    """worker.status stopped (e.g. its SIGTERM) moves the recording to processing; failed
    fails it with the worker's detail."""
    session, a, b, w, w_tok, a_tok, b_tok = await recording_call(server)
    rid = await start_recording(session, a, w)
    await w.request("worker.status", recording=rid, state="stopped", detail="worker_shutdown")
    assert (await a.next_event("recording.stopped"))["recording"]["status"] == "processing"
    await w.request("worker.status", recording=rid, state="failed", detail="disk full")
    failed = await a.next_event("recording.failed")
    assert failed["reason"] == "recording failed: disk full"
    with pytest.raises(ProtocolError) as e:  # the job is released: the worker no longer holds it
        await w.request("worker.status", recording=rid, state="processing", percent=1)
    assert e.value.frame["code"] == "forbidden"


@pytest.mark.parametrize("config_overrides", [{"recording_start_timeout_s": 60.0}])  # no timeouts mid-test
async def test_capacity_and_least_loaded_dispatch(server):
    """Jobs go to the worker with the most free capacity; when every worker is full a job
    waits (pending, no offer) and is offered as soon as a job ends."""
    calls = []
    for i in range(3):
        session, [(_, tok), _] = await call_room(server, f"ins{i}", f"stu{i}")
        a, _ = await joined(server, tok, session)
        calls.append((session, a))
    w1, _, _ = await worker(server, "w1", capacity=1)
    w2, _, _ = await worker(server, "w2", capacity=2)
    r0 = (await calls[0][1].request("recording.start", session=calls[0][0]))["recording"]["id"]
    assert (await w2.next_event("recording.job"))["recording"]["id"] == r0  # 2 free beats 1 free
    r1 = (await calls[1][1].request("recording.start", session=calls[1][0]))["recording"]["id"]
    assert (await w1.next_event("recording.job"))["recording"]["id"] == r1  # now 1 free each: either
    r2 = (await calls[2][1].request("recording.start", session=calls[2][0]))["recording"]["id"]
    assert (await w2.next_event("recording.job"))["recording"]["id"] == r2
    await w1.request("call.join", session=calls[1][0])
    session3, [(_, tok3), _] = await call_room(server, "ins3", "stu3")
    a3, _ = await joined(server, tok3, session3)
    r3 = (await a3.request("recording.start", session=session3))["recording"]["id"]
    assert await w1.no_event("recording.job", 0.3) and await w2.no_event("recording.job", 0.05)
    await w1.request("worker.status", recording=r1, state="failed", detail="test")  # frees w1
    assert (await w1.next_event("recording.job"))["recording"]["id"] == r3


async def test_a_worker_full_in_sql_passes_the_job_to_the_next(server):
    """The claim counts a worker's recordings in SQL: a worker this process believes free but
    whose slots SQL shows taken (as when other processes have just given it jobs and the
    worker directory has not caught up) is skipped, and the next worker with room gets the job."""
    session, [(_, tok), _] = await call_room(server, "ins", "stu")
    a, _ = await joined(server, tok, session)
    w1, _, _ = await worker(server, "w1", capacity=2)  # the most free as this process sees it
    w2, _, _ = await worker(server, "w2", capacity=1)
    db = server.deps.db
    for rid in await pending_recordings(db, 2, tag="elsewhere"):
        async with db.write() as s:
            assert await rq.claim(s, rid, "w1", 2)
    rid = (await a.request("recording.start", session=session))["recording"]["id"]
    assert (await w2.next_event("recording.job"))["recording"]["id"] == rid
    assert await w1.no_event("recording.job", 0.3)


async def test_worker_only_operations_are_guarded(server):
    """Only recorder tokens register and upload; uploads need the holding worker's id, a safe
    name, and stay under RECORDING_MAX_ASSET_MB (413, nothing kept); bad registrations are 400."""
    session, a, b, w, w_tok, a_tok, b_tok = await recording_call(server)
    rid = await start_recording(session, a, w)
    with pytest.raises(ProtocolError) as e:
        await b.request("worker.register", capacity=1, worker_id="sneaky")
    assert e.value.frame["code"] == "forbidden"
    for bad in ({"capacity": 0, "worker_id": "x"}, {"capacity": 2, "worker_id": ""}, {"capacity": True, "worker_id": "x"}):
        with pytest.raises(ProtocolError) as e:
            await w.request("worker.register", **bad)
        assert e.value.frame["code"] == "bad_request"
    status, resp = await put_asset(server, b_tok, rid, "class.mp4", b"x")
    assert_error(status, resp, 403, "forbidden")
    status, resp = await put_asset(server, w_tok, rid, "class.mp4", b"x", worker_id="other")
    assert_error(status, resp, 403, "forbidden")
    for name in ("../x.mp4", ".hidden.mp4", "x.exe", "x"):
        status, resp = await put_asset(server, w_tok, rid, name, b"x")
        assert status in (400, 404), (name, status)
    before = await server.deps.storage.inventory()
    status, resp = await put_asset(server, w_tok, rid, "class.mp4", bytes(300 * 1024))
    assert status == 413
    assert await server.deps.storage.inventory() == before
    status, resp = await server.http("POST", f"/api/recordings/{rid}/complete", w_tok,
                                     {"assets": [{"name": "never.mp4", "kind": "composite"}]},
                                     headers={"X-Worker-Id": "w1"})
    assert_error(status, resp, 400, "bad_request")
