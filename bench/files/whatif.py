"""Start Podium (``python -m server serve``) with one or more candidate fixes patched in at run
time, so ``run.py --whatif NAME`` can measure a change before anyone makes it in ``server/``.
Nothing here is used by the default benchmark run, and nothing in ``server/`` is modified.

    python bench/files/whatif.py chunk1m,yield      # cwd: the server source; env as run.py sets it

``BENCH_HTTP_CHUNK_KIB`` (default 1024) tunes ``chunk1m``.

Patches:

* ``chunk1m``: ``HTTPServer(chunk_size=1 MiB)`` instead of Tornado's 64 KiB default, so a
  streamed upload reaches ``FilesHandler.data_received`` (and the multipart parser, the hash,
  the storage writer) in 1 MiB pieces: 16x fewer trips through Tornado's body loop and
  ``Upload.feed``. In ``server/`` this would be one argument in ``server/__main__.py``.
* ``yield``: ``FilesHandler.data_received`` gives the event loop up (``await asyncio.sleep(0)``)
  after every body chunk. Tornado delivers buffered chunks back to back without yielding, and
  ``DiskWriter.write`` yields only when its 1 MiB buffer goes to the worker thread, so each
  upload holds the loop for ~16 chunks at a time.
``sendfile`` was a third patch here (measured 1.01x nginx); it is built in now
(server/files/sendfile.py, issue 18.4), so the default run measures it.
"""
from __future__ import annotations

import asyncio
import functools
import os
import sys

sys.path.insert(0, os.getcwd())  # the server source (run.py starts this with cwd = SRC)



def patch_chunk1m() -> None:
    import tornado.httpserver

    orig = tornado.httpserver.HTTPServer.initialize
    size = int(os.environ.get("BENCH_HTTP_CHUNK_KIB", "1024")) * 1024

    @functools.wraps(orig)
    def initialize(self, *args, **kwargs):
        kwargs.setdefault("chunk_size", size)
        return orig(self, *args, **kwargs)

    tornado.httpserver.HTTPServer.initialize = initialize


def patch_yield() -> None:
    from server.files import handlers

    orig = handlers.FilesHandler.data_received

    async def data_received(self, chunk: bytes) -> None:
        await orig(self, chunk)
        await asyncio.sleep(0)

    handlers.FilesHandler.data_received = data_received


PATCHES = {"chunk1m": patch_chunk1m, "yield": patch_yield}


def main() -> None:
    names = [n for n in sys.argv[1].split(",") if n] if len(sys.argv) > 1 else []
    for name in names:
        PATCHES[name]()
    from server.__main__ import main as serve
    serve(["serve"])


if __name__ == "__main__":
    main()
