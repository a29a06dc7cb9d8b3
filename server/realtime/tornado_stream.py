"""The one place Podium reads a private field of Tornado (pinned in requirements.txt): how many
bytes a stream has accepted but not yet handed to the kernel. Tornado has no public API for
it; ``tests/realtime/test_tornado_stream.py`` pins the version this was checked against and
proves the number on a real socket, so an upgrade that renames the fields fails loudly there.
"""
from __future__ import annotations

from tornado.iostream import IOStream

CHECKED_WITH_TORNADO = "6.6.1"


def pending_write_bytes(stream: IOStream) -> int:
    """Bytes written to ``stream`` but not yet sent to the kernel."""
    return stream._total_write_index - stream._total_write_done_index  # type: ignore[attr-defined]
