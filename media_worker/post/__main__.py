"""``python -m media_worker.post <recording dir>``: post-process one recording in this process.

stdout carries one JSON object per line: ``{"percent": n}`` while the composite is encoded,
then ``{"assets": [...]}`` on success, or ``{"error": "..."}`` with exit status 1. Logs go to
stderr. The process lowers its own CPU priority so a worker recording live classes on the same
machine keeps its event loop responsive.
"""
from __future__ import annotations

import json
import logging
import sys

from media_worker.post.child_cli import child_parser, start_child
from media_worker.post.manifest import ManifestError
from media_worker.post.run import run


def _emit(obj: dict) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def main(argv: list[str] | None = None) -> int:
    parser = child_parser("python -m media_worker.post",
                          "Build the outputs of one recording directory.")
    args = parser.parse_args(argv)
    settings = start_child(args)
    try:
        assets = run(args.recording_dir, lambda p: _emit({"percent": p}), settings=settings)
    except ManifestError as exc:
        _emit({"error": str(exc)})
        return 1
    except Exception as exc:  # the parent needs one line saying why, whatever it was
        logging.getLogger("podium.worker.post").exception("post-processing failed")
        _emit({"error": f"{type(exc).__name__}: {exc}"})
        return 1
    _emit({"assets": assets})
    return 0


if __name__ == "__main__":
    sys.exit(main())
