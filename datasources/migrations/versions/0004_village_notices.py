"""village notices (the notice.posted event kind)

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03 19:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "village_notices",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("notice_id", sa.String(length=64), nullable=False),
        sa.Column("village_code", sa.String(length=16), nullable=False),
        sa.Column("town_code", sa.String(length=16), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("posted_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["village_code"],
            ["villages.code"],
            name=op.f("fk_village_notices_village_code_villages"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_village_notices")),
    )
    with op.batch_alter_table("village_notices", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_village_notices_notice_id"), ["notice_id"])
        batch_op.create_index(batch_op.f("ix_village_notices_village_code"), ["village_code"])
        batch_op.create_index(batch_op.f("ix_village_notices_town_code"), ["town_code"])
        batch_op.create_index(batch_op.f("ix_village_notices_posted_at"), ["posted_at"])


def downgrade() -> None:
    with op.batch_alter_table("village_notices", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_village_notices_posted_at"))
        batch_op.drop_index(batch_op.f("ix_village_notices_town_code"))
        batch_op.drop_index(batch_op.f("ix_village_notices_village_code"))
        batch_op.drop_index(batch_op.f("ix_village_notices_notice_id"))
    op.drop_table("village_notices")
