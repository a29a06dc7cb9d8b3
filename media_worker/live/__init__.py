"""The worker's live recording path: encoded frames from aiortc receivers, remuxed without
decoding into one crash-safe Matroska file per track, plus the ``events.jsonl`` manifest
(docs/RECORDING.md).

Typical use by the worker's job (``media_worker/job.py``, whose peer connections come from
``media_worker/peers.py``)::

    session = RecordingSession(workdir / f"rec-{rid}", recording_id=rid, session_id=sid,
                               room_id=room)
    session.start()
    pc = RTCPeerConnection(config)
    add_recvonly_transceivers(pc)
    session.attach(peer_id, pc)          # before setLocalDescription/setRemoteDescription
    ...                                  # offer/answer/ICE as usual
    session.participant_joined(peer_id, user); session.media(peer_id, {...})
    await session.stop("stop")           # then close the peer connections
    # after the stop: chat and marks from the server's timeline, through EventLog.append_dated
"""
from media_worker.live.events import EventLog
from media_worker.live.passthrough import (EncodedFrame, PassthroughUnsupported, ReceiverTap,
                                           install_passthrough)
from media_worker.live.session import STOP_REASONS, RecordingSession
from media_worker.live.track_writer import LiveOptions, TrackWriter
from media_worker.live.transceivers import add_recvonly_transceivers

__all__ = [
    "STOP_REASONS", "EncodedFrame", "EventLog", "LiveOptions", "PassthroughUnsupported",
    "ReceiverTap", "RecordingSession", "TrackWriter", "add_recvonly_transceivers",
    "install_passthrough",
]
