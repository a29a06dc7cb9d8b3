"""sfu_peers: participants' Janus sessions, resumable after a socket drop or a restart

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06
"""
from alembic import op
import sqlalchemy as sa

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "sfu_peers",
        sa.Column("session_id", BigId, nullable=False),
        sa.Column("peer_id", sa.String(length=32), nullable=False),
        sa.Column("user_id", BigId, nullable=False),
        sa.Column("janus_url", sa.String(length=500), nullable=False),
        sa.Column("janus_session", sa.BigInteger(), nullable=False),
        sa.Column("state", sa.Text(), nullable=False),
        sa.Column("holder", sa.String(length=32), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.Column("parked_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(["session_id"], ["call_sessions.id"],
                                name=op.f("fk_sfu_peers_session_id_call_sessions"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_sfu_peers_user_id_users"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("session_id", "peer_id", name=op.f("pk_sfu_peers")),
    )


def downgrade() -> None:
    op.drop_table("sfu_peers")
