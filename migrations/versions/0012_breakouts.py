"""breakouts: a call split into groups, each a room of its own with its own call

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06
"""
from alembic import op
import sqlalchemy as sa

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "breakouts",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("session_id", BigId, nullable=False),
        sa.Column("created_by", BigId, nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("ends_at", sa.DateTime(), nullable=True),
        sa.Column("ended_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(["session_id"], ["call_sessions.id"], name=op.f("fk_breakouts_session_id_call_sessions"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["created_by"], ["users.id"], name=op.f("fk_breakouts_created_by_users"),
                                ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_breakouts")),
    )
    op.create_index("ix_breakouts_session", "breakouts", ["session_id"])
    op.create_table(
        "breakout_groups",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("breakout_id", BigId, nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("room_id", BigId, nullable=False),
        sa.Column("session_id", BigId, nullable=False),
        sa.ForeignKeyConstraint(["breakout_id"], ["breakouts.id"], name=op.f("fk_breakout_groups_breakout_id_breakouts"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["room_id"], ["rooms.id"], name=op.f("fk_breakout_groups_room_id_rooms"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["session_id"], ["call_sessions.id"],
                                name=op.f("fk_breakout_groups_session_id_call_sessions"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_breakout_groups")),
    )
    op.create_index("ix_breakout_groups_breakout", "breakout_groups", ["breakout_id"])
    op.create_index("ix_breakout_groups_session", "breakout_groups", ["session_id"])


def downgrade() -> None:
    op.drop_index("ix_breakout_groups_session", table_name="breakout_groups")
    op.drop_index("ix_breakout_groups_breakout", table_name="breakout_groups")
    op.drop_table("breakout_groups")
    op.drop_index("ix_breakouts_session", table_name="breakouts")
    op.drop_table("breakouts")
