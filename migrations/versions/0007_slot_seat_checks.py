"""slot seats backed by the database: taken never below 0 nor above the seats

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-27 12:50:00

A bug that frees seats twice, or takes more than there are, now fails loudly at the
UPDATE instead of overbooking the slot later.
"""
from alembic import op


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('slot') as batch_op:
        batch_op.create_check_constraint('ck_slot_taken_within_seats',
                                         'taken >= 0 AND taken <= seats')
        batch_op.create_check_constraint('ck_slot_seats_positive', 'seats >= 0')
    with op.batch_alter_table('hold') as batch_op:
        batch_op.create_check_constraint('ck_hold_seats_positive', 'seats >= 1')
    with op.batch_alter_table('reservation') as batch_op:
        batch_op.create_check_constraint('ck_reservation_seats_positive', 'seats >= 1')


def downgrade():
    with op.batch_alter_table('reservation') as batch_op:
        batch_op.drop_constraint('ck_reservation_seats_positive', type_='check')
    with op.batch_alter_table('hold') as batch_op:
        batch_op.drop_constraint('ck_hold_seats_positive', type_='check')
    with op.batch_alter_table('slot') as batch_op:
        batch_op.drop_constraint('ck_slot_seats_positive', type_='check')
        batch_op.drop_constraint('ck_slot_taken_within_seats', type_='check')
