"""External identities: users linked to an identity provider's (iss, sub) or to an LMS back
end's external ids, rooms linked to external ids, and the service credentials of /api/provision/

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-06
"""
from alembic import op
import sqlalchemy as sa

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "external_identities",
        sa.Column("issuer", sa.String(255), primary_key=True),
        sa.Column("subject", sa.String(255), primary_key=True),
        sa.Column("user_id", BigId, sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
        sa.Column("email", sa.String(254), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
    )
    op.create_index("ix_external_identities_user", "external_identities", ["user_id"])
    op.create_table(
        "external_rooms",
        sa.Column("issuer", sa.String(255), primary_key=True),
        sa.Column("external_id", sa.String(255), primary_key=True),
        sa.Column("room_id", BigId, sa.ForeignKey("rooms.id", ondelete="CASCADE"), nullable=False),
    )
    op.create_index("ix_external_rooms_room", "external_rooms", ["room_id"])
    op.create_table(
        "service_credentials",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("issuer", sa.String(255), nullable=False),
        sa.Column("secret_hash", sa.String(64), nullable=False),
        sa.Column("user_id", BigId, sa.ForeignKey("users.id"), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("last_used_at", sa.DateTime(), nullable=True),
        sa.Column("revoked_at", sa.DateTime(), nullable=True),
        sa.UniqueConstraint("name", name="uq_service_credentials_name"),
        sa.UniqueConstraint("secret_hash", name="uq_service_credentials_secret_hash"),
    )


def downgrade() -> None:
    op.drop_table("service_credentials")
    op.drop_table("external_rooms")
    op.drop_table("external_identities")
