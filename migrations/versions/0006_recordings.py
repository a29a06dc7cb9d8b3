"""recordings, their assets and instructor marks

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-22
"""
from alembic import op
import sqlalchemy as sa

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
ACTIVE = sa.text("status IN ('pending','recording')")


def upgrade() -> None:
    op.create_table(
        "recordings",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("session_id", BigId, nullable=False),
        sa.Column("room_id", BigId, nullable=False),
        sa.Column("requested_by", BigId, nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("requested_at", sa.DateTime(), nullable=False),
        sa.Column("started_at", sa.DateTime(), nullable=True),
        sa.Column("stopped_at", sa.DateTime(), nullable=True),
        sa.Column("duration_s", sa.Float(), nullable=True),
        sa.Column("worker_id", sa.String(length=64), nullable=True),
        sa.Column("reason", sa.String(length=500), nullable=True),
        sa.CheckConstraint("status in ('pending','recording','processing','ready','failed')",
                           name=op.f("ck_recordings_status")),
        sa.ForeignKeyConstraint(["session_id"], ["call_sessions.id"],
                                name=op.f("fk_recordings_session_id_call_sessions"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["room_id"], ["rooms.id"], name=op.f("fk_recordings_room_id_rooms"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["requested_by"], ["users.id"], name=op.f("fk_recordings_requested_by_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_recordings")),
    )
    op.create_index("ix_recordings_room", "recordings", ["room_id", "requested_at"])
    # Two instructors pressing Record at once must not start two recordings of one call.
    op.create_index("uq_recordings_active_session", "recordings", ["session_id"], unique=True,
                    sqlite_where=ACTIVE, postgresql_where=ACTIVE)
    op.create_table(
        "recording_assets",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("recording_id", BigId, nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=True),
        sa.Column("file_id", sa.String(length=32), nullable=False),
        sa.Column("duration_s", sa.Float(), nullable=True),
        sa.ForeignKeyConstraint(["recording_id"], ["recordings.id"],
                                name=op.f("fk_recording_assets_recording_id_recordings"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["file_id"], ["files.id"], name=op.f("fk_recording_assets_file_id_files"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_recording_assets")),
        sa.UniqueConstraint("recording_id", "name", name=op.f("uq_recording_assets_recording_id_name")),
    )
    op.create_table(
        "recording_marks",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("recording_id", BigId, nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("label", sa.String(length=200), nullable=False),
        sa.Column("by", BigId, nullable=False),
        sa.ForeignKeyConstraint(["recording_id"], ["recordings.id"],
                                name=op.f("fk_recording_marks_recording_id_recordings"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["by"], ["users.id"], name=op.f("fk_recording_marks_by_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_recording_marks")),
    )
    op.create_index("ix_recording_marks_recording", "recording_marks", ["recording_id", "at"])


def downgrade() -> None:
    op.drop_index("ix_recording_marks_recording", table_name="recording_marks")
    op.drop_table("recording_marks")
    op.drop_table("recording_assets")
    op.drop_index("uq_recordings_active_session", table_name="recordings")
    op.drop_index("ix_recordings_room", table_name="recordings")
    op.drop_table("recordings")
