"""staff accounts: temporary locks that grow with repeats, and a session generation

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-27 13:00:00

``locked_until`` ends a lock after repeated failed sign-ins (NULL with ``locked_at`` set:
locked by an administrator until unlocked); ``lock_count`` counts those locks so each one
lasts longer; ``session_generation`` is bumped on lock, deactivation and password change,
and a browser session or JWT carrying an older value is refused.
"""
import sqlalchemy as sa
from alembic import op


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('ab_user') as batch_op:
        batch_op.add_column(sa.Column('locked_until', sa.DateTime(timezone=True),
                                      nullable=True))
        batch_op.add_column(sa.Column('lock_count', sa.Integer(), nullable=False,
                                      server_default='0'))
        batch_op.add_column(sa.Column('session_generation', sa.Integer(), nullable=False,
                                      server_default='0'))


def downgrade():
    with op.batch_alter_table('ab_user') as batch_op:
        batch_op.drop_column('session_generation')
        batch_op.drop_column('lock_count')
        batch_op.drop_column('locked_until')
