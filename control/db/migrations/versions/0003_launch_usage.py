"""launches: virtual users, who launched, why purged

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("launches", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("virtual_users", sa.Integer(), nullable=False, server_default="0")
        )
        batch_op.add_column(sa.Column("launched_by", sa.Integer(), nullable=True))
        batch_op.add_column(
            sa.Column("purge_reason", sa.String(length=500), nullable=False, server_default="")
        )
        batch_op.create_foreign_key(
            "fk_launches_launched_by_users", "users", ["launched_by"], ["id"]
        )


def downgrade() -> None:
    with op.batch_alter_table("launches", schema=None) as batch_op:
        batch_op.drop_constraint("fk_launches_launched_by_users", type_="foreignkey")
        batch_op.drop_column("purge_reason")
        batch_op.drop_column("launched_by")
        batch_op.drop_column("virtual_users")
