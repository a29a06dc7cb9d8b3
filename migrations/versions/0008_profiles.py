"""profiles: a token version per user (changing the password signs out other sessions) and an avatar

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06
"""
from alembic import op
import sqlalchemy as sa

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(sa.Column("token_version", sa.Integer(), server_default="0", nullable=False))
        batch_op.add_column(sa.Column("avatar", sa.String(64), nullable=True))
        batch_op.create_index("uq_users_avatar", ["avatar"], unique=True)


def downgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_index("uq_users_avatar")
        batch_op.drop_column("avatar")
        batch_op.drop_column("token_version")
