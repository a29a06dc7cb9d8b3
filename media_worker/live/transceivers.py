"""The recorder's side of the negotiation: it offers to receive only, and only codecs the live
path can remux."""
from __future__ import annotations

from aiortc import RTCPeerConnection, RTCRtpReceiver, RTCRtpTransceiver

RECORDABLE_MIME_TYPES = {
    "audio": ("audio/opus",),
    "video": ("video/vp8", "video/h264", "video/rtx"),  # rtx: retransmissions of the others
}


def add_recvonly_transceivers(pc: RTCPeerConnection) -> list[RTCRtpTransceiver]:
    """Add one ``recvonly`` audio and one ``recvonly`` video transceiver to ``pc`` (before
    ``createOffer``), limited to Opus, VP8 and H.264 so the answerer cannot pick G.711/G.722."""
    transceivers = []
    for kind, wanted in RECORDABLE_MIME_TYPES.items():
        transceiver = pc.addTransceiver(kind, direction="recvonly")
        codecs = [c for c in RTCRtpReceiver.getCapabilities(kind).codecs
                  if c.mimeType.lower() in wanted]
        transceiver.setCodecPreferences(codecs)
        transceivers.append(transceiver)
    return transceivers
