"""room avatars: a picture for a group or course room, set by its instructors

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-06
"""
from alembic import op
import sqlalchemy as sa

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("rooms", schema=None) as batch_op:
        batch_op.add_column(sa.Column("avatar", sa.String(64), nullable=True))
        batch_op.create_index("uq_rooms_avatar", ["avatar"], unique=True)


def downgrade() -> None:
    with op.batch_alter_table("rooms", schema=None) as batch_op:
        batch_op.drop_index("uq_rooms_avatar")
        batch_op.drop_column("avatar")
