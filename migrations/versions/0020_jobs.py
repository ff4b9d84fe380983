"""runs of the worker's scheduled jobs (issue 16 §3)

Revision ID: 0020_jobs
Revises: 0019_export_policy
Create Date: 2026-11-28 06:00:00

``job_run``: one row per job and period (UNIQUE), claimed by the INSERT; a row left
``running`` past its lease or ``failed`` with attempts left is claimed again by a
compare-and-set on its state (app/services/jobs.py).
"""
from alembic import op
import sqlalchemy as sa


revision = '0020_jobs'
down_revision = '0019_export_policy'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'job_run',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('job', sa.String(length=40), nullable=False),
        sa.Column('period', sa.String(length=20), nullable=False),
        sa.Column('state', sa.String(length=10), nullable=False),
        sa.Column('attempts', sa.Integer(), nullable=False),
        sa.Column('worker', sa.String(length=120), nullable=False),
        sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('lease_until', sa.DateTime(timezone=True), nullable=False),
        sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('succeeded_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('result', sa.String(length=500), nullable=True),
        sa.Column('error', sa.String(length=1000), nullable=True),
        sa.CheckConstraint("state IN ('running', 'succeeded', 'failed', 'skipped')",
                           name='ck_job_run_state'),
        sa.CheckConstraint('attempts >= 1', name='ck_job_run_attempts'),
        sa.CheckConstraint('length(job) > 0 AND length(period) > 0', name='ck_job_run_keys'),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('job', 'period', name='uq_job_run_job_period'),
    )


def downgrade():
    op.drop_table('job_run')
