"""initial schema

Revision ID: 0001
Revises: (none)
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('audit_events',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('actor', sa.String(length=64), nullable=False),
    sa.Column('event', sa.String(length=64), nullable=False),
    sa.Column('subject', sa.String(length=128), nullable=True),
    sa.Column('details', sa.JSON(), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('raw_files',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('original_name', sa.Text(), nullable=False),
    sa.Column('archived_path', sa.Text(), nullable=False),
    sa.Column('size_bytes', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=True),
    sa.Column('status', sa.String(length=32), nullable=False),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('sha256')
    )
    op.create_table('rounds',
    sa.Column('round_id', sa.String(length=32), nullable=False),
    sa.Column('round_date', sa.Date(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('policy', sa.JSON(), nullable=False),
    sa.Column('solver_stats', sa.JSON(), nullable=True),
    sa.Column('input_checksums', sa.JSON(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('solved_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('round_id'),
    sa.UniqueConstraint('round_date')
    )
    op.create_table('capacity_offers',
    sa.Column('offer_id', sa.String(length=64), nullable=False),
    sa.Column('raw_file_id', sa.Integer(), nullable=False),
    sa.Column('ags', sa.String(length=8), nullable=False),
    sa.Column('municipality_name', sa.Text(), nullable=False),
    sa.Column('state', sa.String(length=2), nullable=False),
    sa.Column('settlement_type', sa.String(length=16), nullable=False),
    sa.Column('valid_from', sa.Date(), nullable=False),
    sa.Column('valid_until', sa.Date(), nullable=False),
    sa.Column('places_persons', sa.Integer(), nullable=False),
    sa.Column('units_1_room', sa.Integer(), nullable=False),
    sa.Column('units_2_rooms', sa.Integer(), nullable=False),
    sa.Column('units_3_rooms', sa.Integer(), nullable=False),
    sa.Column('units_4plus_rooms', sa.Integer(), nullable=False),
    sa.Column('units_wheelchair', sa.Integer(), nullable=False),
    sa.Column('units_pets_allowed', sa.Integer(), nullable=False),
    sa.Column('kita_u3', sa.Integer(), nullable=False),
    sa.Column('kita_ue3', sa.Integer(), nullable=False),
    sa.Column('school_primary', sa.Integer(), nullable=False),
    sa.Column('school_secondary', sa.Integer(), nullable=False),
    sa.Column('language_course_seats', sa.Integer(), nullable=False),
    sa.Column('medical_services', sa.String(length=128), nullable=False),
    sa.Column('job_sectors_shortage', sa.String(length=256), nullable=False),
    sa.Column('ukrainian_community', sa.String(length=16), nullable=False),
    sa.Column('contact_name', sa.Text(), nullable=True),
    sa.Column('contact_email', sa.Text(), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['raw_file_id'], ['raw_files.id'], ),
    sa.PrimaryKeyConstraint('offer_id')
    )
    op.create_table('households',
    sa.Column('case_id', sa.String(length=64), nullable=False),
    sa.Column('pseudonym', sa.String(length=32), nullable=False),
    sa.Column('raw_file_id', sa.Integer(), nullable=False),
    sa.Column('submission_time', sa.String(length=40), nullable=True),
    sa.Column('interview_date', sa.Date(), nullable=False),
    sa.Column('interview_location', sa.Text(), nullable=True),
    sa.Column('consent_matching', sa.Boolean(), nullable=False),
    sa.Column('consent_health_share', sa.Boolean(), nullable=False),
    sa.Column('contact_phone', sa.Text(), nullable=True),
    sa.Column('contact_email', sa.Text(), nullable=True),
    sa.Column('languages', sa.String(length=64), nullable=False),
    sa.Column('german_level', sa.String(length=16), nullable=False),
    sa.Column('wheelchair_access', sa.Boolean(), nullable=False),
    sa.Column('medical_needs', sa.String(length=128), nullable=False),
    sa.Column('pets', sa.String(length=16), nullable=False),
    sa.Column('pref_settlement', sa.String(length=16), nullable=False),
    sa.Column('weight_work', sa.Integer(), nullable=False),
    sa.Column('weight_education', sa.Integer(), nullable=False),
    sa.Column('weight_community', sa.Integer(), nullable=False),
    sa.Column('weight_healthcare', sa.Integer(), nullable=False),
    sa.Column('weight_housing', sa.Integer(), nullable=False),
    sa.Column('weight_culture', sa.Integer(), nullable=False),
    sa.Column('ties_ags', sa.String(length=8), nullable=True),
    sa.Column('notes', sa.Text(), nullable=True),
    sa.Column('status', sa.String(length=16), server_default='pool', nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['raw_file_id'], ['raw_files.id'], ),
    sa.PrimaryKeyConstraint('case_id'),
    sa.UniqueConstraint('pseudonym')
    )
    op.create_table('packets',
    sa.Column('round_id', sa.String(length=32), nullable=False),
    sa.Column('ags', sa.String(length=8), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('html_path', sa.Text(), nullable=False),
    sa.Column('pdf_path', sa.Text(), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['round_id'], ['rounds.round_id'], ),
    sa.PrimaryKeyConstraint('round_id', 'ags', 'version'),
    sa.UniqueConstraint('round_id', 'ags', 'sha256', name='uq_packets_content')
    )
    op.create_table('quarantine',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('raw_file_id', sa.Integer(), nullable=False),
    sa.Column('table_name', sa.String(length=64), nullable=False),
    sa.Column('sheet', sa.String(length=128), nullable=True),
    sa.Column('source_row', sa.Integer(), nullable=True),
    sa.Column('field', sa.String(length=128), nullable=True),
    sa.Column('rule', sa.String(length=128), nullable=False),
    sa.Column('message', sa.Text(), nullable=False),
    sa.Column('record', sa.JSON(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('resolved_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['raw_file_id'], ['raw_files.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('validation_runs',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('raw_file_id', sa.Integer(), nullable=False),
    sa.Column('table_name', sa.String(length=64), nullable=False),
    sa.Column('success', sa.Boolean(), nullable=False),
    sa.Column('evaluated_rows', sa.Integer(), nullable=False),
    sa.Column('invalid_rows', sa.Integer(), nullable=False),
    sa.Column('report_path', sa.Text(), nullable=True),
    sa.Column('statistics', sa.JSON(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['raw_file_id'], ['raw_files.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('assignments',
    sa.Column('round_id', sa.String(length=32), nullable=False),
    sa.Column('case_id', sa.String(length=64), nullable=False),
    sa.Column('ags', sa.String(length=8), nullable=False),
    sa.Column('offer_id', sa.String(length=64), nullable=False),
    sa.Column('persons', sa.Integer(), nullable=False),
    sa.Column('score', sa.Float(), nullable=False),
    sa.Column('score_terms', sa.JSON(), nullable=False),
    sa.Column('preference_rank', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['case_id'], ['households.case_id'], ),
    sa.ForeignKeyConstraint(['round_id'], ['rounds.round_id'], ),
    sa.PrimaryKeyConstraint('round_id', 'case_id')
    )
    op.create_table('members',
    sa.Column('case_id', sa.String(length=64), nullable=False),
    sa.Column('member_no', sa.Integer(), nullable=False),
    sa.Column('relation', sa.String(length=16), nullable=False),
    sa.Column('sex', sa.String(length=16), nullable=False),
    sa.Column('birth_year', sa.Integer(), nullable=False),
    sa.Column('mobility_impaired', sa.Boolean(), nullable=False),
    sa.Column('occupation', sa.String(length=32), nullable=False),
    sa.Column('qualification', sa.String(length=32), nullable=False),
    sa.ForeignKeyConstraint(['case_id'], ['households.case_id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('case_id', 'member_no')
    )
    op.create_table('unmatched',
    sa.Column('round_id', sa.String(length=32), nullable=False),
    sa.Column('case_id', sa.String(length=64), nullable=False),
    sa.Column('persons', sa.Integer(), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['case_id'], ['households.case_id'], ),
    sa.ForeignKeyConstraint(['round_id'], ['rounds.round_id'], ),
    sa.PrimaryKeyConstraint('round_id', 'case_id')
    )


def downgrade() -> None:
    op.drop_table('unmatched')
    op.drop_table('members')
    op.drop_table('assignments')
    op.drop_table('validation_runs')
    op.drop_table('quarantine')
    op.drop_table('packets')
    op.drop_table('households')
    op.drop_table('capacity_offers')
    op.drop_table('rounds')
    op.drop_table('raw_files')
    op.drop_table('audit_events')
