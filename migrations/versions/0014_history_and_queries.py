"""booking history, card places in the card history, saved extraction queries (issue 14)

Revision ID: 0014_history_and_queries
Revises: 0013_intake_fees_documents
Create Date: 2026-11-28 00:40:00

- ``booking_event``: what happened to each booking and when (made, changed, cancelled by
  the resident or by staff, arrived, check-in undone, no-show, completed). The statistics
  count these, never today's state. Bookings made before this revision get their events
  rebuilt from the booking's own dates: made (created_at), arrived (checked_in_at, with
  the clerk), completed (completed_at), cancelled (cancelled_at; by staff unless the
  residents' page cancelled it), no-show (at the slot's start; the office's day close, so
  by staff, as the live close writes it). A change of slot before
  this revision left no date and is not rebuilt; old events carry the booking's current
  slot. A 窓口 booking checked in within two minutes of being made counts as a walk-in.
- ``card_event.storage_place_id``: the place the card was kept in after each event, so
  the stock per place at the end of any day can be read from the history. Events before
  this revision get the card's current place (if it is still kept).
- ``saved_query``: extraction queries saved by name, private or shared.
"""
from datetime import timedelta, timezone

from alembic import op
import sqlalchemy as sa

revision = '0014_history_and_queries'
down_revision = '0013_intake_fees_documents'
branch_labels = None
depends_on = None

KEPT_AWAY = ('handed_over', 'mailed', 'discarded')
RESIDENT_CANCEL_REASON = 'resident (web)'  # app/public/manage.py


def _aware(value):
    """SQLite hands back naive UTC; PostgreSQL aware values."""
    if value is None:
        return None
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def _backfill_bookings(bind):
    stamp = sa.DateTime(timezone=True)
    reservation = sa.table('reservation', sa.column('id'), sa.column('offer_id'),
                           sa.column('starts_at', stamp), sa.column('seats'),
                           sa.column('state'), sa.column('channel'),
                           sa.column('created_at', stamp), sa.column('checked_in_at', stamp),
                           sa.column('checked_in_by'), sa.column('completed_at', stamp),
                           sa.column('cancelled_at', stamp), sa.column('cancel_reason'))
    event = sa.table('booking_event', sa.column('reservation_id'), sa.column('kind'),
                     sa.column('at', sa.DateTime(timezone=True)), sa.column('by_staff'),
                     sa.column('actor'), sa.column('channel'), sa.column('offer_id'),
                     sa.column('starts_at', sa.DateTime(timezone=True)), sa.column('seats'))
    naive = bind.dialect.name == 'sqlite'

    def stored(value):
        value = _aware(value).astimezone(timezone.utc)
        return value.replace(tzinfo=None) if naive else value

    batch = []
    for row in bind.execute(sa.select(reservation).order_by(reservation.c.id)):
        made, arrived = _aware(row.created_at), _aware(row.checked_in_at)
        channel = row.channel
        if (channel == 'counter' and arrived is not None
                and timedelta(0) <= arrived - made <= timedelta(minutes=2)):
            channel = 'walk_in'
        common = dict(reservation_id=row.id, channel=channel, offer_id=row.offer_id,
                      starts_at=stored(row.starts_at), seats=row.seats)
        batch.append(dict(common, kind='made', at=stored(made),
                          by_staff=row.channel != 'web', actor='system'))
        if arrived is not None:
            batch.append(dict(common, kind='arrived', at=stored(arrived), by_staff=True,
                              actor=row.checked_in_by or 'system'))
        if row.completed_at is not None:
            batch.append(dict(common, kind='completed', at=stored(row.completed_at),
                              by_staff=True, actor='system'))
        if row.cancelled_at is not None:
            by_resident = row.cancel_reason == RESIDENT_CANCEL_REASON
            batch.append(dict(common, kind='cancelled', at=stored(row.cancelled_at),
                              by_staff=not by_resident,
                              actor='住民' if by_resident else 'system'))
        if row.state == 'no_show':
            batch.append(dict(common, kind='no_show', at=stored(row.starts_at),
                              by_staff=True, actor='system'))
        if len(batch) >= 5000:
            bind.execute(event.insert(), batch)
            batch = []
    if batch:
        bind.execute(event.insert(), batch)


