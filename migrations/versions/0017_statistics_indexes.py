"""indexes that let the statistics (集計) read a range of the history in index order
(issue 14 §4: a 年度 report over 1,000,000 booking events and 300,000 cards under 1 s)

Revision ID: 0017_statistics_indexes
Revises: 0016_export_jobs
Create Date: 2026-11-28 03:00:00

One query per source counts all its measures over the rows of the range
(app/services/statistics.py). Through ``ix_booking_event_at`` each of those rows is a step
to a table page somewhere else (the history of a booking is written as it happens, but a
booking's events are spread over weeks); these covering indexes hold every column the
report reads, in the order it reads them, so the range is one sequential read of the index
(SQLite: "USING COVERING INDEX"; PostgreSQL: "Index Only Scan").

- ``ix_booking_event_statistics``: bookings dated by when they happened;
- ``ix_booking_event_kind_starts_at``: the seats used, check-ins dated by the slot's time
  (and the few takebacks of check-ins, by kind);
- ``ix_card_event_statistics``: card figures dated by the event;
- PostgreSQL only, ``ix_card_event_latest_pg`` (card_id, at DESC, id DESC) INCLUDE
  (to_state, storage_place_id): the stock at the end of a day is each card's latest event
  (``DISTINCT ON (card_id)``), read in this order instead of sorting every event. SQLite
  reads it per card from ``ix_card_event_card_at``, whose entries end with the rowid.
"""
from alembic import op

revision = '0017_statistics_indexes'
down_revision = '0016_export_jobs'
branch_labels = None
depends_on = None

INDEXES = [
    ('ix_booking_event_statistics', 'booking_event',
     ['at', 'kind', 'by_staff', 'offer_id', 'channel', 'seats', 'starts_at', 'reservation_id',
      'actor']),
    ('ix_booking_event_kind_starts_at', 'booking_event',
     ['kind', 'starts_at', 'offer_id', 'seats', 'reservation_id', 'at']),
    ('ix_card_event_statistics', 'card_event',
     ['at', 'to_state', 'from_state', 'username', 'card_id']),
]


def upgrade():
    for name, table, columns in INDEXES:
        op.create_index(name, table, columns, unique=False)
    if op.get_bind().dialect.name == 'postgresql':
        op.execute('CREATE INDEX ix_card_event_latest_pg ON card_event '
                   '(card_id, at DESC, id DESC) INCLUDE (to_state, storage_place_id)')


def downgrade():
    if op.get_bind().dialect.name == 'postgresql':
        op.execute('DROP INDEX ix_card_event_latest_pg')
    for name, table, _columns in reversed(INDEXES):
        op.drop_index(name, table_name=table)
