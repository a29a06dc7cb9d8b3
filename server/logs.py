"""Logging set-up: every line from a socket names its connection and user."""
from __future__ import annotations

import json
import logging
import sys


class _Context(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.ctx = (f" [conn={record.conn} user={record.user}]"
                      if hasattr(record, "conn") else "")
        return True


class _Json(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out = {"ts": self.formatTime(record), "level": record.levelname, "logger": record.name,
               "msg": record.getMessage()}
        for key in ("conn", "user"):
            if hasattr(record, key):
                out[key] = str(getattr(record, key))
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out)


def make_handler(json_lines: bool = False, stream=None) -> logging.Handler:
    """A handler whose lines name the connection and user when the record has them."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.addFilter(_Context())
    handler.setFormatter(_Json() if json_lines else
                         logging.Formatter("%(asctime)s %(levelname)s %(name)s%(ctx)s %(message)s"))
    return handler


def setup_logging(json_lines: bool = False, level: int = logging.INFO) -> None:
    root = logging.getLogger()
    root.handlers[:] = [make_handler(json_lines)]
    root.setLevel(level)
    logging.getLogger("tornado.access").setLevel(logging.WARNING)
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)
