"""Post-processing of a recording directory (docs/RECORDING.md): composite ``class.mp4``,
per-participant files, ``chat.vtt``, ``thumbnail.jpg`` and ``manifest.json`` in ``out/``.

CPU-bound; the worker runs it in a child process through ``postprocess`` (``child.py``), which
runs ``python -m media_worker.post``. ``run`` is the same work in the calling process.
"""
from media_worker.post.child import PostprocessError, postprocess
from media_worker.post.manifest import ManifestError
from media_worker.post.run import run

__all__ = ["ManifestError", "PostprocessError", "postprocess", "run"]
