"""the card ledger at scale: a per-state tally kept by triggers, kana in code-point order,
trigram search on PostgreSQL (issue 14 §3)

Revision ID: 0015_ledger_search
Revises: 0014_history_and_queries
Create Date: 2026-11-28 02:00:00

- ``card_tally``: cards per (visit mode, state), filled from the ledger and then kept by
  triggers on ``card`` (insert, delete, change of state or visit mode), so the ledger's
  summary bar and its unfiltered count read a dozen rows instead of every card. On
  PostgreSQL the trigger is a deferred constraint trigger (it runs at commit, under a
  transaction advisory lock, so two commits never wait for each other's tally rows in
  opposite order); on SQLite (one writer at a time) a plain trigger.
- ``card.name_kana`` in the "C" collation on PostgreSQL (code-point order, as SQLite's
  BINARY): the kana prefix search is a range on its index.
- PostgreSQL: pg_trgm GIN indexes on ``card.name`` and ``card.name_kana`` for "contains",
  when the extension is there or may be created; otherwise skipped with a log line.

A later migration that rebuilds ``card`` on SQLite (batch mode) must call
``create_sqlite_triggers`` again: the rebuild drops them.
"""
import logging

from alembic import op
import sqlalchemy as sa

revision = '0015_ledger_search'
down_revision = '0014_history_and_queries'
branch_labels = None
depends_on = None

log = logging.getLogger('alembic.runtime.migration')

# Any number unique to this lock; app/services/audit.py uses its own.
PG_TALLY_LOCK = 1_415_926_535

SQLITE_TRIGGERS = [
    """CREATE TRIGGER card_tally_insert AFTER INSERT ON card BEGIN
         INSERT INTO card_tally (visit_mode, state, cards) VALUES (NEW.visit_mode, NEW.state, 1)
         ON CONFLICT (visit_mode, state) DO UPDATE SET cards = cards + 1;
       END""",
    """CREATE TRIGGER card_tally_delete AFTER DELETE ON card BEGIN
         UPDATE card_tally SET cards = cards - 1
          WHERE visit_mode = OLD.visit_mode AND state = OLD.state;
       END""",
    """CREATE TRIGGER card_tally_update AFTER UPDATE OF state, visit_mode ON card
       WHEN OLD.state IS NOT NEW.state OR OLD.visit_mode IS NOT NEW.visit_mode BEGIN
         UPDATE card_tally SET cards = cards - 1
          WHERE visit_mode = OLD.visit_mode AND state = OLD.state;
         INSERT INTO card_tally (visit_mode, state, cards) VALUES (NEW.visit_mode, NEW.state, 1)
         ON CONFLICT (visit_mode, state) DO UPDATE SET cards = cards + 1;
       END""",
]

PG_FUNCTION = f"""
CREATE OR REPLACE FUNCTION card_tally_apply() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'UPDATE' AND OLD.state IS NOT DISTINCT FROM NEW.state
     AND OLD.visit_mode IS NOT DISTINCT FROM NEW.visit_mode THEN
    RETURN NULL;
  END IF;
  PERFORM pg_advisory_xact_lock({PG_TALLY_LOCK});
  IF TG_OP IN ('UPDATE', 'DELETE') THEN
    UPDATE card_tally SET cards = cards - 1
     WHERE visit_mode = OLD.visit_mode AND state = OLD.state;
  END IF;
  IF TG_OP IN ('UPDATE', 'INSERT') THEN
    INSERT INTO card_tally (visit_mode, state, cards) VALUES (NEW.visit_mode, NEW.state, 1)
    ON CONFLICT (visit_mode, state) DO UPDATE SET cards = card_tally.cards + 1;
  END IF;
  RETURN NULL;
END $$
"""
PG_TRIGGER = """
CREATE CONSTRAINT TRIGGER card_tally_change
AFTER INSERT OR DELETE OR UPDATE OF state, visit_mode ON card
DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION card_tally_apply()
"""
TRIGRAM_INDEXES = {'ix_card_name_trgm': 'name', 'ix_card_name_kana_trgm': 'name_kana'}


def create_sqlite_triggers():
    for statement in SQLITE_TRIGGERS:
        op.execute(statement)


def _trigram_indexes(bind) -> None:
    """pg_trgm when it is installed or this user may create it; else a log line."""
    present = bind.exec_driver_sql(
        "SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm'").first()
    if not present:
        try:
            with bind.begin_nested():
                bind.exec_driver_sql('CREATE EXTENSION IF NOT EXISTS pg_trgm')
        except sa.exc.DBAPIError as error:
            log.warning('pg_trgm could not be created (%s): name "contains" searches in '
                        'the card ledger read every card. A superuser can run CREATE '
                        'EXTENSION pg_trgm and then this revision again.',
                        str(error.orig).splitlines()[0])
            return
    for name, column in TRIGRAM_INDEXES.items():
        op.execute(f'CREATE INDEX IF NOT EXISTS {name} ON card USING gin ({column} gin_trgm_ops)')


def upgrade():
    op.create_table('card_tally',
    sa.Column('visit_mode', sa.String(length=1), nullable=False),
    sa.Column('state', sa.String(length=20), nullable=False),
    sa.Column('cards', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('visit_mode', 'state')
    )
    bind = op.get_bind()
    op.execute('INSERT INTO card_tally (visit_mode, state, cards) '
               'SELECT visit_mode, state, count(*) FROM card GROUP BY visit_mode, state')
    if bind.dialect.name == 'postgresql':
        op.execute(PG_FUNCTION)
        op.execute(PG_TRIGGER)
        op.alter_column('card', 'name_kana', type_=sa.String(length=200, collation='C'),
                        existing_type=sa.String(length=200), existing_nullable=False)
        _trigram_indexes(bind)
    else:
        create_sqlite_triggers()


def downgrade():
    bind = op.get_bind()
    if bind.dialect.name == 'postgresql':
        for name in TRIGRAM_INDEXES:
            op.execute(f'DROP INDEX IF EXISTS {name}')
        op.alter_column('card', 'name_kana', type_=sa.String(length=200),
                        existing_type=sa.String(length=200, collation='C'),
                        existing_nullable=False)
        op.execute('DROP TRIGGER IF EXISTS card_tally_change ON card')
        op.execute('DROP FUNCTION IF EXISTS card_tally_apply()')
    else:
        for name in ('card_tally_insert', 'card_tally_delete', 'card_tally_update'):
            op.execute(f'DROP TRIGGER IF EXISTS {name}')
    op.drop_table('card_tally')
