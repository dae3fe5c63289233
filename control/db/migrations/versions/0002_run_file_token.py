"""runs: the hash of the per-run token engines fetch plan files with; the final status

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("file_token_hash", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("final_status", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.drop_column("final_status")
        batch_op.drop_column("file_token_hash")
