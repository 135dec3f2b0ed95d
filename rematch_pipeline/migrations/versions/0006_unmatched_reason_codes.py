"""unmatched reasons kept as codes and counts beside their words

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Rounds stored before keep their reasons in words only (the round report groups those by their words).
    with op.batch_alter_table('unmatched') as batch:
        batch.add_column(sa.Column('reason_detail', sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('unmatched') as batch:
        batch.drop_column('reason_detail')
