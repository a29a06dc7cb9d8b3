"""``python -m media_worker.post <recording dir>``: post-process one recording in this process.

stdout carries one JSON object per line: ``{"percent": n}`` while the composite is encoded,
then ``{"assets": [...]}`` on success, or ``{"error": "..."}`` with exit status 1. Logs go to
stderr. The process lowers its own CPU priority so a worker recording live classes on the same
machine keeps its event loop responsive.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys

from media_worker.post.composite import EncodeSettings
from media_worker.post.manifest import ManifestError
from media_worker.post.run import run


def _emit(obj: dict) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m media_worker.post",
                                     description="Build the outputs of one recording directory.")
    parser.add_argument("recording_dir")
    parser.add_argument("--fps", type=int, default=EncodeSettings.fps)
    parser.add_argument("--preset", default=EncodeSettings.preset,
                        help="libx264 preset (default %(default)s)")
    parser.add_argument("--crf", type=int, default=EncodeSettings.crf)
    parser.add_argument("--nice", type=int, default=10, help="added CPU niceness (0: none)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s %(message)s")
    if args.nice and hasattr(os, "nice"):
        os.nice(args.nice)
    settings = EncodeSettings(fps=args.fps, preset=args.preset, crf=args.crf)
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
