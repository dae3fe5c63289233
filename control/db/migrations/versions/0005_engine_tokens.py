"""engine_tokens: what engines fetch plan files with, instead of a token on the commands topic

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "engine_tokens",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("collection_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["collection_id"],
            ["collections.id"],
            name="fk_engine_tokens_collection_id_collections",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_engine_tokens"),
        sa.UniqueConstraint("token_hash", name="uq_engine_tokens_token_hash"),
    )
    op.create_index("ix_engine_tokens_collection_id", "engine_tokens", ["collection_id"])


def downgrade() -> None:
    op.drop_index("ix_engine_tokens_collection_id", table_name="engine_tokens")
    op.drop_table("engine_tokens")
