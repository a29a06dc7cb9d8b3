"""one live call per room: a partial unique index

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22
"""
from alembic import op
import sqlalchemy as sa

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Two instructors pressing "Start call" at once on PostgreSQL (concurrent writers) must
    # not create two live sessions in one room. SQLite and PostgreSQL both support partial
    # unique indexes.
    op.create_index("uq_call_sessions_live_room", "call_sessions", ["room_id"], unique=True,
                    sqlite_where=sa.text("ended_at IS NULL"), postgresql_where=sa.text("ended_at IS NULL"))


def downgrade() -> None:
    op.drop_index("uq_call_sessions_live_room", table_name="call_sessions")
