"""file sizes beyond 2 GiB: a refused oversized file is still recorded with its true size

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('raw_files') as batch:
        batch.alter_column('size_bytes', existing_type=sa.Integer(), type_=sa.BigInteger(), existing_nullable=False)


def downgrade() -> None:
    with op.batch_alter_table('raw_files') as batch:
        batch.alter_column('size_bytes', existing_type=sa.BigInteger(), type_=sa.Integer(), existing_nullable=False)
