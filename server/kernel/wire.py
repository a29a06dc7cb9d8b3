"""The wire shape of a person (PROTOCOL §1), which every feature shows: rooms' members,
attendance, accounts, call participants."""
from __future__ import annotations


def user_wire(user) -> dict:
    """``{id, username, display_name, role}`` of a user row."""
    return {"id": str(user.id), "username": user.username, "display_name": user.display_name,
            "role": user.role}
