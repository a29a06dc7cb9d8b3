"""Tests of server/rooms: rooms and members over REST, the one room-role rule."""
