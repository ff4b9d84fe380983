"""files kept in the database, shared by every app server (issue 16 §1)

Revision ID: 0022_stored_files
Revises: 0021_discard_candidates
Create Date: 2026-11-28 10:00:00

``stored_file`` and ``stored_file_chunk``: the extraction exports, the encrypted exports
prepared for one download (and later the ledger import's uploads) move out of the instance
folder of the server that made them, so that any app server behind the load balancer can
serve the download (app/services/file_store.py). ``export_job.attempts``: how many times a
job was started (a worker takes over a job whose runner stopped, once).
"""
from alembic import op
import sqlalchemy as sa


revision = '0022_stored_files'
down_revision = '0021_discard_candidates'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'stored_file',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('kind', sa.String(length=30), nullable=False),
        sa.Column('token', sa.String(length=100), nullable=False),
        sa.Column('owner', sa.String(length=100), nullable=True),
        sa.Column('filename', sa.String(length=200), nullable=False),
        sa.Column('size', sa.BigInteger(), nullable=False),
        sa.Column('chunks', sa.Integer(), nullable=False),
        sa.Column('sha256', sa.String(length=64), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('claimed_at', sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint('size >= 0 AND chunks >= 0', name='ck_stored_file_counts'),
        sa.CheckConstraint('length(token) > 0', name='ck_stored_file_token'),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('token'),
    )
    op.create_index('ix_stored_file_kind_created', 'stored_file', ['kind', 'created_at'])
    op.create_table(
        'stored_file_chunk',
        sa.Column('file_id', sa.Integer(), nullable=False),
        sa.Column('seq', sa.Integer(), nullable=False),
        sa.Column('data', sa.LargeBinary(), nullable=False),
        sa.CheckConstraint('seq >= 0', name='ck_stored_file_chunk_seq'),
        sa.ForeignKeyConstraint(['file_id'], ['stored_file.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('file_id', 'seq'),
    )
    with op.batch_alter_table('export_job') as batch:
        batch.add_column(sa.Column('attempts', sa.Integer(), nullable=False,
                                   server_default='0'))


def downgrade():
    with op.batch_alter_table('export_job') as batch:
        batch.drop_column('attempts')
    op.drop_table('stored_file_chunk')
    op.drop_index('ix_stored_file_kind_created', table_name='stored_file')
    op.drop_table('stored_file')
