"""Routing of server events inside the worker (media_worker/client.py), without a socket."""
from __future__ import annotations

import logging
from pathlib import Path

from media_worker.client import WorkerClient
from media_worker.config import WorkerConfig


class RecordingJob:
    """Stands in for a Job: records what reaches it."""

    def __init__(self, session_id: str):
        self.session_id = session_id
        self.events: list[dict] = []
        self.stopped: list[str] = []

    def on_event(self, ev: dict) -> None:
        self.events.append(ev)

    def request_stop(self, reason: str) -> None:
        self.stopped.append(reason)


def client_with_jobs() -> tuple[WorkerClient, RecordingJob, RecordingJob]:
    """A client holding two jobs, recordings 1 (session 10) and 2 (session 20)."""
    client = WorkerClient(WorkerConfig("http://127.0.0.1:1", "w", 2, Path("/nonexistent")))
    a, b = RecordingJob("10"), RecordingJob("20")
    client.jobs.update({"1": a, "2": b})
    return client, a, b


def test_call_events_reach_the_job_recording_that_session():
    """Signaling and call events go to the job whose session they name (as id or object)."""
    client, a, b = client_with_jobs()
    client._on_event({"type": "rtc.answer", "session": "20", "from": "p1", "sdp": "v=0"})
    client._on_event({"type": "call.participant_joined", "session": {"id": 10}, "participant": {}})
    assert [e["type"] for e in a.events] == ["call.participant_joined"]
    assert [e["type"] for e in b.events] == ["rtc.answer"]


def test_recording_stop_stops_only_that_recording():
    """recording.stop names a recording: only its job is asked to stop, with the reason."""
    client, a, b = client_with_jobs()
    client._on_event({"type": "recording.stop", "recording": 2, "reason": "call_ended"})
    assert a.stopped == [] and b.stopped == ["call_ended"]


def test_events_for_no_recorded_call_are_ignored_at_debug(caplog):
    """An event for no recorded call (a live recording.mark) reaches no job; a debug line says so."""
    client, a, b = client_with_jobs()
    with caplog.at_level(logging.DEBUG, logger="podium.worker"):
        client._on_event({"type": "recording.mark", "recording": "1", "mark": {"label": "x"}})
        client._on_event({"type": "something.new", "session": "99"})
    assert a.events == b.events == [] and a.stopped == b.stopped == []
    assert [r.getMessage() for r in caplog.records if r.levelno == logging.DEBUG] == [
        "ignoring recording.mark", "ignoring something.new"]
