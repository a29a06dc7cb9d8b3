"""The one room-role rule (server/rooms/membership.py ``effective_role``), without a database."""
from __future__ import annotations

import pytest

from server.kernel.actor import Actor
from server.rooms.membership import effective_role


def actor(role: str) -> Actor:
    return Actor(1, "Someone", role)


@pytest.mark.parametrize("global_role", ["student", "instructor", "admin", "recorder"])
@pytest.mark.parametrize("member_role", ["student", "instructor"])
def test_a_members_room_role_wins_over_the_global_role(member_role, global_role):
    """A member acts with their membership's role, whatever their global role (an admin member who is a student stays one)."""
    assert effective_role(member_role, actor(global_role)) == member_role


def test_an_admin_who_is_not_a_member_acts_as_instructor():
    """A site admin outside the room acts in it as an instructor."""
    assert effective_role(None, actor("admin")) == "instructor"


@pytest.mark.parametrize("global_role", ["student", "instructor", "recorder"])
def test_anyone_else_outside_the_room_has_no_role(global_role):
    """A non-member who is not an admin (a global instructor included) may not act in the room: None."""
    assert effective_role(None, actor(global_role)) is None
