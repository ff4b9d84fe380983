"""the ledger import's jobs in the database (issue 16 §1)

Revision ID: 0023_ledger_import_jobs
Revises: 0022_stored_files
Create Date: 2026-11-28 10:20:00

``ledger_import_job``: one row per file sent to 既存データ取込, its state and what the check
or the import found (JSON), once ``instance/ledger-imports/<token>/status.json`` of the
server that received the file; the file and the reports are in ``stored_file`` (kind
``ledger_import``). Any app server now shows the job and may start its import. Jobs of the
old folders are not carried over (they are kept 24 hours at most: send the file again).
"""
from alembic import op
import sqlalchemy as sa


revision = '0023_ledger_import_jobs'
down_revision = '0022_stored_files'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'ledger_import_job',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('token', sa.String(length=64), nullable=False),
        sa.Column('owner', sa.String(length=100), nullable=False),
        sa.Column('state', sa.String(length=10), nullable=False),
        sa.Column('status', sa.Text(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('heartbeat_at', sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("state IN ('checking', 'checked', 'importing', 'done', 'failed')",
                           name='ck_ledger_import_job_state'),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('token'),
    )
    op.create_index('ix_ledger_import_job_owner_created', 'ledger_import_job',
                    ['owner', 'created_at'])


def downgrade():
    op.drop_index('ix_ledger_import_job_owner_created', table_name='ledger_import_job')
    op.drop_table('ledger_import_job')
