"""optional English texts of purposes, notices and maintenance windows for residents

Revision ID: 0012_english_texts
Revises: 0011
Create Date: 2026-11-27 19:00:00

Residents who choose English read ``<field>_en`` where staff wrote one, and the Japanese
text where they did not (app/models/texts.py). Every column is nullable: existing rows
keep showing their Japanese text.
"""
import sqlalchemy as sa
from alembic import op


revision = '0012_english_texts'
down_revision = '0011'
branch_labels = None
depends_on = None

COLUMNS = {
    'purpose': (('name_en', sa.String(length=100)), ('description_en', sa.Text()),
                ('what_to_bring_en', sa.Text())),
    'notice': (('title_en', sa.String(length=200)), ('body_en', sa.Text())),
    'maintenance_window': (('message_en', sa.Text()),),
}


def upgrade():
    for table, columns in COLUMNS.items():
        with op.batch_alter_table(table) as batch_op:
            for name, kind in columns:
                batch_op.add_column(sa.Column(name, kind, nullable=True))


def downgrade():
    for table, columns in COLUMNS.items():
        with op.batch_alter_table(table) as batch_op:
            for name, _ in reversed(columns):
                batch_op.drop_column(name)
