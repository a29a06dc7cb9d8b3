"""LTI Advantage: where a course room's memberships came from (roster sync), the services a
platform offers a course room (NRPS memberships URL, AGS line items URL and scopes), and the
gradebook line item of each call session sent to the LMS

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-06
"""
from alembic import op
import sqlalchemy as sa

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "lti_memberships",
        sa.Column("room_id", BigId, sa.ForeignKey("rooms.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("user_id", BigId, sa.ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    )
    op.create_table(
        "lti_room_services",
        sa.Column("room_id", BigId, sa.ForeignKey("rooms.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("platform_id", BigId, sa.ForeignKey("lti_platforms.id", ondelete="CASCADE"), nullable=False),
        sa.Column("memberships_url", sa.String(1000), nullable=True),
        sa.Column("lineitems_url", sa.String(1000), nullable=True),
        sa.Column("ags_scopes", sa.Text(), nullable=False, server_default="[]"),
        sa.Column("synced_at", sa.DateTime(), nullable=True),
        sa.Column("sync_claimed_at", sa.DateTime(), nullable=True),
        sa.Column("sync_error", sa.String(500), nullable=True),
    )
    op.create_index("ix_lti_room_services_platform", "lti_room_services", ["platform_id"])
    op.create_table(
        "lti_line_items",
        sa.Column("session_id", BigId, sa.ForeignKey("call_sessions.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("lineitem_url", sa.String(1000), nullable=False),
        sa.Column("sent_at", sa.DateTime(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("lti_line_items")
    op.drop_index("ix_lti_room_services_platform", "lti_room_services")
    op.drop_table("lti_room_services")
    op.drop_table("lti_memberships")
