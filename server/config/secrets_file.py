"""Secrets kept in a JSON file: generated once, then read back on every start."""
from __future__ import annotations

import json
import os
import secrets
from pathlib import Path


def kept_secrets(path: Path, names: tuple[str, ...], nbytes: int) -> dict[str, str]:
    """The JSON file of secrets at ``path`` (mode 0600, written atomically), with a fresh
    random secret for each of ``names`` it did not hold yet; existing ones are kept."""
    stored = json.loads(path.read_text()) if path.exists() else {}
    changed = False
    for name in names:
        if not stored.get(name):
            stored[name] = secrets.token_urlsafe(nbytes)
            changed = True
    if changed:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(stored, f)
        os.replace(tmp, path)
    return stored
