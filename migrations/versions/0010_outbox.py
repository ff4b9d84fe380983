"""the outbox: mails to residents written with the change they announce, sent afterwards

Revision ID: 0010
Revises: 0008
Create Date: 2026-11-27 14:00:00

One row per mail (confirmation, change, cancellation, reminder, closed time), rendered at
enqueue time; ``flask --app run outbox send`` claims each row by a compare-and-set on
``state`` and ``next_attempt_at``, sends it and marks it sent, or retries it later.
"""
import sqlalchemy as sa
from alembic import op


revision = '0010'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'outbox',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('kind', sa.String(length=20), nullable=False),
        sa.Column('reservation_id', sa.Integer(), nullable=True),
        sa.Column('to_address', sa.String(length=200), nullable=False),
        sa.Column('locale', sa.String(length=10), nullable=False),
        sa.Column('subject', sa.String(length=300), nullable=False),
        sa.Column('body', sa.Text(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('state', sa.String(length=10), nullable=False),
        sa.Column('attempts', sa.Integer(), nullable=False),
        sa.Column('next_attempt_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('last_error', sa.String(length=500), nullable=True),
        sa.Column('sent_at', sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("state IN ('queued', 'sending', 'sent', 'failed')",
                           name='ck_outbox_state'),
        sa.CheckConstraint('attempts >= 0', name='ck_outbox_attempts'),
        sa.ForeignKeyConstraint(['reservation_id'], ['reservation.id'], ),
        sa.PrimaryKeyConstraint('id'),
    )
    with op.batch_alter_table('outbox') as batch_op:
        batch_op.create_index('ix_outbox_reservation_id', ['reservation_id'])
        batch_op.create_index('ix_outbox_state_next_attempt_at', ['state', 'next_attempt_at'])


def downgrade():
    with op.batch_alter_table('outbox') as batch_op:
        batch_op.drop_index('ix_outbox_state_next_attempt_at')
        batch_op.drop_index('ix_outbox_reservation_id')
    op.drop_table('outbox')
