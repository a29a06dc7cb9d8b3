"""Chat requests parsed into typed values at the edge (PROTOCOL §2.1, §3); message frames.

The message shape itself is ``rooms.wire.message_wire`` (system messages are messages too).
"""
from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from server.db.models import MESSAGE_KINDS
from server.kernel.actor import Actor, bounded_int, parse_id
from server.kernel.errors import BadRequest, TooLarge
from server.kernel.frames import event_frame

# ``system`` messages are the server's own; ``poll`` messages are made by ``poll.create`` (server/polls/).
CLIENT_KINDS = tuple(k for k in MESSAGE_KINDS if k not in ("system", "poll"))
MAX_SYNC = 500
MAX_EMOJI_LEN = 32
MAX_SEQ = 2**62


@dataclass
class SendRequest:
    """A validated send, queued for the writer; ``future`` resolves after commit."""

    actor: Actor
    room_id: int
    kind: str
    content: str
    client_msg_id: str
    file_id: str | None
    reply_to: int | None
    future: asyncio.Future = field(default=None)  # type: ignore[assignment]

    @property
    def key(self) -> tuple[int, int, str]:
        return self.room_id, self.actor.id, self.client_msg_id


def parse_send(actor: Actor, room_id: int, body: dict, max_content_bytes: int) -> SendRequest:
    """A send's fields (``message.send`` or ``POST …/messages``); BadRequest/TooLarge."""
    kind = body.get("kind", "text")
    content = body.get("content", "")
    cmid = body.get("client_msg_id")
    file_id = body.get("file_id")
    reply_to = body.get("reply_to")
    if kind not in CLIENT_KINDS:
        raise BadRequest(f"kind must be one of {', '.join(CLIENT_KINDS)}")
    if not isinstance(cmid, str) or not 0 < len(cmid) <= 64:
        raise BadRequest("client_msg_id must be a string of 1..64 characters")
    if not isinstance(content, str):
        raise BadRequest("content must be a string")
    if len(content.encode()) > max_content_bytes:
        raise TooLarge(f"content is larger than {max_content_bytes} bytes")
    if kind in ("text", "announcement") and not content.strip():
        raise BadRequest("content must not be empty")
    if file_id is not None and (not isinstance(file_id, str) or len(file_id) > 64):
        raise BadRequest("file_id must be an id string")
    if kind in ("image", "file", "audio", "video") and not file_id:
        raise BadRequest(f"a {kind} message needs a file_id")
    reply_id = parse_id(reply_to, "reply_to") if reply_to is not None else None
    return SendRequest(actor, room_id, kind, content, cmid, file_id, reply_id)


def parse_edit(content, max_content_bytes: int) -> str:
    if not isinstance(content, str) or not content.strip():
        raise BadRequest("content must be a non-empty string")
    if len(content.encode()) > max_content_bytes:
        raise TooLarge(f"content is larger than {max_content_bytes} bytes")
    return content


def parse_reaction(emoji, on) -> tuple[str, bool]:
    if not isinstance(emoji, str) or not 0 < len(emoji) <= MAX_EMOJI_LEN or emoji.isspace():
        raise BadRequest(f"emoji must be a string of 1..{MAX_EMOJI_LEN} characters")
    if not isinstance(on, bool):
        raise BadRequest("on must be a boolean")
    return emoji, on


def parse_page(since, limit) -> tuple[int, int]:
    """``since`` (default 0) and ``limit`` (default 100, at most MAX_SYNC) of a sync page."""
    return (bounded_int(since, "since", 0, MAX_SEQ, default=0),
            bounded_int(limit, "limit", 1, MAX_SYNC, default=100))


def parse_search(q) -> str:
    if not isinstance(q, str) or not q.strip() or len(q) > 500:
        raise BadRequest("q must be a non-empty string of at most 500 characters")
    return q


def new_message_frame(wire: dict) -> bytes:
    return event_frame({"type": "message.new", "message": wire})
