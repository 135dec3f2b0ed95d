"""a quarantine row superseded by the same problem in a newer file names the row that replaced it

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('quarantine') as batch:
        batch.add_column(sa.Column('superseded_by', sa.Integer(), nullable=True))
        batch.create_foreign_key('fk_quarantine_superseded_by', 'quarantine', ['superseded_by'], ['id'])


def downgrade() -> None:
    with op.batch_alter_table('quarantine') as batch:
        batch.drop_constraint('fk_quarantine_superseded_by', type_='foreignkey')
        batch.drop_column('superseded_by')
