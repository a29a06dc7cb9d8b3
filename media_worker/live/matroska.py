"""One encoded stream into one Matroska file, remuxed by PyAV: no codec is opened.

Crash safety: FFmpeg's Matroska muxer holds the current cluster in memory and writes it when
the next one starts. ``cluster_time_limit`` closes a cluster every ``cluster_ms`` of media and
``flush_packets`` hands every finished cluster to the file at once (a :class:`BackgroundFile`,
whose thread passes it to the OS within microseconds), so after the writing process dies
(SIGKILL included) the file on disk holds every cluster but the last: it is readable, with an
unknown segment size, up to at most ``cluster_ms`` before the kill. Without both options
nothing reaches the disk until 32 KiB are buffered (seconds of audio).

Timestamps: Matroska stores milliseconds (FFmpeg's muxer fixes TimestampScale at 1 ms), so
packets given in the codec clock are rounded to the millisecond on disk and read back with a
``1/1000`` time base.
"""
from __future__ import annotations

import io
import struct
from concurrent.futures import Future
from fractions import Fraction
from pathlib import Path

import av

from media_worker.live.disk import BackgroundFile
from media_worker.bitstreams.opus import opus_head

CLOCK_RATES = {"vp8": 90000, "h264": 90000, "opus": 48000}


class MatroskaTrackFile:
    """A Matroska file with one stream of ``codec`` (``vp8``, ``h264`` or ``opus``).

    Video needs the picture size of the first frame for the header; H.264 parameter sets are
    taken from the first packet by PyAV (which therefore must hold SPS and PPS, as a WebRTC
    keyframe does) and later ones stay in-band. Opus gets an ``OpusHead`` with pre-skip 0.
    Raises ``av.FFmpegError``/``OSError`` when the file cannot be created or written (a failed
    background write surfaces at a later :meth:`write` or in :meth:`close`'s future).
    """

    def __init__(self, path: Path, codec: str, *, width: int = 0, height: int = 0,
                 cluster_ms: int = 500):
        self.path = Path(path)
        self.codec = codec
        self.time_base = Fraction(1, CLOCK_RATES[codec])
        self._file = BackgroundFile(self.path)
        try:
            self._container = av.open(self._file, "w", format="matroska", options={
                "cluster_time_limit": str(cluster_ms),
                "flush_packets": "1",
            })
        except BaseException:
            self._file.close()
            raise
        try:
            if codec == "opus":
                self._stream = _add_opus_stream(self._container)
            else:
                self._stream = self._container.add_mux_stream(codec, width=width, height=height)
            self._stream.time_base = self.time_base
        except BaseException:
            self._container.close()
            self._file.close()
            raise

    def write(self, data: bytes, pts: int, keyframe: bool) -> None:
        """Mux one encoded frame at ``pts`` (in ``time_base``; strictly increasing)."""
        packet = av.Packet(data)
        packet.stream = self._stream
        packet.time_base = self.time_base
        packet.pts = packet.dts = pts
        packet.is_keyframe = keyframe
        self._container.mux_one(packet)

    def close(self) -> Future:
        """Mux the last cluster, the cues and the final sizes; returns the future of the file's
        last write (see :meth:`BackgroundFile.close`). Idempotent."""
        container, self._container = self._container, None
        try:
            if container is not None:
                container.close()
        finally:
            closed = self._file.close()
        return closed


def _add_opus_stream(container: av.container.OutputContainer) -> av.stream.Stream:
    """Add an Opus stream whose parameters carry our ``OpusHead``.

    PyAV can only set extradata on an output stream by copying it from another stream, and only
    a demuxer can make one without opening an encoder (whose ``OpusHead`` would carry its own
    pre-skip). So the template comes from a three-page Ogg Opus file built in memory:
    ``OpusHead``, ``OpusTags`` and one empty 20 ms packet.
    """
    head = opus_head()
    tags = b"OpusTags" + struct.pack("<I", 6) + b"podium" + struct.pack("<I", 0)
    data = _ogg_page(head, 0, 0x02) + _ogg_page(tags, 1, 0) + _ogg_page(b"\xf8", 2, 0x04, 960)
    with av.open(io.BytesIO(data), format="ogg") as template:
        return container.add_stream_from_template(template.streams.audio[0])


def _ogg_page(payload: bytes, seq: int, flags: int, granule: int = 0) -> bytes:
    """One Ogg page (RFC 3533 §6) holding one packet of < 255 * 255 bytes."""
    lacing = bytes([255] * (len(payload) // 255) + [len(payload) % 255])
    header = (b"OggS" + bytes([0, flags]) + struct.pack("<qII", granule, 1, seq)
              + b"\0\0\0\0" + bytes([len(lacing)]) + lacing)
    page = header + payload
    return page[:22] + struct.pack("<I", _ogg_crc(page)) + page[26:]


def _crc_table() -> list[int]:
    table = []
    for i in range(256):
        r = i << 24
        for _ in range(8):
            r = ((r << 1) ^ 0x04C11DB7) if r & 0x80000000 else r << 1
        table.append(r & 0xFFFFFFFF)
    return table


_CRC_TABLE = _crc_table()


def _ogg_crc(data: bytes) -> int:
    """Ogg's CRC-32: polynomial 0x04C11DB7, not reflected, initial value 0."""
    crc = 0
    for byte in data:
        crc = ((crc << 8) & 0xFFFFFFFF) ^ _CRC_TABLE[(crc >> 24) ^ byte]
    return crc
