"""The server's clock: naive UTC with millisecond precision, and its ISO-8601 wire form."""
from __future__ import annotations

from datetime import datetime, timezone

def utcnow() -> datetime:
    """Naive UTC now with millisecond precision (what the database stores)."""
    now = datetime.now(timezone.utc).replace(tzinfo=None)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def iso(dt: datetime | None) -> str | None:
    """ISO-8601 UTC with milliseconds: ``2026-11-21T10:20:30.123Z``."""
    if dt is None:
        return None
    if dt.tzinfo is not None:
        dt = dt.astimezone(timezone.utc).replace(tzinfo=None)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"
