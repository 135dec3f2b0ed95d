"""round lifecycle: offers to households, replay snapshots, retention timestamps, command-line decisions

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('round_inputs',
    sa.Column('round_id', sa.String(length=32), nullable=False),
    sa.Column('snapshot', sa.LargeBinary(), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('purged_cases', sa.Integer(), server_default='0', nullable=False),
    sa.ForeignKeyConstraint(['round_id'], ['rounds.round_id'], ),
    sa.PrimaryKeyConstraint('round_id')
    )
    op.create_table('match_offers',
    sa.Column('round_id', sa.String(length=32), nullable=False),
    sa.Column('case_id', sa.String(length=64), nullable=False),
    sa.Column('ags', sa.String(length=8), nullable=False),
    sa.Column('offer_id', sa.String(length=64), nullable=False),
    sa.Column('persons', sa.Integer(), nullable=False),
    sa.Column('demand', sa.JSON(), nullable=False),
    sa.Column('respond_by', sa.Date(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('offered_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('resolved_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['case_id'], ['households.case_id'], ),
    sa.ForeignKeyConstraint(['round_id'], ['rounds.round_id'], ),
    sa.PrimaryKeyConstraint('round_id', 'case_id')
    )
    with op.batch_alter_table('rounds') as batch:
        batch.add_column(sa.Column('offered_at', sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column('closed_at', sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table('households') as batch:
        batch.add_column(sa.Column('closed_at', sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column('purged_at', sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table('decisions') as batch:
        batch.add_column(sa.Column('source', sa.String(length=16), server_default='file', nullable=False))
        batch.alter_column('raw_file_id', existing_type=sa.Integer(), nullable=True)
    with op.batch_alter_table('quarantine') as batch:
        batch.alter_column('raw_file_id', existing_type=sa.Integer(), nullable=True)


def downgrade() -> None:
    with op.batch_alter_table('quarantine') as batch:
        batch.alter_column('raw_file_id', existing_type=sa.Integer(), nullable=False)
    with op.batch_alter_table('decisions') as batch:
        batch.alter_column('raw_file_id', existing_type=sa.Integer(), nullable=False)
        batch.drop_column('source')
    with op.batch_alter_table('households') as batch:
        batch.drop_column('purged_at')
        batch.drop_column('closed_at')
    with op.batch_alter_table('rounds') as batch:
        batch.drop_column('closed_at')
        batch.drop_column('offered_at')
    op.drop_table('match_offers')
    op.drop_table('round_inputs')
