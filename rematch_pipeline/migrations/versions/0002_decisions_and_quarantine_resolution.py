"""decisions table; raw files record their detected format; quarantine rows remember what resolved them

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('decisions',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('raw_file_id', sa.Integer(), nullable=False),
    sa.Column('case_id', sa.String(length=64), nullable=False),
    sa.Column('round_id', sa.String(length=32), nullable=False),
    sa.Column('decision', sa.String(length=16), nullable=False),
    sa.Column('decided_at', sa.String(length=40), nullable=False),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['raw_file_id'], ['raw_files.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('case_id', 'round_id', name='uq_decisions_case_round')
    )
    with op.batch_alter_table('raw_files') as batch:
        batch.add_column(sa.Column('format', sa.String(length=32), nullable=True))
    with op.batch_alter_table('quarantine') as batch:
        batch.add_column(sa.Column('resolved_by_raw_file_id', sa.Integer(), nullable=True))
        batch.create_foreign_key('fk_quarantine_resolved_by_raw_file_id', 'raw_files',
                                 ['resolved_by_raw_file_id'], ['id'])


def downgrade() -> None:
    with op.batch_alter_table('quarantine') as batch:
        batch.drop_constraint('fk_quarantine_resolved_by_raw_file_id', type_='foreignkey')
        batch.drop_column('resolved_by_raw_file_id')
    with op.batch_alter_table('raw_files') as batch:
        batch.drop_column('format')
    op.drop_table('decisions')
