"""the booking's copies of its slot (venue and purpose, start) are never empty

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-27 16:00:00

``reservation.offer_id`` and ``reservation.starts_at`` are copied from the slot when a
booking is made or moved (app/services/booking.py); 0006 added them as nullable and filled
them. Any row still without them is filled from its slot first; a row that cannot be
filled (no slot to copy from) stops the upgrade with its id, rather than being guessed.
"""
import sqlalchemy as sa
from alembic import op


revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None

COPIES = (('offer_id', sa.Integer()), ('starts_at', sa.DateTime(timezone=True)))


def upgrade():
    connection = op.get_bind()
    connection.execute(sa.text(
        "UPDATE reservation SET offer_id = (SELECT slot.offer_id FROM slot "
        "WHERE slot.id = reservation.slot_id) WHERE offer_id IS NULL"))
    connection.execute(sa.text(
        "UPDATE reservation SET starts_at = (SELECT slot.starts_at FROM slot "
        "WHERE slot.id = reservation.slot_id) WHERE starts_at IS NULL"))
    empty = connection.execute(sa.text(
        "SELECT id FROM reservation WHERE offer_id IS NULL OR starts_at IS NULL "
        "ORDER BY id")).scalars().all()
    if empty:
        raise RuntimeError("bookings without a slot to copy the venue and start from: "
                           f"ids {', '.join(str(i) for i in empty[:20])}; "
                           "fix them before upgrading")
    with op.batch_alter_table('reservation') as batch_op:
        for name, kind in COPIES:
            batch_op.alter_column(name, existing_type=kind, nullable=False)


def downgrade():
    with op.batch_alter_table('reservation') as batch_op:
        for name, kind in COPIES:
            batch_op.alter_column(name, existing_type=kind, nullable=True)
