"""live calls: sessions and attendance intervals

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22
"""
from alembic import op
import sqlalchemy as sa

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "call_sessions",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("room_id", BigId, nullable=False),
        sa.Column("started_by", BigId, nullable=False),
        sa.Column("started_at", sa.DateTime(), nullable=False),
        sa.Column("ended_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(["room_id"], ["rooms.id"], name=op.f("fk_call_sessions_room_id_rooms"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["started_by"], ["users.id"], name=op.f("fk_call_sessions_started_by_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_call_sessions")),
    )
    op.create_index("ix_call_sessions_room", "call_sessions", ["room_id", "started_at"])
    op.create_table(
        "attendance_intervals",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("session_id", BigId, nullable=False),
        sa.Column("user_id", BigId, nullable=False),
        sa.Column("peer_id", sa.String(length=32), nullable=False),
        sa.Column("joined_at", sa.DateTime(), nullable=False),
        sa.Column("left_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(["session_id"], ["call_sessions.id"], name=op.f("fk_attendance_intervals_session_id_call_sessions"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_attendance_intervals_user_id_users"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_attendance_intervals")),
    )
    op.create_index("ix_attendance_session_user", "attendance_intervals", ["session_id", "user_id"])


def downgrade() -> None:
    op.drop_index("ix_attendance_session_user", table_name="attendance_intervals")
    op.drop_table("attendance_intervals")
    op.drop_index("ix_call_sessions_room", table_name="call_sessions")
    op.drop_table("call_sessions")
