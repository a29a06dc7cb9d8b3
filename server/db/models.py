"""SQLAlchemy 2.0 models. Schema changes go through Alembic (``migrations/``)."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger, CheckConstraint, DateTime, Float, ForeignKey, Index, Integer, MetaData, String, Text,
    UniqueConstraint, text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# Constraint naming convention so Alembic batch mode (SQLite) can address constraints by name.
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# BIGINT on PostgreSQL; INTEGER on SQLite so the column is the rowid alias and autoincrements.
BigId = BigInteger().with_variant(Integer(), "sqlite")

ROOM_KINDS = ("course", "group", "direct")
ROOM_ROLES = ("instructor", "student")
USER_ROLES = ("instructor", "student", "admin", "recorder")
MESSAGE_KINDS = ("text", "image", "file", "audio", "video", "announcement", "system")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(128))
    password_hash: Mapped[str | None] = mapped_column(String(255), nullable=True)
    role: Mapped[str] = mapped_column(String(16), default="student")
    created_at: Mapped[datetime] = mapped_column(DateTime())


class Room(Base):
    __tablename__ = "rooms"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(200))
    created_by: Mapped[int] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(DateTime())
    # The last seq handed out in this room. Incremented inside the insert transaction, so
    # seq stays gapless: a rolled-back send rolls the increment back too.
    last_seq: Mapped[int] = mapped_column(BigInteger, default=0)
    last_activity_at: Mapped[datetime] = mapped_column(DateTime())
    # Counter of edits, deletes and reaction changes in this room; each changed message takes
    # the new value as its change_seq, so a client can ask for "changes since N".
    last_change: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    # "<low user id>:<high user id>" for direct rooms: one direct room per pair.
    direct_key: Mapped[str | None] = mapped_column(String(64), unique=True, nullable=True)
    __table_args__ = (CheckConstraint("kind in ('course','group','direct')", name="kind"),)


class Membership(Base):
    __tablename__ = "memberships"
    room_id: Mapped[int] = mapped_column(ForeignKey("rooms.id", ondelete="CASCADE"), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    role: Mapped[str] = mapped_column(String(16))
    joined_at: Mapped[datetime] = mapped_column(DateTime())
    __table_args__ = (
        CheckConstraint("role in ('instructor','student')", name="role"),
        Index("ix_memberships_user", "user_id"),
    )


class ReadPosition(Base):
    __tablename__ = "read_positions"
    room_id: Mapped[int] = mapped_column(ForeignKey("rooms.id", ondelete="CASCADE"), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, default=0)
    updated_at: Mapped[datetime] = mapped_column(DateTime())


class Message(Base):
    __tablename__ = "messages"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    room_id: Mapped[int] = mapped_column(ForeignKey("rooms.id", ondelete="CASCADE"))
    seq: Mapped[int] = mapped_column(BigInteger)
    sender_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    kind: Mapped[str] = mapped_column(String(16))
    content: Mapped[str] = mapped_column(Text, default="")
    file_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    reply_to: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    client_msg_id: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime())
    edited_at: Mapped[datetime | None] = mapped_column(DateTime(), nullable=True)
    deleted_at: Mapped[datetime | None] = mapped_column(DateTime(), nullable=True)
    change_seq: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    __table_args__ = (
        Index("ix_messages_room_change", "room_id", "change_seq"),
        UniqueConstraint("room_id", "seq", name="uq_messages_room_seq"),
        UniqueConstraint("room_id", "sender_id", "client_msg_id", name="uq_messages_client_msg"),
        Index("ix_messages_room_kind_seq", "room_id", "kind", "seq"),
        Index("ix_messages_room_sender", "room_id", "sender_id"),
    )


class Reaction(Base):
    __tablename__ = "reactions"
    message_id: Mapped[int] = mapped_column(ForeignKey("messages.id", ondelete="CASCADE"), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    emoji: Mapped[str] = mapped_column(String(32), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(DateTime())


class CallSession(Base):
    """A live call inside a room (PROTOCOL §2.2). Participants live in memory; what is stored
    is the session's span and each user's attendance intervals."""

    __tablename__ = "call_sessions"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    room_id: Mapped[int] = mapped_column(ForeignKey("rooms.id", ondelete="CASCADE"))
    started_by: Mapped[int] = mapped_column(ForeignKey("users.id"))
    started_at: Mapped[datetime] = mapped_column(DateTime())
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(), nullable=True)
    __table_args__ = (
        Index("ix_call_sessions_room", "room_id", "started_at"),
        # At most one live session per room (see migration 0004).
        Index("uq_call_sessions_live_room", "room_id", unique=True,
              sqlite_where=text("ended_at IS NULL"), postgresql_where=text("ended_at IS NULL")),
    )


class AttendanceInterval(Base):
    """One stay of one peer (socket) in a session: a reconnect opens a new interval."""

    __tablename__ = "attendance_intervals"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("call_sessions.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    peer_id: Mapped[str] = mapped_column(String(32))
    joined_at: Mapped[datetime] = mapped_column(DateTime())
    left_at: Mapped[datetime | None] = mapped_column(DateTime(), nullable=True)
    __table_args__ = (Index("ix_attendance_session_user", "session_id", "user_id"),)


FILE_CATEGORIES = ("document", "image", "video", "audio", "archive")


class File(Base):
    """An uploaded blob's metadata (PROTOCOL §3 "Files"). ``id`` is a random url-safe string
    (unguessable, unlike a sequence); the bytes live in storage under ``storage_key``. A
    deleted file keeps its row with ``deleted_at`` set, which revokes its signed links."""

    __tablename__ = "files"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    room_id: Mapped[int | None] = mapped_column(ForeignKey("rooms.id", ondelete="SET NULL"), nullable=True)
    folder: Mapped[str] = mapped_column(String(255), default="")
    name: Mapped[str] = mapped_column(String(255))
    storage_key: Mapped[str] = mapped_column(String(160), unique=True)
    content_type: Mapped[str] = mapped_column(String(127))
    category: Mapped[str] = mapped_column(String(16))
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime())
    deleted_at: Mapped[datetime | None] = mapped_column(DateTime(), nullable=True)
    __table_args__ = (
        CheckConstraint("category in ('document','image','video','audio','archive')", name="category"),
        Index("ix_files_owner_folder", "owner_id", "folder"),
        Index("ix_files_room_folder", "room_id", "folder"),
    )


RECORDING_STATUSES = ("pending", "recording", "processing", "ready", "failed")
ASSET_KINDS = ("composite", "participant", "chat", "manifest", "thumbnail")


class Recording(Base):
    """A recording of a live session (PROTOCOL §2.2, docs/RECORDING.md). ``worker_id`` names
    the media worker holding the job; ``started_at`` is when that worker joined the call (the
    recording clock's zero on the server's clock)."""

    __tablename__ = "recordings"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("call_sessions.id", ondelete="CASCADE"))
    room_id: Mapped[int] = mapped_column(ForeignKey("rooms.id", ondelete="CASCADE"))
    requested_by: Mapped[int] = mapped_column(ForeignKey("users.id"))
    status: Mapped[str] = mapped_column(String(16))
    requested_at: Mapped[datetime] = mapped_column(DateTime())
    started_at: Mapped[datetime | None] = mapped_column(DateTime(), nullable=True)
    stopped_at: Mapped[datetime | None] = mapped_column(DateTime(), nullable=True)
    duration_s: Mapped[float | None] = mapped_column(Float(), nullable=True)
    worker_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    reason: Mapped[str | None] = mapped_column(String(500), nullable=True)
    __table_args__ = (
        CheckConstraint("status in ('pending','recording','processing','ready','failed')", name="status"),
        Index("ix_recordings_room", "room_id", "requested_at"),
        # At most one recording per session that is still being made (see migration 0006).
        Index("uq_recordings_active_session", "session_id", unique=True,
              sqlite_where=text("status IN ('pending','recording')"),
              postgresql_where=text("status IN ('pending','recording')")),
    )


class RecordingAsset(Base):
    """One downloadable output of a recording; the bytes are a file (``files``)."""

    __tablename__ = "recording_assets"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    recording_id: Mapped[int] = mapped_column(ForeignKey("recordings.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str | None] = mapped_column(String(16), nullable=True)  # set by "complete"
    file_id: Mapped[str] = mapped_column(ForeignKey("files.id", ondelete="CASCADE"))
    duration_s: Mapped[float | None] = mapped_column(Float(), nullable=True)
    __table_args__ = (UniqueConstraint("recording_id", "name"),)


class RecordingMark(Base):
    """An instructor's mark (``recording.mark``): a chapter in the class video."""

    __tablename__ = "recording_marks"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    recording_id: Mapped[int] = mapped_column(ForeignKey("recordings.id", ondelete="CASCADE"))
    at: Mapped[datetime] = mapped_column(DateTime())
    label: Mapped[str] = mapped_column(String(200))
    by: Mapped[int] = mapped_column(ForeignKey("users.id"))
    __table_args__ = (Index("ix_recording_marks_recording", "recording_id", "at"),)
