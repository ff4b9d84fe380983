"""the discard candidates as last found (issue 16 §3)

Revision ID: 0021_discard_candidates
Revises: 0019_export_policy
Create Date: 2026-11-28 06:00:00

``discard_candidate``: one row per card the last refresh found past a deadline (reason as a
code and a date, when first found), rebuilt nightly and by the 「今すぐ更新」 button
(app/services/discard.py) so the 廃棄候補 screen no longer judges every not-yet-issued card
on each page view. A card deleted from the ledger takes its row with it. When it was last
rebuilt is the ``site_setting`` row ``discard_candidates`` (written by the first refresh).
"""
from alembic import op
import sqlalchemy as sa


revision = '0021_discard_candidates'
down_revision = "0020_jobs"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'discard_candidate',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('card_id', sa.Integer(), nullable=False),
        sa.Column('reason', sa.String(length=20), nullable=False),
        sa.Column('reason_on', sa.Date(), nullable=False),
        sa.Column('found_at', sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("reason IN ('expired', 'returned', 'renotified', 'notice_sent')",
                           name='ck_discard_candidate_reason'),
        sa.ForeignKeyConstraint(['card_id'], ['card.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('card_id'),
    )


def downgrade():
    op.drop_table('discard_candidate')
    op.execute("DELETE FROM site_setting WHERE key = 'discard_candidates'")
