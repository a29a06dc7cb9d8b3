"""moderation: chat lock and slow mode per room, room bans, students' cameras and screens per call

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06
"""
from alembic import op
import sqlalchemy as sa

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("rooms", schema=None) as batch_op:
        batch_op.add_column(sa.Column("chat_locked", sa.Boolean(), server_default=sa.false(), nullable=False))
        batch_op.add_column(sa.Column("slow_mode_s", sa.Integer(), server_default="0", nullable=False))
    with op.batch_alter_table("call_sessions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("students_video", sa.Boolean(), server_default=sa.true(), nullable=False))
        batch_op.add_column(sa.Column("students_screen", sa.Boolean(), server_default=sa.true(), nullable=False))
    op.create_table(
        "room_bans",
        sa.Column("room_id", BigId, nullable=False),
        sa.Column("user_id", BigId, nullable=False),
        sa.Column("banned_by", BigId, nullable=True),
        sa.Column("banned_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["room_id"], ["rooms.id"], name=op.f("fk_room_bans_room_id_rooms"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_room_bans_user_id_users"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["banned_by"], ["users.id"], name=op.f("fk_room_bans_banned_by_users"),
                                ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("room_id", "user_id", name=op.f("pk_room_bans")),
    )


def downgrade() -> None:
    op.drop_table("room_bans")
    with op.batch_alter_table("call_sessions", schema=None) as batch_op:
        batch_op.drop_column("students_screen")
        batch_op.drop_column("students_video")
    with op.batch_alter_table("rooms", schema=None) as batch_op:
        batch_op.drop_column("slow_mode_s")
        batch_op.drop_column("chat_locked")
