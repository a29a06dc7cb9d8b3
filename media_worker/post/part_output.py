"""Writing a media file so that its final name only ever holds a complete file."""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import av
import av.container
import av.error


@contextmanager
def part_output(path: Path, format: str, *, container_options: dict[str, str] | None = None
                ) -> Iterator[av.container.OutputContainer]:
    """An output container writing ``path.part``. When the block ends without an exception the
    container is closed (flushing the muxer) and ``path.part`` is renamed to ``path``; on any
    exception, including one from that close, it is closed if it can be, ``path.part`` is
    removed and the exception propagates. ``path`` is never left half written."""
    tmp = path.with_name(path.name + ".part")
    output = av.open(str(tmp), "w", format=format, container_options=container_options)
    try:
        yield output
        output.close()
    except BaseException:
        try:
            output.close()
        except av.error.FFmpegError:
            pass  # the original error is the one worth raising
        tmp.unlink(missing_ok=True)
        raise
    tmp.replace(path)
