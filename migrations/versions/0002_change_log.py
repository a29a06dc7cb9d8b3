"""change log: per-room change counter so clients catch up on edits, deletes and reactions

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""
from alembic import op
import sqlalchemy as sa

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("rooms", schema=None) as batch_op:
        batch_op.add_column(sa.Column("last_change", sa.BigInteger(), server_default="0", nullable=False))
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.add_column(sa.Column("change_seq", sa.BigInteger(), nullable=True))
        batch_op.create_index("ix_messages_room_change", ["room_id", "change_seq"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_index("ix_messages_room_change")
        batch_op.drop_column("change_seq")
    with op.batch_alter_table("rooms", schema=None) as batch_op:
        batch_op.drop_column("last_change")
