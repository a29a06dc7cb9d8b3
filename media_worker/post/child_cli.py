"""The command line the post-processing children share (``python -m media_worker.post`` and
``python -m media_worker.post.segment_render``): the recording directory, the encode options,
and how such a child starts (logs to stderr, a lower CPU priority)."""
from __future__ import annotations

import argparse
import logging
import os
import sys

from media_worker.post.composite import EncodeSettings


def child_parser(prog: str, description: str | None = None) -> argparse.ArgumentParser:
    """A parser taking ``recording_dir`` and ``--fps``/``--preset``/``--crf``/``--nice``;
    the caller adds its own arguments after ``recording_dir``."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("recording_dir")
    parser.add_argument("--fps", type=int, default=EncodeSettings.fps)
    parser.add_argument("--preset", default=EncodeSettings.preset,
                        help="libx264 preset (default %(default)s)")
    parser.add_argument("--crf", type=int, default=EncodeSettings.crf)
    parser.add_argument("--nice", type=int, default=10, help="added CPU niceness (0: none)")
    return parser


def start_child(args: argparse.Namespace) -> EncodeSettings:
    """Send logs to stderr (stdout is the child's JSON lines), add ``args.nice`` to this
    process's niceness so a worker recording live classes on the same machine keeps its event
    loop responsive, and return the encode settings the arguments name."""
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s %(message)s")
    if args.nice and hasattr(os, "nice"):
        os.nice(args.nice)
    return EncodeSettings(fps=args.fps, preset=args.preset, crf=args.crf)
