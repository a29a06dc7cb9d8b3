"""VideoRoom plugin request bodies (no I/O): what Podium asks of a Janus room.

Room ids are numbers (VideoRoom's default ``string_ids = false``); every call session gets
its own room and a generated ``secret`` that every moderation request must carry. Media
requests (``publish``, ``start``, ``configure``) go with a JSEP where the flow needs one.
"""
from __future__ import annotations

from typing import Any

PLUGIN = "janus.plugin.videoroom"
NO_SUCH_FEED = 428  # JANUS_VIDEOROOM_ERROR_NO_SUCH_FEED: the publisher left (or has not started)


def _body(request: str, **fields: Any) -> dict:
    body = {"request": request}
    body.update({k: v for k, v in fields.items() if v is not None})
    return body


def create_room(room: int, secret: str, *, admin_key: str | None = None, publishers: int = 100,
                bitrate: int = 1_500_000, fir_freq: int = 10, description: str | None = None,
                audiolevel_event: bool = True) -> dict:
    """A private room; talking events on (``audiolevel_event``); simulcast needs no setting."""
    return _body("create", room=room, secret=secret, admin_key=admin_key, permanent=False,
                 is_private=True, publishers=publishers, bitrate=bitrate, fir_freq=fir_freq,
                 description=description, audiolevel_event=audiolevel_event,
                 audio_active_packets=50, audio_level_average=40, notify_joining=True)


def destroy_room(room: int, secret: str) -> dict:
    return _body("destroy", room=room, secret=secret, permanent=False)


def exists(room: int) -> dict:
    return _body("exists", room=room)


def list_participants(room: int) -> dict:
    return _body("listparticipants", room=room)


def join_publisher(room: int, *, feed_id: int | None = None, display: str | None = None) -> dict:
    return _body("join", ptype="publisher", room=room, id=feed_id, display=display)


def publish(*, audio_codec: str | None = None, video_codec: str | None = None,
            display: str | None = None) -> dict:
    """Goes with the publisher's JSEP offer; Janus answers ``configured`` with its answer."""
    return _body("publish", audiocodec=audio_codec, videocodec=video_codec, display=display)


def unpublish() -> dict:
    return _body("unpublish")


def join_subscriber(room: int, feeds: list[int], *, private_id: int | None = None) -> dict:
    """Multistream: every stream of each feed on one connection; Janus answers with an offer."""
    return _body("join", ptype="subscriber", room=room, use_msid=True, private_id=private_id,
                 streams=[{"feed": f} for f in feeds])


def subscribe(feeds: list[int]) -> dict:
    """Add feeds to a subscription: Janus answers ``updated`` with a new offer."""
    return _body("subscribe", streams=[{"feed": f} for f in feeds])


def unsubscribe(feeds: list[int]) -> dict:
    return _body("unsubscribe", streams=[{"feed": f} for f in feeds])


def start() -> dict:
    """Goes with the subscriber's JSEP answer."""
    return _body("start")


def configure(**fields: Any) -> dict:
    """Publisher or subscriber settings: e.g. ``mid`` + ``substream``/``temporal`` for a layer,
    ``streams=[{"mid": "0", "send": False}]``, ``bitrate``; a JSEP may go with it (renegotiation)."""
    return _body("configure", **fields)


def kick(room: int, secret: str, feed_id: int) -> dict:
    return _body("kick", room=room, secret=secret, id=feed_id)


def moderate(room: int, secret: str, feed_id: int, mid: str, mute: bool) -> dict:
    """Mute (or unmute) one stream of a publisher at Janus: nothing from it is relayed."""
    return _body("moderate", room=room, secret=secret, id=feed_id, mid=mid, mute=mute)

