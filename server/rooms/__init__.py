"""Rooms and their members: the one rule for who may act in a room, and system messages."""
