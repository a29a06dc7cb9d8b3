"""Ready minutes after the bell, end to end (issue 15.4): a real ``python -m media_worker``
records a real call (aiortc participants sending the flash/beep pattern) with 2-second live
segments. While it processes, ``recording.progress`` carries the worker's estimate (``eta_s``,
also in the recording wire); segments are rendered during the class and the manifest says
what became of them. With an impossible real-time factor the worker falls back to processing after the class
and the recording says so (``fallback: "could_not_keep_up"``)."""
from __future__ import annotations

import asyncio
import json

from tests.recordings.test_recording_e2e import Class, config_overrides, download, wait_for  # noqa: F401

# config_overrides (imported): the e2e test's generous start timeout and worker grace


async def record_and_collect(server, worker, seconds: float, until=None) -> tuple[str, list[dict], dict]:
    """Record ``seconds`` of a two-person class — and then on until ``until()`` holds, for at
    most 90 s more; (recording id, every recording.progress event until ready, the ready
    recording fetched by the instructor)."""
    await wait_for(lambda: "test-worker" in server.deps.recordings.workers, 30, "the worker to register",
                   worker.log_tail)
    c = await Class.start(server, worker)
    progress = []
    try:
        rid, _ = await c.record()
        await asyncio.sleep(seconds)
        if until is not None:  # the live segments' children run at nice +10: slow on a busy machine
            await wait_for(until, 90, "a live segment rendered during the class", worker.log_tail)
        await c.ana.ws.request("recording.stop", session=c.session)
        while True:
            frame = await c.ana.next_event(None, timeout=120,
                                           where=lambda ev: ev.get("type") in ("recording.progress", "recording.ready"))
            if frame["type"] == "recording.ready":
                break
            progress.append(frame)
    finally:
        await c.close()
    status, body = await server.http("GET", f"/api/recordings/{rid}", c.ana_tok)
    assert status == 200 and body["recording"]["status"] == "ready", (body, worker.log_tail())
    return rid, progress, body["recording"]


async def manifest_of(server, rec: dict, tmp_path) -> dict:
    asset = next(a for a in rec["assets"] if a["kind"] == "manifest")
    return json.loads((await download(server, asset, tmp_path / "manifest.json")).read_text())


async def test_live_segments_make_the_video_and_the_progress_has_an_estimate(server, worker_procs, tmp_path):
    worker = worker_procs(server.base_url, server.deps.config.worker_secret, tmp_path / "work",
                          extra_env={"WORKER_SEGMENT_S": "2", "WORKER_LIVE_MAX_RTF": "60"}).start()
    # Three segments rendered during the class (the children run at nice +10: on a busy
    # machine that takes longer than the class's 9 s).
    rendered = lambda: len(list((tmp_path / "work").rglob("live/seg-*.json"))) >= 3  # noqa: E731
    rid, progress, rec = await record_and_collect(server, worker, 9.0, until=rendered)
    assert progress, worker.log_tail()
    with_eta = [f for f in progress if isinstance(f.get("eta_s"), int)]
    assert with_eta, progress
    assert all(f["recording"]["eta_s"] == f["eta_s"] and f["recording"]["fallback"] is None for f in with_eta)
    live = (await manifest_of(server, rec, tmp_path))["processing"]["live"]
    # A real call's segments are reused at the stop: what the worker writes after a segment
    # (the tracks' refined clocks) changes none of its frames, nor the order of the cells.
    said = [ln for ln in worker.log().splitlines() if "live segments not used" in ln]
    assert live["segments_reused"] >= 1 and not said, (live, said, worker.log_tail())
    assert rec["eta_s"] is None  # ready: no estimate any more


async def test_a_worker_that_cannot_keep_up_processes_after_the_class_and_says_so(server, worker_procs, tmp_path):
    worker = worker_procs(server.base_url, server.deps.config.worker_secret, tmp_path / "work",
                          extra_env={"WORKER_SEGMENT_S": "2", "WORKER_LIVE_MAX_RTF": "0.001"}).start()
    rid, progress, rec = await record_and_collect(server, worker, 6.0)
    assert progress and all(f["recording"]["fallback"] == "could_not_keep_up" for f in progress), progress
    assert "could not keep up" in worker.log() or "could_not_keep_up" in worker.log()
    live = (await manifest_of(server, rec, tmp_path))["processing"]["live"]
    assert live["segments_reused"] == 0 and live["off"]["reason"] == "could_not_keep_up", live
