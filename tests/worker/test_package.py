"""The worker is its own program (docs/ARCHITECTURE.md): it may run on another machine."""
from __future__ import annotations

import pkgutil
import subprocess
import sys
from pathlib import Path

import media_worker

ROOT = Path(__file__).resolve().parents[2]


def test_no_worker_module_imports_the_server():
    """Importing every module of media_worker loads nothing from the server package."""
    modules = [m.name for m in pkgutil.walk_packages(media_worker.__path__, "media_worker.")]
    assert "media_worker.credential" in modules and "media_worker.post.composite" in modules
    code = ("import importlib, sys\n"
            f"for name in {modules!r}: importlib.import_module(name)\n"
            "print(sorted(m for m in sys.modules if m == 'server' or m.startswith('server.')))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
