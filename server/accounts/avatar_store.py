"""Avatars stored and served (issue 19.2): the images ``avatars.render_avatar`` makes are
blobs in the file storage (disk or S3, like every file), named by a random token kept in the
user's row (``users.avatar``).

A user's avatar is served at ``/avatars/<token>/<side>`` without credentials (an ``<img>``
cannot send a bearer token): the token is 192 random bits, so the URL cannot be guessed, and it
is looked up in the users table on every request, so a replaced or removed avatar is gone at
once. Nothing else in storage can be reached this way (the key is built from the token, never
taken from the request).

Guarantees: a refused image stores nothing; a new avatar is stored completely before the row
points at it, and the previous images are deleted only after the row no longer does.
"""
from __future__ import annotations

import asyncio
import logging
import secrets

from sqlalchemy import select

from server.accounts.avatars import AVATAR_SIZES, render_avatar
from server.db.engine import Database
from server.db.models import Room, User
from server.kernel.actor import Actor
from server.kernel.errors import Conflict, Forbidden, NotFound
from server.kernel.wire import avatar_wire, user_wire
from server.rooms.membership import room_role
from server.storage import ObjectNotFound, Storage, StorageError

log = logging.getLogger("podium.avatars")

TOKEN_CHARS = 32  # secrets.token_urlsafe(24)


def avatar_key(token: str, side: int) -> str:
    """The storage key of one image (the shape ``storage.new_key`` gives, with the side)."""
    return f"{token[:2]}/{token}-{side}"


def parse_avatar_path(token: str, side: str) -> tuple[str, int]:
    """``/avatars/<token>/<side>`` → ``(token, side)``; NotFound for anything else."""
    if (len(token) != TOKEN_CHARS or not all(c.isalnum() or c in "-_" for c in token)
            or not side.isdigit() or int(side) not in AVATAR_SIZES):
        raise NotFound("no such avatar")
    return token, int(side)


async def set_avatar(db: Database, storage: Storage, actor: Actor, data: bytes) -> dict:
    """Make ``data`` the caller's avatar; their user wire (with ``avatar``). Raises TooLarge or
    NotAnImage (``avatars``) before anything is stored."""
    token, written = await _write_images(storage, data)
    try:
        async with db.write() as s:
            row = await _own_row(s, actor)
            previous, row.avatar = row.avatar, token
            await s.flush()
            wire = user_wire(row)
    except BaseException:
        await _delete(storage, written)
        raise
    if previous:
        await _delete(storage, [avatar_key(previous, side) for side in AVATAR_SIZES])
    log.info("user %s: new avatar %s", actor.id, token[:6])
    return wire


async def set_room_avatar(db: Database, storage: Storage, actor: Actor, room_id: int, data: bytes | None) -> dict:
    """Make ``data`` the picture of a group or course room (its instructors; None removes it);
    the room's ``avatar`` wire. As ``set_avatar``: refused images store nothing, the new images
    are stored before the row points at them, the old ones deleted after."""
    async with db.read() as s:
        room, role = await room_role(s, room_id, actor)
    if role != "instructor":
        raise Forbidden("only the room's instructors change its picture")
    if room.kind == "direct":
        raise Conflict("a direct room shows the other person's picture")
    token, written = await _write_images(storage, data) if data is not None else (None, [])
    try:
        async with db.write() as s:
            row = await s.get(Room, room_id)
            previous, row.avatar = row.avatar, token
    except BaseException:
        await _delete(storage, written)
        raise
    if previous:
        await _delete(storage, [avatar_key(previous, side) for side in AVATAR_SIZES])
    return avatar_wire(token)


async def remove_avatar(db: Database, storage: Storage, actor: Actor) -> dict:
    """Remove the caller's avatar (a no-op without one); their user wire."""
    async with db.write() as s:
        row = await _own_row(s, actor)
        previous, row.avatar = row.avatar, None
        await s.flush()
        wire = user_wire(row)
    if previous:
        await _delete(storage, [avatar_key(previous, side) for side in AVATAR_SIZES])
    return wire


async def read_avatar(db: Database, storage: Storage, token: str, side: int) -> bytes:
    """The image of a current avatar; NotFound when no user has this avatar now."""
    async with db.read() as s:
        owner = (await s.execute(select(User.id).where(User.avatar == token))).scalar_one_or_none()
        if owner is None:  # a room's picture
            owner = (await s.execute(select(Room.id).where(Room.avatar == token))).scalar_one_or_none()
    if owner is None:
        raise NotFound("no such avatar")
    key = avatar_key(token, side)
    try:
        size = await storage.size(key)
        async with await storage.open_range(key, 0, size - 1) as chunks:
            return b"".join([chunk async for chunk in chunks])
    except ObjectNotFound:
        raise NotFound("no such avatar") from None


async def _write_images(storage: Storage, data: bytes) -> tuple[str, list[str]]:
    """``data`` rendered (``render_avatar``: TooLarge/NotAnImage before anything is stored) and
    every size stored under a new token; ``(token, keys written)``. A failed write deletes
    what it had written."""
    images = await asyncio.get_running_loop().run_in_executor(None, render_avatar, data)
    token = secrets.token_urlsafe(24)
    written: list[str] = []
    try:
        for side, blob in images.items():
            key = avatar_key(token, side)
            async with await storage.open_writer(key) as w:
                await w.write(blob)
                await w.commit()
            written.append(key)
    except BaseException:
        await _delete(storage, written)
        raise
    return token, written


async def _own_row(s, actor: Actor) -> User:
    row = await s.get(User, actor.id) if actor.role != "recorder" else None
    if row is None:
        raise Forbidden("only a person has an avatar")
    return row


async def _delete(storage: Storage, keys: list[str]) -> None:
    for key in keys:
        try:
            await storage.delete(key)
        except StorageError:  # an orphan blob is waste, not harm: say so and go on
            log.exception("could not delete avatar image %s", key)
