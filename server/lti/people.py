"""LMS people as Podium users, linked by ``(issuer, sub)`` only (never by name or email)."""
from __future__ import annotations

import hashlib

from server.db import lti as q
from server.db import users as uq


async def ensure_user(s, issuer: str, sub: str, name: str | None, role: str):
    """The user linked to ``(issuer, sub)``, created without a password when missing. ``name``
    (None: the LMS shares none) renames them; an instructor role raises a student account."""
    user_id = await q.linked_user(s, issuer, sub)
    if user_id is None:
        user = await uq.create_user(s, username_for(issuer, sub), name or "LMS user", None, role)
        await q.link_user(s, issuer, sub, user.id)
        return user
    user = await uq.get_user(s, user_id)
    if name:
        user.display_name = name
    if role == "instructor" and user.role == "student":
        user.role = "instructor"
    return user


def username_for(issuer: str, sub: str) -> str:
    """A username nobody can sign up with (no password either): ``lti-`` and a hash of the link."""
    return "lti-" + hashlib.sha256(f"{issuer}\n{sub}".encode()).hexdigest()[:40]
