"""More engines: which engine a collection's plan runs on, its users divided among engines, and
which engine each plan of a run ran on

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("collection_plans", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("engine", sa.String(length=20), nullable=False, server_default="jmeter")
        )
        batch_op.add_column(sa.Column("users", sa.Integer(), nullable=True))
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("plan_engines", sa.JSON(), nullable=False,
                                      server_default="{}"))  # fmt: skip


def downgrade() -> None:
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.drop_column("plan_engines")
    with op.batch_alter_table("collection_plans", schema=None) as batch_op:
        batch_op.drop_column("users")
        batch_op.drop_column("engine")
