"""LTI login states remember the platform storage frame (``lti_storage_target``) of a login
that asked for the postMessage storage, so its launch can check the state there when the
browser refused the state cookie (docs/LMS.md "Bound to the browser")

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-07
"""
from alembic import op
import sqlalchemy as sa

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("lti_states") as batch:
        batch.add_column(sa.Column("storage_target", sa.String(64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("lti_states") as batch:
        batch.drop_column("storage_target")
