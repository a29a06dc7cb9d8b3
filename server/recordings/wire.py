"""Recordings on the wire (PROTOCOL §2.2–§2.3, §3): the recording shape, and worker and
instructor requests parsed into typed values."""
from __future__ import annotations

from dataclasses import dataclass

from server.db.models import ASSET_KINDS, Recording
from server.kernel.actor import bounded_int, parse_id
from server.kernel.clock import iso
from server.kernel.errors import BadRequest

MAX_LABEL_CHARS = 200
MAX_CAPACITY = 64
STUDENT_ASSET_KINDS = ("composite", "chat", "thumbnail")
WORKER_STATES = ("recording", "stopped", "processing", "failed")


FALLBACKS = ("could_not_keep_up", "segment_failed")
MAX_ETA_S = 7 * 24 * 3600


def recording_wire(row: Recording, assets: list[dict] | None = None, progress: int | None = None,
                   processing: dict | None = None) -> dict:
    """``processing``: the worker's latest ``{eta_s, fallback}`` while it builds the assets
    (issue 15.4: ``eta_s`` seconds left, ``fallback`` why the video is built after the class)."""
    processing = processing or {}
    return {"id": str(row.id), "session": str(row.session_id), "room": str(row.room_id), "status": row.status,
            "requested_at": iso(row.requested_at), "started_at": iso(row.started_at),
            "stopped_at": iso(row.stopped_at), "duration_s": row.duration_s,
            "assets": assets or [], "reason": row.reason, "progress": progress,
            "eta_s": processing.get("eta_s"), "fallback": processing.get("fallback")}


@dataclass(frozen=True)
class Registration:
    """``worker.register {capacity, worker_id, recordings?}``."""

    worker_id: str
    capacity: int
    held: list[int]


def parse_registration(msg: dict) -> Registration:
    capacity, worker_id, held = msg.get("capacity"), msg.get("worker_id"), msg.get("recordings", [])
    capacity = bounded_int(capacity, "capacity", 1, MAX_CAPACITY)
    if not isinstance(worker_id, str) or not 1 <= len(worker_id) <= 64:
        raise BadRequest("worker_id must be a string of 1–64 characters")
    if not isinstance(held, list) or len(held) > MAX_CAPACITY:
        raise BadRequest("recordings must be a list of recording ids")
    ids = []
    for rid in held:  # ids a restarted worker cannot read back are simply not kept
        try:
            ids.append(int(rid))
        except (TypeError, ValueError):
            continue
    return Registration(worker_id, capacity, ids)


@dataclass(frozen=True)
class WorkerStatus:
    """``worker.status {recording, state, percent?, eta_s?, fallback?, detail?}``."""

    recording_id: int
    state: str
    percent: int | None
    detail: str | None
    eta_s: int | None = None
    fallback: str | None = None


def parse_worker_status(msg: dict) -> WorkerStatus:
    rid = parse_recording_id(msg)
    state = msg.get("state")
    if state not in WORKER_STATES:
        raise BadRequest("state must be recording, stopped, processing or failed")
    percent = None
    if state == "processing":
        percent = msg.get("percent")
        if isinstance(percent, bool) or not isinstance(percent, (int, float)) or not 0 <= percent <= 100:
            raise BadRequest("percent must be a number from 0 to 100")
        percent = int(percent)
    eta_s, fallback = msg.get("eta_s"), msg.get("fallback")
    if eta_s is not None:
        if isinstance(eta_s, bool) or not isinstance(eta_s, (int, float)) or not 0 <= eta_s <= MAX_ETA_S:
            raise BadRequest(f"eta_s must be a number of seconds from 0 to {MAX_ETA_S}")
        eta_s = int(round(eta_s))
    if fallback is not None and fallback not in FALLBACKS:
        raise BadRequest("fallback must be one of " + ", ".join(FALLBACKS))
    detail = msg.get("detail")
    return WorkerStatus(rid, state, percent, str(detail) if detail else None, eta_s, fallback)


def parse_label(label) -> str:
    label = label.strip() if isinstance(label, str) else ""
    if not label or len(label) > MAX_LABEL_CHARS:
        raise BadRequest(f"label must be 1–{MAX_LABEL_CHARS} characters")
    return label


def parse_recording_id(msg: dict) -> int:
    return parse_id(msg.get("recording"), "recording")


@dataclass(frozen=True)
class CompletedAsset:
    name: str
    kind: str
    duration_s: float | None


@dataclass(frozen=True)
class Completion:
    """``POST /api/recordings/{id}/complete {assets:[{name, kind, duration_s?}], duration_s?}``."""

    assets: list[CompletedAsset]
    duration_s: float | None


def _number(value) -> bool:
    return not isinstance(value, bool) and isinstance(value, (int, float))


def parse_completion(body: dict) -> Completion:
    items, duration = body.get("assets"), body.get("duration_s")
    if not isinstance(items, list) or not items:
        raise BadRequest("assets must be a non-empty list")
    if duration is not None and (not _number(duration) or duration < 0):
        raise BadRequest("duration_s must be a non-negative number")
    assets = []
    for item in items:
        if not isinstance(item, dict) or item.get("kind") not in ASSET_KINDS or not isinstance(item.get("name"), str):
            raise BadRequest(f"each asset needs a name and a kind in {', '.join(ASSET_KINDS)}")
        d = item.get("duration_s")
        if d is not None and not _number(d):
            raise BadRequest("an asset's duration_s must be a number")
        assets.append(CompletedAsset(item["name"], item["kind"], d))
    return Completion(assets, float(duration) if duration is not None else None)
