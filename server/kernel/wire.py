"""The wire shape of a person (PROTOCOL §1), which every feature shows: rooms' members,
attendance, accounts, call participants."""
from __future__ import annotations


def user_wire(user) -> dict:
    """``{id, username, display_name, role, avatar}`` of a user row."""
    return {"id": str(user.id), "username": user.username, "display_name": user.display_name,
            "role": user.role, "avatar": avatar_wire(getattr(user, "avatar", None))}


def avatar_wire(token: str | None) -> dict | None:
    """A user's avatar as URLs on this server (``accounts/avatar_store.py`` serves them):
    ``{small: 64×64, large: 256×256}`` WebP images, or None without an avatar."""
    if not token:
        return None
    return {"small": f"/avatars/{token}/64", "large": f"/avatars/{token}/256"}
