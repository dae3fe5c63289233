"""collection_secrets: a collection's secrets, sealed with the API's key; never returned

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "collection_secrets",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("collection_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("sealed", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["collection_id"],
            ["collections.id"],
            name=op.f("fk_collection_secrets_collection_id_collections"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_collection_secrets")),
        sa.UniqueConstraint(
            "collection_id", "name", name=op.f("uq_collection_secrets_collection_id_name")
        ),
    )
    op.create_index(op.f("ix_collection_secrets_collection_id"), "collection_secrets",
                    ["collection_id"], unique=False)  # fmt: skip


def downgrade() -> None:
    op.drop_index(op.f("ix_collection_secrets_collection_id"), table_name="collection_secrets")
    op.drop_table("collection_secrets")
