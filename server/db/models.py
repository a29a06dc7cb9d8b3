"""SQLAlchemy 2.0 models. Schema changes go through Alembic (``migrations/``)."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger, Boolean, CheckConstraint, DateTime, Float, ForeignKey, Index, Integer, MetaData, String, Text,
    UniqueConstraint, false, text, true,
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
MESSAGE_KINDS = ("text", "image", "file", "audio", "video", "announcement", "system", "poll")


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
    # Bumped when the password changes: tokens minted with an older version stop working
    # (accounts/tokens.py "tv" claim; tokens without the claim are version 0).
    token_version: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # The token naming the user's avatar images in storage (accounts/avatars.py), or None.
    avatar: Mapped[str | None] = mapped_column(String(64), nullable=True)
    __table_args__ = (Index("uq_users_avatar", "avatar", unique=True),)


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
    # Moderation (rooms/moderation.py): students read-only, and one message per N s per student.
    chat_locked: Mapped[bool] = mapped_column(Boolean(), default=False, server_default=false())
    slow_mode_s: Mapped[int] = mapped_column(Integer(), default=0, server_default="0")
    # A group or course room's picture (accounts/avatar_store.py), set by its instructors.
    avatar: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # Archived by an instructor (rooms/service.py): read-only, hidden from the room list by default.
    archived_at: Mapped[datetime | None] = mapped_column(DateTime(), nullable=True)
    __table_args__ = (CheckConstraint("kind in ('course','group','direct')", name="kind"),
                      Index("uq_rooms_avatar", "avatar", unique=True))


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


class RoomBan(Base):
    """A user banned from a room by an instructor: removed, and not added back until lifted."""

    __tablename__ = "room_bans"
    room_id: Mapped[int] = mapped_column(ForeignKey("rooms.id", ondelete="CASCADE"), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    banned_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), nullable=True)
    banned_at: Mapped[datetime] = mapped_column(DateTime())


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
    # What students may send in this call (calls/policy.py); instructors always may.
    students_video: Mapped[bool] = mapped_column(Boolean(), default=True, server_default=true())
    students_screen: Mapped[bool] = mapped_column(Boolean(), default=True, server_default=true())
    # A waiting room: people who are not instructors wait until admitted (calls/lobby.py).
    lobby: Mapped[bool] = mapped_column(Boolean(), default=False, server_default=false())
    __table_args__ = (
        Index("ix_call_sessions_room", "room_id", "started_at"),
        # At most one live session per room (see migration 0004).
        Index("uq_call_sessions_live_room", "room_id", unique=True,
              sqlite_where=text("ended_at IS NULL"), postgresql_where=text("ended_at IS NULL")),
    )


class Breakout(Base):
    """A call split into groups (calls/breakouts.py); ``ends_at``: its timer, if any."""

    __tablename__ = "breakouts"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("call_sessions.id", ondelete="CASCADE"))
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime())
    ends_at: Mapped[datetime | None] = mapped_column(DateTime(), nullable=True)
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(), nullable=True)
    __table_args__ = (Index("ix_breakouts_session", "session_id"),)


class BreakoutGroup(Base):
    """One group of a breakout: a room of its own (its members: the group and the main
    room's instructors) with its own call session."""

    __tablename__ = "breakout_groups"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    breakout_id: Mapped[int] = mapped_column(ForeignKey("breakouts.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    room_id: Mapped[int] = mapped_column(ForeignKey("rooms.id", ondelete="CASCADE"))
    session_id: Mapped[int] = mapped_column(ForeignKey("call_sessions.id", ondelete="CASCADE"))
    __table_args__ = (Index("ix_breakout_groups_breakout", "breakout_id"),
                      Index("ix_breakout_groups_session", "session_id"))


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


class SfuPeer(Base):
    """A participant's side in Janus (SFU calls), kept so that it outlives the web process
    that holds it: the Janus server, session and handle ids, and what the participant
    publishes. A participant whose socket drops takes it back when it rejoins with its resume
    token — in any web process, after a restart too (``calls/sfu_resume.py``). ``parked_at``
    is set while no socket holds it."""

    __tablename__ = "sfu_peers"
    session_id: Mapped[int] = mapped_column(ForeignKey("call_sessions.id", ondelete="CASCADE"), primary_key=True)
    peer_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    janus_url: Mapped[str] = mapped_column(String(500))
    janus_session: Mapped[int] = mapped_column(BigInteger())
    state: Mapped[str] = mapped_column(Text())  # JSON: handles, feed, audio mids (calls/sfu_peer.py)
    holder: Mapped[str] = mapped_column(String(32))  # who wrote it last: only they park or drop it
    updated_at: Mapped[datetime] = mapped_column(DateTime())
    parked_at: Mapped[datetime | None] = mapped_column(DateTime(), nullable=True)


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
ASSET_KINDS = ("composite", "participant", "chat", "manifest", "thumbnail", "speakers")


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
    # Its name (recordings/manage.py); None: the room's name and the date.
    title: Mapped[str | None] = mapped_column(String(200), nullable=True)
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


class Poll(Base):
    """A poll or quick quiz (server/polls/): the message of kind ``poll`` it belongs to holds
    the question (``content``) and its place in the room's history; this row holds the rest.
    ``version`` counts votes and state changes: every vote takes the row (a row lock on
    PostgreSQL) so votes on one poll are counted one after the other."""

    __tablename__ = "polls"
    message_id: Mapped[int] = mapped_column(ForeignKey("messages.id", ondelete="CASCADE"), primary_key=True)
    room_id: Mapped[int] = mapped_column(ForeignKey("rooms.id", ondelete="CASCADE"))
    options: Mapped[str] = mapped_column(Text())  # JSON list of option texts
    multiple: Mapped[bool] = mapped_column(Boolean())
    anonymous: Mapped[bool] = mapped_column(Boolean())
    correct: Mapped[str | None] = mapped_column(Text(), nullable=True)  # JSON list of option indexes
    results_public: Mapped[bool] = mapped_column(Boolean(), default=False)
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(), nullable=True)
    version: Mapped[int] = mapped_column(BigInteger, default=0)
    __table_args__ = (Index("ix_polls_room", "room_id"),)


class PollVote(Base):
    """One chosen option of one voter (a multiple-choice answer is several rows)."""

    __tablename__ = "poll_votes"
    message_id: Mapped[int] = mapped_column(ForeignKey("polls.message_id", ondelete="CASCADE"), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    option: Mapped[int] = mapped_column(Integer, primary_key=True)
    voted_at: Mapped[datetime] = mapped_column(DateTime())


class LtiPlatform(Base):
    """An LMS registered as an LTI 1.3 platform (server/lti/, docs/LMS.md): who signs launches
    (``issuer`` with this ``client_id``), where its keys and OIDC endpoints are, which of its
    deployments are trusted (JSON list) and which origins may frame Podium (JSON list)."""

    __tablename__ = "lti_platforms"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    issuer: Mapped[str] = mapped_column(String(255))
    client_id: Mapped[str] = mapped_column(String(255))
    deployment_ids: Mapped[str] = mapped_column(Text())
    auth_login_url: Mapped[str] = mapped_column(String(1000))
    key_set_url: Mapped[str] = mapped_column(String(1000))
    token_url: Mapped[str] = mapped_column(String(1000))
    frame_origins: Mapped[str] = mapped_column(Text())
    created_at: Mapped[datetime] = mapped_column(DateTime())
    __table_args__ = (UniqueConstraint("issuer", "client_id", name="uq_lti_platforms_issuer_client"),)


class LtiState(Base):
    """One OIDC login in flight: the ``state`` handed to the platform and the ``nonce`` its
    id_token must carry. Deleted by the launch that uses it (so a nonce is used once).
    ``storage_target``: the platform storage frame the login named (``lti_storage_target``), where
    the state was also put for a browser that refuses the state cookie; None without one."""

    __tablename__ = "lti_states"
    state: Mapped[str] = mapped_column(String(64), primary_key=True)
    nonce: Mapped[str] = mapped_column(String(64))
    platform_id: Mapped[int] = mapped_column(ForeignKey("lti_platforms.id", ondelete="CASCADE"))
    expires_at: Mapped[datetime] = mapped_column(DateTime())
    storage_target: Mapped[str | None] = mapped_column(String(64), nullable=True)
    __table_args__ = (Index("ix_lti_states_expires", "expires_at"),)


class LtiUser(Base):
    """A Podium user created by a launch, linked by the platform's ``(issuer, sub)``."""

    __tablename__ = "lti_users"
    issuer: Mapped[str] = mapped_column(String(255), primary_key=True)
    sub: Mapped[str] = mapped_column(String(255), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    __table_args__ = (Index("ix_lti_users_user", "user_id"),)


class LtiContext(Base):
    """A course room created by a launch, linked by ``(issuer, deployment, context id)``."""

    __tablename__ = "lti_contexts"
    issuer: Mapped[str] = mapped_column(String(255), primary_key=True)
    deployment_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    context_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    room_id: Mapped[int] = mapped_column(ForeignKey("rooms.id", ondelete="CASCADE"))
    __table_args__ = (Index("ix_lti_contexts_room", "room_id"),)


class LtiMembership(Base):
    """A membership made by an LTI launch or roster sync (server/lti/roster.py): only these are
    changed or removed by a roster sync, never memberships an instructor added by hand."""

    __tablename__ = "lti_memberships"
    room_id: Mapped[int] = mapped_column(ForeignKey("rooms.id", ondelete="CASCADE"), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)


class LtiRoomServices(Base):
    """What the platform's latest launch in a course room offered: the NRPS context
    memberships URL, the AGS line items URL and its scopes (JSON list); the roster sync's
    last success, claim (one sync at a time per room, across processes) and last error."""

    __tablename__ = "lti_room_services"
    room_id: Mapped[int] = mapped_column(ForeignKey("rooms.id", ondelete="CASCADE"), primary_key=True)
    platform_id: Mapped[int] = mapped_column(ForeignKey("lti_platforms.id", ondelete="CASCADE"))
    memberships_url: Mapped[str | None] = mapped_column(String(1000), nullable=True)
    lineitems_url: Mapped[str | None] = mapped_column(String(1000), nullable=True)
    ags_scopes: Mapped[str] = mapped_column(Text(), default="[]", server_default="[]")
    synced_at: Mapped[datetime | None] = mapped_column(DateTime(), nullable=True)
    sync_claimed_at: Mapped[datetime | None] = mapped_column(DateTime(), nullable=True)
    sync_error: Mapped[str | None] = mapped_column(String(500), nullable=True)
    __table_args__ = (Index("ix_lti_room_services_platform", "platform_id"),)


class LtiLineItem(Base):
    """The LMS gradebook line item a call session's attendance went to (server/lti/grades.py):
    sending again updates its scores instead of adding a second line item."""

    __tablename__ = "lti_line_items"
    session_id: Mapped[int] = mapped_column(ForeignKey("call_sessions.id", ondelete="CASCADE"), primary_key=True)
    lineitem_url: Mapped[str] = mapped_column(String(1000))
    sent_at: Mapped[datetime] = mapped_column(DateTime())


class ExternalIdentity(Base):
    """A Podium user linked to an identity of an external identity provider (``JWT_JWKS_URL``'s
    tokens, by their ``(iss, sub)``) or of an LMS back end's provisioning (the service
    credential's issuer and the user's external id): server/accounts/external.py,
    server/provision/. Never matched by name or email; ``email`` is kept as given."""

    __tablename__ = "external_identities"
    issuer: Mapped[str] = mapped_column(String(255), primary_key=True)
    subject: Mapped[str] = mapped_column(String(255), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    email: Mapped[str | None] = mapped_column(String(254), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime())
    __table_args__ = (Index("ix_external_identities_user", "user_id"),)


class ExternalRoom(Base):
    """A room made by the provisioning API, linked by the credential's issuer and its external id."""

    __tablename__ = "external_rooms"
    issuer: Mapped[str] = mapped_column(String(255), primary_key=True)
    external_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    room_id: Mapped[int] = mapped_column(ForeignKey("rooms.id", ondelete="CASCADE"))
    __table_args__ = (Index("ix_external_rooms_room", "room_id"),)


class ServiceCredential(Base):
    """A credential of an LMS back end for /api/provision/ (server/provision/credentials.py):
    only the SHA-256 of the secret is kept. ``issuer`` names whose external ids it manages
    (credentials sharing one manage the same users and rooms); ``user_id`` is its service
    account (role recorder: it never signs in), the creator of the rooms it makes."""

    __tablename__ = "service_credentials"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    issuer: Mapped[str] = mapped_column(String(255))
    secret_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(DateTime())
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(), nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(), nullable=True)
