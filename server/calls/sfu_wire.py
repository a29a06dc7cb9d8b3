"""The ``sfu.*`` wire (docs/PROTOCOL-ADDITIONS.md "SFU calls"): parsing what browsers and the
media worker send, and Janus's subscription streams as the wire names them. No I/O."""
from __future__ import annotations

from server.calls.wire import MAX_SDP_BYTES
from server.kernel.errors import BadRequest

TARGETS = ("publish", "subscribe", "screen")
SUBSTREAMS = (0, 1, 2)  # simulcast layers, smallest first
SOURCES = ("camera", "screen")
MAX_MID_CHARS = 16


def parse_sdp(msg: dict) -> str:
    sdp = msg.get("sdp")
    if isinstance(sdp, dict):  # an RTCSessionDescriptionInit is accepted too
        sdp = sdp.get("sdp")
    if not isinstance(sdp, str) or not sdp or len(sdp) > MAX_SDP_BYTES:
        raise BadRequest("sdp must be a non-empty SDP string")
    return sdp


def parse_ice(msg: dict) -> tuple[str, dict | None]:
    """``target`` (publish | subscribe) and an RTCIceCandidateInit, or null: end of candidates."""
    target = msg.get("target")
    if target not in TARGETS:
        raise BadRequest("target must be publish, subscribe or screen")
    cand = msg.get("candidate")
    if cand is None:
        return target, None
    if (not isinstance(cand, dict) or not isinstance(cand.get("candidate"), str)
            or len(cand["candidate"]) > 1024):
        raise BadRequest("candidate must be an RTCIceCandidateInit object or null")
    out = {"candidate": cand["candidate"]}
    if isinstance(cand.get("sdpMid"), str):
        out["sdpMid"] = cand["sdpMid"]
    if isinstance(cand.get("sdpMLineIndex"), int) and not isinstance(cand.get("sdpMLineIndex"), bool):
        out["sdpMLineIndex"] = cand["sdpMLineIndex"]
    return target, out


def parse_configure(msg: dict) -> dict:
    """``sfu.configure``: ``mid`` (a string, the subscription's m-line) and at least one of
    ``substream`` (0, 1 or 2: the simulcast layer) and ``send`` (whether Janus relays it at all)
    → the Janus ``streams`` entry."""
    mid = msg.get("mid")
    if not isinstance(mid, str) or not mid or len(mid) > MAX_MID_CHARS:
        raise BadRequest("mid must be the subscription's m-line id (a short string)")
    stream: dict = {"mid": mid}
    if "substream" in msg and msg["substream"] is not None:
        sub = msg["substream"]
        if isinstance(sub, bool) or sub not in SUBSTREAMS:
            raise BadRequest("substream must be 0, 1 or 2")
        stream["substream"] = sub
    if "send" in msg and msg["send"] is not None:
        if not isinstance(msg["send"], bool):
            raise BadRequest("send must be true or false")
        stream["send"] = msg["send"]
    if len(stream) == 1:
        raise BadRequest("give substream, send or both")
    return stream


def parse_source(msg: dict) -> str:
    source = msg.get("source", "camera")
    if source is None:
        source = "camera"
    if source not in SOURCES:
        raise BadRequest("source must be camera or screen")
    return source


def audio_mids(sdp: str) -> list[str]:
    """The ``a=mid`` of each audio m-line of an SDP (a publisher's offer: Janus keeps its mids)."""
    return mids_of(sdp, "audio")


def video_mids(sdp: str) -> list[str]:
    return mids_of(sdp, "video")


def mids_of(sdp: str, media: str) -> list[str]:
    mids, kind = [], None
    for line in sdp.splitlines():
        if line.startswith("m="):
            kind = line[2:].split(" ", 1)[0]
        elif kind == media and line.startswith("a=mid:"):
            mids.append(line[6:].strip())
    return mids


def screen_display(peer_id: str) -> str:
    """The Janus display name of a participant's screen share: subscribers see it as a
    stream of ``<peer_id>:screen``."""
    return f"{peer_id}:screen"


def streams_wire(streams: list[dict]) -> list[dict]:
    """Janus's subscription streams → ``{mid, type, peer_id, feed}`` (``peer_id``: the
    publisher's, which Podium gave Janus as the feed's display name)."""
    return [{"mid": s.get("mid"), "type": s.get("type"), "peer_id": s.get("feed_display"),
             "feed": str(s["feed_id"]) if s.get("feed_id") is not None else None}
            for s in streams if s.get("type") in ("audio", "video")]
