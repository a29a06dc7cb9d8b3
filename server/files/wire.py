"""Files on the wire (PROTOCOL §3 "Files"): request bodies and query values parsed into typed
values, and the wire form of a file."""
from __future__ import annotations

from dataclasses import dataclass

from server.config import FILE_CATEGORIES
from server.db.models import File
from server.files.links import DISPOSITIONS
from server.files.rules import normalize_folder
from server.kernel.actor import bounded_int, parse_id
from server.kernel.clock import iso
from server.kernel.errors import BadRequest

DEFAULT_LINK_TTL_S = 300


@dataclass(frozen=True)
class LinkRequest:
    """``POST /api/files/{id}/signed-url``: the disposition and asked lifetime (seconds; the
    service caps it at ``SIGNED_URL_MAX_TTL_S``)."""

    disposition: str
    expires_in: int


@dataclass(frozen=True)
class CopyRequest:
    """``POST /api/files/{id}/copy``: the target folder, and the target room when ``room`` was
    given (``room_id`` None: the actor's own files); otherwise the original's room."""

    folder: str
    room_given: bool
    room_id: int | None


@dataclass(frozen=True)
class Statistics:
    """Files and bytes of a scope: in all, by category (absent: none) and by folder."""

    room_id: int | None
    files: int
    bytes: int
    by_category: dict[str, tuple[int, int]]  # category -> (files, bytes)
    by_folder: list[tuple[str, int, int]]  # (folder, files, bytes), sorted by folder


def file_wire(f: File) -> dict:
    return {"id": f.id, "name": f.name, "folder": f.folder,
            "room": str(f.room_id) if f.room_id is not None else None,
            "content_type": f.content_type, "category": f.category, "size": f.size,
            "sha256": f.sha256, "created_at": iso(f.created_at), "owner": str(f.owner_id)}


def folders_wire(rows: list[tuple[str, int, int]]) -> list[dict]:
    return [{"folder": f, "files": n, "bytes": b} for f, n, b in rows]


def statistics_wire(st: Statistics) -> dict:
    """Totals; every category (zeros included, in FILE_CATEGORIES order); every folder."""
    cats = st.by_category
    return {"room": str(st.room_id) if st.room_id is not None else None, "files": st.files, "bytes": st.bytes,
            "by_category": [{"category": c, "files": cats.get(c, (0, 0))[0], "bytes": cats.get(c, (0, 0))[1]}
                            for c in FILE_CATEGORIES],
            "by_folder": folders_wire(st.by_folder)}


def parse_room(raw: str | None) -> int | None:
    """The ``room`` query value: None when absent or empty, else a room id."""
    return parse_id(raw, "room") if raw else None


def parse_folder_query(raw: str | None) -> str | None:
    """The ``folder`` query value: None when absent (every folder), else a normalised folder."""
    return normalize_folder(raw) if raw is not None else None


def parse_folder_body(body: dict, field: str = "folder") -> str:
    """The required ``folder`` (or ``field``) of a move or copy, normalised."""
    if field not in body:
        raise BadRequest(f"{field} is required")
    return normalize_folder(body[field])


def parse_room_body(body: dict) -> int | None:
    """The optional ``room`` of a folder operation: None (absent or null: the caller's own
    files) or a room id."""
    room = body.get("room")
    return None if room is None or room == "" else parse_id(room, "room")


def parse_copy(body: dict) -> CopyRequest:
    folder = parse_folder_body(body)
    if "room" not in body:
        return CopyRequest(folder, False, None)
    return CopyRequest(folder, True, None if body["room"] is None else parse_id(body["room"], "room"))


def parse_link_request(body: dict) -> LinkRequest:
    """``{disposition?: "attachment"|"inline", expires_in?: seconds}`` (defaults: attachment, 300)."""
    disposition = body.get("disposition", "attachment")
    if disposition not in DISPOSITIONS:
        raise BadRequest("disposition must be 'attachment' or 'inline'")
    return LinkRequest(disposition, bounded_int(body.get("expires_in", DEFAULT_LINK_TTL_S), "expires_in", 1, 2**62))
