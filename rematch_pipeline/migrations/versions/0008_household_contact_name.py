"""a household may give the name it wants to be addressed by (contact data, like its phone and e-mail)

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('households') as batch:
        batch.add_column(sa.Column('contact_name', sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('households') as batch:
        batch.drop_column('contact_name')
