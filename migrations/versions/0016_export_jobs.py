"""background exports of the extraction screen (issue 14 §2)

Revision ID: 0016_export_jobs
Revises: 0015_ledger_search
Create Date: 2026-11-29 00:00:00

- ``export_job``: one XLSX or large CSV export written in the background into
  instance/exports/ and offered to its owner when done (app/services/extraction.py).
"""
from alembic import op
import sqlalchemy as sa

revision = '0016_export_jobs'
down_revision = '0015_ledger_search'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('export_job',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('token', sa.String(length=64), nullable=False),
    sa.Column('owner', sa.String(length=100), nullable=False),
    sa.Column('subject', sa.String(length=30), nullable=False),
    sa.Column('definition', sa.Text(), nullable=False),
    sa.Column('format', sa.String(length=4), nullable=False),
    sa.Column('encoding', sa.String(length=10), nullable=True),
    sa.Column('on_unmappable', sa.String(length=10), nullable=True),
    sa.Column('replacement', sa.String(length=1), nullable=True),
    sa.Column('state', sa.String(length=10), nullable=False),
    sa.Column('rows_total', sa.Integer(), nullable=False),
    sa.Column('rows_written', sa.Integer(), nullable=False),
    sa.Column('replaced', sa.Integer(), nullable=False),
    sa.Column('file_name', sa.String(length=200), nullable=True),
    sa.Column('download_name', sa.String(length=200), nullable=False),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('heartbeat_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('downloaded_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint("state IN ('queued', 'running', 'done', 'failed', 'expired')",
                       name='ck_export_job_state'),
    sa.CheckConstraint("format IN ('csv', 'xlsx')", name='ck_export_job_format'),
    sa.CheckConstraint('rows_total >= 0 AND rows_written >= 0 AND replaced >= 0',
                       name='ck_export_job_counts'),
    sa.CheckConstraint("state <> 'done' OR (file_name IS NOT NULL AND finished_at IS NOT NULL)",
                       name='ck_export_job_done_file'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('token', name='uq_export_job_token')
    )
    op.create_index('ix_export_job_owner_created', 'export_job', ['owner', 'created_at'],
                    unique=False)
    op.create_index('ix_export_job_state', 'export_job', ['state'], unique=False)


def downgrade():
    op.drop_index('ix_export_job_state', table_name='export_job')
    op.drop_index('ix_export_job_owner_created', table_name='export_job')
    op.drop_table('export_job')
