"""application intake, issuance fees and scanned documents (issue 13)

Revision ID: 0013_intake_fees_documents
Revises: 0012_english_texts
Create Date: 2026-11-27 21:48:38

New tables only: intake and outreach_session (申請受付, 出張申請), fee_schedule (seeded
with DOMAIN.md's amounts), fee_entry, receipt_counter and daily_close (手数料, 日計表),
intake_document and document_blob (scanned papers, encrypted). Every rule the services
keep is also a CHECK, UNIQUE or foreign key here.
"""
from datetime import date

from alembic import op
import sqlalchemy as sa

# DOMAIN.md "Fees": 再交付 1,000 yen (card 800 + certificate 200), 特急発行 2,000 yen
# (1,800 + 200) since 2024-12-02. Supervisors add rows with later valid-from dates.
SEED_FEES = [
    dict(kind='reissue', valid_from=date(2016, 1, 1), card_amount=800, cert_amount=200,
         note='再交付手数料（カード800円＋電子証明書200円）'),
    dict(kind='express', valid_from=date(2024, 12, 2), card_amount=1800, cert_amount=200,
         note='特急発行（電子証明書なしは1,800円）'),
]


# revision identifiers, used by Alembic.
revision = '0013_intake_fees_documents'
down_revision = '0012_english_texts'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('fee_schedule',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('valid_from', sa.Date(), nullable=False),
    sa.Column('card_amount', sa.Integer(), nullable=False),
    sa.Column('cert_amount', sa.Integer(), nullable=False),
    sa.Column('note', sa.String(length=200), nullable=True),
    sa.CheckConstraint("kind IN ('reissue', 'express')", name='ck_fee_schedule_kind'),
    sa.CheckConstraint('card_amount >= 0 AND cert_amount >= 0', name='ck_fee_schedule_amounts'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('kind', 'valid_from', name='uq_fee_schedule_kind_valid_from')
    )
    fee_schedule = sa.table('fee_schedule', sa.column('kind', sa.String),
                            sa.column('valid_from', sa.Date), sa.column('card_amount', sa.Integer),
                            sa.column('cert_amount', sa.Integer), sa.column('note', sa.String))
    op.bulk_insert(fee_schedule, SEED_FEES)
    op.create_table('outreach_session',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('site_kind', sa.String(length=20), nullable=False),
    sa.Column('site_name', sa.String(length=100), nullable=False),
    sa.Column('address', sa.String(length=300), nullable=True),
    sa.Column('staff', sa.String(length=300), nullable=True),
    sa.Column('note', sa.Text(), nullable=True),
    sa.CheckConstraint("site_kind IN ('community_center', 'company', 'school', 'welfare', 'home_visit', 'other')", name='ck_outreach_site_kind'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('outreach_session', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_outreach_session_day'), ['day'], unique=False)

    op.create_table('receipt_counter',
    sa.Column('fiscal_year', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('last', sa.Integer(), nullable=False),
    sa.CheckConstraint('last >= 0', name='ck_receipt_counter_last'),
    sa.PrimaryKeyConstraint('fiscal_year')
    )
    op.create_table('daily_close',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('venue_id', sa.Integer(), nullable=False),
    sa.Column('clerk', sa.String(length=100), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('counted_cash', sa.Integer(), nullable=False),
    sa.Column('expected_cash', sa.Integer(), nullable=False),
    sa.Column('difference', sa.Integer(), nullable=False),
    sa.Column('explanation', sa.Text(), nullable=True),
    sa.Column('closed_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('closed_by', sa.String(length=100), nullable=False),
    sa.CheckConstraint('difference = 0 OR explanation IS NOT NULL', name='ck_daily_explained'),
    sa.CheckConstraint('difference = counted_cash - expected_cash', name='ck_daily_difference'),
    sa.ForeignKeyConstraint(['venue_id'], ['venue.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('venue_id', 'clerk', 'day', name='uq_daily_close')
    )
    with op.batch_alter_table('daily_close', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_daily_close_day'), ['day'], unique=False)

    op.create_table('intake',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('application_id', sa.String(length=23), nullable=False),
    sa.Column('method', sa.String(length=20), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('reissue_reason', sa.String(length=20), nullable=True),
    sa.Column('old_card_expires_on', sa.Date(), nullable=True),
    sa.Column('holder_not_at_fault', sa.Boolean(), server_default=sa.text('(false)'), nullable=False),
    sa.Column('official_error', sa.Boolean(), server_default=sa.text('(false)'), nullable=False),
    sa.Column('visit_mode', sa.String(length=1), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('name_kana', sa.String(length=200), nullable=False),
    sa.Column('birth_date', sa.Date(), nullable=False),
    sa.Column('postal_code', sa.String(length=8), nullable=True),
    sa.Column('address', sa.String(length=300), nullable=True),
    sa.Column('phone', sa.String(length=20), nullable=True),
    sa.Column('wants_sign_cert', sa.Boolean(), nullable=False),
    sa.Column('wants_auth_cert', sa.Boolean(), nullable=False),
    sa.Column('identity_check', sa.Text(), nullable=True),
    sa.Column('photo', sa.String(length=10), nullable=True),
    sa.Column('clerk', sa.String(length=100), nullable=False),
    sa.Column('venue_id', sa.Integer(), nullable=True),
    sa.Column('taken_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('outreach_session_id', sa.Integer(), nullable=True),
    sa.Column('reservation_id', sa.Integer(), nullable=True),
    sa.Column('notes', sa.Text(), nullable=True),
    sa.Column('state', sa.String(length=20), nullable=False),
    sa.Column('sent_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('handed_over_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('withdrawn_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('withdraw_reason', sa.String(length=200), nullable=True),
    sa.Column('fee_state', sa.String(length=10), server_default='none', nullable=False),
    sa.CheckConstraint("(kind = 'reissue' AND reissue_reason IN ('lost', 'stolen', 'damaged', 'disaster', 'malfunction', 'no_space', 'other')) OR (kind <> 'reissue' AND reissue_reason IS NULL)", name='ck_intake_reissue_reason'),
    sa.CheckConstraint("fee_state IN ('none', 'charged', 'paid', 'waived', 'refunded')", name='ck_intake_fee_state'),
    sa.CheckConstraint("kind IN ('new', 'renewal', 'reissue', 'cert_renewal', 'express')", name='ck_intake_kind'),
    sa.CheckConstraint("method <> 'outreach' OR outreach_session_id IS NOT NULL", name='ck_intake_outreach_session'),
    sa.CheckConstraint("method IN ('counter', 'outreach', 'support', 'mail_help', 'online_help')", name='ck_intake_method'),
    sa.CheckConstraint("photo IS NULL OR photo IN ('taken', 'brought')", name='ck_intake_photo'),
    sa.CheckConstraint("state <> 'withdrawn' OR withdraw_reason IS NOT NULL", name='ck_intake_withdraw_reason'),
    sa.CheckConstraint("state IN ('accepted', 'sent', 'handed_over', 'withdrawn')", name='ck_intake_state'),
    sa.CheckConstraint("visit_mode IN ('S', 'K')", name='ck_intake_visit_mode'),
    sa.ForeignKeyConstraint(['outreach_session_id'], ['outreach_session.id'], ),
    sa.ForeignKeyConstraint(['reservation_id'], ['reservation.id'], ),
    sa.ForeignKeyConstraint(['venue_id'], ['venue.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('application_id')
    )
    with op.batch_alter_table('intake', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_intake_fee_state'), ['fee_state'], unique=False)
        batch_op.create_index(batch_op.f('ix_intake_kind'), ['kind'], unique=False)
        batch_op.create_index(batch_op.f('ix_intake_method'), ['method'], unique=False)
        batch_op.create_index(batch_op.f('ix_intake_name'), ['name'], unique=False)
        batch_op.create_index(batch_op.f('ix_intake_name_kana'), ['name_kana'], unique=False)
        batch_op.create_index(batch_op.f('ix_intake_outreach_session_id'), ['outreach_session_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_intake_reservation_id'), ['reservation_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_intake_state'), ['state'], unique=False)
        batch_op.create_index(batch_op.f('ix_intake_taken_at'), ['taken_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_intake_venue_id'), ['venue_id'], unique=False)

    op.create_table('fee_entry',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('intake_id', sa.Integer(), nullable=False),
    sa.Column('entry_type', sa.String(length=10), nullable=False),
    sa.Column('amount', sa.Integer(), nullable=False),
    sa.Column('standard_amount', sa.Integer(), nullable=True),
    sa.Column('override_reason', sa.String(length=200), nullable=True),
    sa.Column('method', sa.String(length=10), nullable=True),
    sa.Column('tendered', sa.Integer(), nullable=True),
    sa.Column('change_due', sa.Integer(), nullable=True),
    sa.Column('fiscal_year', sa.Integer(), nullable=True),
    sa.Column('receipt_seq', sa.Integer(), nullable=True),
    sa.Column('receipt_number', sa.String(length=20), nullable=True),
    sa.Column('reason', sa.String(length=200), nullable=True),
    sa.Column('refund_of_id', sa.Integer(), nullable=True),
    sa.Column('venue_id', sa.Integer(), nullable=False),
    sa.Column('clerk', sa.String(length=100), nullable=False),
    sa.Column('business_day', sa.Date(), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('printed_count', sa.Integer(), server_default='0', nullable=False),
    sa.CheckConstraint("entry_type <> 'charge' OR amount >= 0", name='ck_fee_charge_amount'),
    sa.CheckConstraint("entry_type <> 'payment' OR (amount > 0 AND receipt_seq IS NOT NULL AND fiscal_year IS NOT NULL AND method IS NOT NULL)", name='ck_fee_payment'),
    sa.CheckConstraint("entry_type <> 'refund' OR (amount < 0 AND reason IS NOT NULL)", name='ck_fee_refund'),
    sa.CheckConstraint("entry_type <> 'waiver' OR (amount = 0 AND reason IS NOT NULL)", name='ck_fee_waiver'),
    sa.CheckConstraint("entry_type IN ('charge', 'payment', 'waiver', 'refund')", name='ck_fee_entry_type'),
    sa.CheckConstraint("method IS NULL OR method IN ('cash', 'cashless')", name='ck_fee_method'),
    sa.CheckConstraint('tendered IS NULL OR (tendered >= amount AND change_due = tendered - amount)', name='ck_fee_change'),
    sa.ForeignKeyConstraint(['intake_id'], ['intake.id'], ),
    sa.ForeignKeyConstraint(['refund_of_id'], ['fee_entry.id'], ),
    sa.ForeignKeyConstraint(['venue_id'], ['venue.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('fiscal_year', 'receipt_seq', name='uq_fee_entry_receipt'),
    sa.UniqueConstraint('receipt_number')
    )
    with op.batch_alter_table('fee_entry', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_fee_entry_business_day'), ['business_day'], unique=False)
        batch_op.create_index(batch_op.f('ix_fee_entry_clerk'), ['clerk'], unique=False)
        batch_op.create_index(batch_op.f('ix_fee_entry_entry_type'), ['entry_type'], unique=False)
        batch_op.create_index(batch_op.f('ix_fee_entry_intake_id'), ['intake_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_fee_entry_venue_id'), ['venue_id'], unique=False)

    op.create_table('intake_document',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('intake_id', sa.Integer(), nullable=False),
    sa.Column('category', sa.String(length=20), nullable=False),
    sa.Column('filename', sa.String(length=255), nullable=False),
    sa.Column('media_type', sa.String(length=50), nullable=False),
    sa.Column('size', sa.Integer(), nullable=False),
    sa.Column('pages', sa.Integer(), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('key_id', sa.String(length=40), nullable=False),
    sa.Column('uploaded_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('uploaded_by', sa.String(length=100), nullable=False),
    sa.CheckConstraint("category IN ('application_form', 'identity', 'proxy', 'other')", name='ck_document_category'),
    sa.CheckConstraint("media_type IN ('application/pdf', 'image/jpeg', 'image/png', 'image/tiff')", name='ck_document_media_type'),
    sa.CheckConstraint('size > 0 AND pages >= 1', name='ck_document_size_pages'),
    sa.ForeignKeyConstraint(['intake_id'], ['intake.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('intake_document', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_intake_document_intake_id'), ['intake_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_intake_document_key_id'), ['key_id'], unique=False)

    op.create_table('document_blob',
    sa.Column('document_id', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('nonce', sa.LargeBinary(length=12), nullable=False),
    sa.Column('ciphertext', sa.LargeBinary(), nullable=False),
    sa.ForeignKeyConstraint(['document_id'], ['intake_document.id'], ),
    sa.PrimaryKeyConstraint('document_id')
    )


def downgrade():
    op.drop_table('document_blob')
    with op.batch_alter_table('intake_document', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_intake_document_key_id'))
        batch_op.drop_index(batch_op.f('ix_intake_document_intake_id'))

    op.drop_table('intake_document')
    with op.batch_alter_table('fee_entry', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_fee_entry_venue_id'))
        batch_op.drop_index(batch_op.f('ix_fee_entry_intake_id'))
        batch_op.drop_index(batch_op.f('ix_fee_entry_entry_type'))
        batch_op.drop_index(batch_op.f('ix_fee_entry_clerk'))
        batch_op.drop_index(batch_op.f('ix_fee_entry_business_day'))

    op.drop_table('fee_entry')
    with op.batch_alter_table('intake', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_intake_venue_id'))
        batch_op.drop_index(batch_op.f('ix_intake_taken_at'))
        batch_op.drop_index(batch_op.f('ix_intake_state'))
        batch_op.drop_index(batch_op.f('ix_intake_reservation_id'))
        batch_op.drop_index(batch_op.f('ix_intake_outreach_session_id'))
        batch_op.drop_index(batch_op.f('ix_intake_name_kana'))
        batch_op.drop_index(batch_op.f('ix_intake_name'))
        batch_op.drop_index(batch_op.f('ix_intake_method'))
        batch_op.drop_index(batch_op.f('ix_intake_kind'))
        batch_op.drop_index(batch_op.f('ix_intake_fee_state'))

    op.drop_table('intake')
    with op.batch_alter_table('daily_close', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_daily_close_day'))

    op.drop_table('daily_close')
    op.drop_table('receipt_counter')
    with op.batch_alter_table('outreach_session', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_outreach_session_day'))

    op.drop_table('outreach_session')
    op.drop_table('fee_schedule')
