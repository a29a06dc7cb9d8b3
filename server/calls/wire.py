"""Calls on the wire (PROTOCOL §2.2, §3): session and participant shapes, and the parsing of
media states and signals into typed values."""
from __future__ import annotations

from server.kernel.clock import iso
from server.kernel.errors import BadRequest

MEDIA_KINDS = ("audio", "video", "screen")
MAX_SDP_BYTES = 60 * 1024
MAX_NEGOTIATION_ID = 64
SIGNALS = ("rtc.offer", "rtc.answer", "rtc.ice")


def session_wire(session, recording: dict | None = None) -> dict:
    return {"id": str(session.id), "room": str(session.room_id), "started_by": str(session.started_by),
            "started_at": iso(session.started_at), "ended_at": iso(session.ended_at),
            "recording": recording,
            # what students may send (calls/policy.py)
            "students_video": session.students_video is not False,
            "students_screen": session.students_screen is not False,
            "lobby": session.lobby is True}  # a waiting room (calls/lobby.py)


def parse_join_media(media) -> dict[str, bool]:
    """The ``media`` of call.join: None, or a subset of audio/video/screen mapped to booleans."""
    if media is None:
        return {}
    if (not isinstance(media, dict) or not set(media) <= set(MEDIA_KINDS)
            or not all(isinstance(v, bool) for v in media.values())):
        raise BadRequest("media must map audio/video/screen to booleans")
    return media


def parse_media_change(msg: dict) -> dict[str, bool]:
    """call.media: at least one of audio/video/screen, each a boolean."""
    changes = {k: msg[k] for k in MEDIA_KINDS if k in msg}
    if not changes or not all(isinstance(v, bool) for v in changes.values()):
        raise BadRequest("send at least one of audio, video, screen as a boolean")
    return changes


def parse_flag(msg: dict, name: str) -> bool:
    value = msg.get(name)
    if not isinstance(value, bool):
        raise BadRequest(f"{name} must be a boolean")
    return value


def parse_peer_id(msg: dict) -> str:
    peer_id = msg.get("peer_id")
    if not isinstance(peer_id, str):
        raise BadRequest("peer_id must be a participant's peer_id")
    return peer_id


def parse_target(msg: dict) -> str:
    to = msg.get("to")
    if not isinstance(to, str):
        raise BadRequest("to must be a peer_id")
    return to


def signal_event(kind: str, session_id: int, sender: str, msg: dict) -> dict:
    """The rtc.offer/answer/ice event the target receives, from a signal's fields."""
    negotiation_id = msg.get("negotiation_id")
    if negotiation_id is not None and (not isinstance(negotiation_id, (str, int)) or isinstance(negotiation_id, bool)
                                       or len(str(negotiation_id)) > MAX_NEGOTIATION_ID):
        raise BadRequest("negotiation_id must be a short string or number")
    event = {"type": kind, "session": str(session_id), "from": sender, "negotiation_id": negotiation_id}
    if kind == "rtc.ice":
        cand = msg.get("candidate")
        if cand is not None and not isinstance(cand, (dict, str)):
            raise BadRequest("candidate must be an object or null")
        event["candidate"] = cand
    else:
        sdp = msg.get("sdp")
        if isinstance(sdp, dict):  # an RTCSessionDescriptionInit is accepted too
            sdp = sdp.get("sdp")
        if not isinstance(sdp, str) or not sdp or len(sdp) > MAX_SDP_BYTES:
            raise BadRequest("sdp must be a non-empty SDP string")
        event["sdp"] = sdp
    return event
