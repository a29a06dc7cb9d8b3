"""LTI 1.3: registered platforms, OIDC logins in flight, users and course rooms made by launches

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-06
"""
from alembic import op
import sqlalchemy as sa

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "lti_platforms",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("issuer", sa.String(255), nullable=False),
        sa.Column("client_id", sa.String(255), nullable=False),
        sa.Column("deployment_ids", sa.Text(), nullable=False),
        sa.Column("auth_login_url", sa.String(1000), nullable=False),
        sa.Column("key_set_url", sa.String(1000), nullable=False),
        sa.Column("token_url", sa.String(1000), nullable=False),
        sa.Column("frame_origins", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.UniqueConstraint("issuer", "client_id", name="uq_lti_platforms_issuer_client"),
    )
    op.create_table(
        "lti_states",
        sa.Column("state", sa.String(64), primary_key=True),
        sa.Column("nonce", sa.String(64), nullable=False),
        sa.Column("platform_id", BigId, sa.ForeignKey("lti_platforms.id", ondelete="CASCADE"), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
    )
    op.create_index("ix_lti_states_expires", "lti_states", ["expires_at"])
    op.create_table(
        "lti_users",
        sa.Column("issuer", sa.String(255), primary_key=True),
        sa.Column("sub", sa.String(255), primary_key=True),
        sa.Column("user_id", BigId, sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    )
    op.create_index("ix_lti_users_user", "lti_users", ["user_id"])
    op.create_table(
        "lti_contexts",
        sa.Column("issuer", sa.String(255), primary_key=True),
        sa.Column("deployment_id", sa.String(255), primary_key=True),
        sa.Column("context_id", sa.String(255), primary_key=True),
        sa.Column("room_id", BigId, sa.ForeignKey("rooms.id", ondelete="CASCADE"), nullable=False),
    )
    op.create_index("ix_lti_contexts_room", "lti_contexts", ["room_id"])


def downgrade() -> None:
    op.drop_table("lti_contexts")
    op.drop_table("lti_users")
    op.drop_table("lti_states")
    op.drop_table("lti_platforms")