def upgrade():
    op.create_table('booking_event',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('reservation_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=12), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('by_staff', sa.Boolean(), nullable=False),
    sa.Column('actor', sa.String(length=100), nullable=False),
    sa.Column('channel', sa.String(length=10), nullable=False),
    sa.Column('offer_id', sa.Integer(), nullable=False),
    sa.Column('starts_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('seats', sa.Integer(), nullable=False),
    sa.CheckConstraint("kind IN ('made', 'changed', 'cancelled', 'arrived', 'undone', "
                       "'no_show', 'completed')", name='ck_booking_event_kind'),
    sa.CheckConstraint("channel IN ('web', 'phone', 'counter', 'walk_in')",
                       name='ck_booking_event_channel'),
    sa.CheckConstraint('seats >= 1', name='ck_booking_event_seats'),
    sa.ForeignKeyConstraint(['offer_id'], ['venue_purpose.id'], ),
    sa.ForeignKeyConstraint(['reservation_id'], ['reservation.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_booking_event_kind_at', 'booking_event', ['kind', 'at'], unique=False)
    op.create_index(op.f('ix_booking_event_at'), 'booking_event', ['at'], unique=False)
    op.create_index(op.f('ix_booking_event_reservation_id'), 'booking_event',
                    ['reservation_id'], unique=False)

    with op.batch_alter_table('card_event') as batch_op:
        batch_op.add_column(sa.Column('storage_place_id', sa.Integer(), nullable=True))
        batch_op.create_foreign_key('fk_card_event_storage_place_id', 'storage_place',
                                    ['storage_place_id'], ['id'])
        batch_op.create_index('ix_card_event_to_state_at', ['to_state', 'at'], unique=False)
        batch_op.create_index('ix_card_event_card_at', ['card_id', 'at'], unique=False)

    op.create_table('saved_query',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('subject', sa.String(length=30), nullable=False),
    sa.Column('definition', sa.Text(), nullable=False),
    sa.Column('owner', sa.String(length=100), nullable=False),
    sa.Column('shared', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('length(name) > 0', name='ck_saved_query_name'),
    sa.CheckConstraint('length(subject) > 0', name='ck_saved_query_subject'),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('uq_saved_query_private_name', 'saved_query', ['owner', 'name'],
                    unique=True, sqlite_where=sa.text('shared = 0'),
                    postgresql_where=sa.text('NOT shared'))
    op.create_index('uq_saved_query_shared_name', 'saved_query', ['name'], unique=True,
                    sqlite_where=sa.text('shared = 1'), postgresql_where=sa.text('shared'))

    bind = op.get_bind()
    _backfill_bookings(bind)
    kept_away = ", ".join(f"'{state}'" for state in KEPT_AWAY)
    op.execute(f"""UPDATE card_event SET storage_place_id = (
        SELECT card.storage_place_id FROM card WHERE card.id = card_event.card_id)
        WHERE to_state NOT IN ({kept_away})""")


def downgrade():
    op.drop_index('uq_saved_query_shared_name', table_name='saved_query')
    op.drop_index('uq_saved_query_private_name', table_name='saved_query')
    op.drop_table('saved_query')
    with op.batch_alter_table('card_event') as batch_op:
        batch_op.drop_index('ix_card_event_card_at')
        batch_op.drop_index('ix_card_event_to_state_at')
        batch_op.drop_constraint('fk_card_event_storage_place_id', type_='foreignkey')
        batch_op.drop_column('storage_place_id')
    op.drop_index(op.f('ix_booking_event_reservation_id'), table_name='booking_event')
    op.drop_index(op.f('ix_booking_event_at'), table_name='booking_event')
    op.drop_index('ix_booking_event_kind_at', table_name='booking_event')
    op.drop_table('booking_event')
