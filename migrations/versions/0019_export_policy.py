"""settings of the office changed on a screen: the export policy (issue 15 §4, S2)

Revision ID: 0019_export_policy
Revises: 0017_statistics_indexes
Create Date: 2026-11-28 03:00:00

``site_setting``: one row per key (JSON value), changed by compare-and-set on
``version``; the first key is ``export_policy`` ({"encryption_required": bool}), which
makes exports that contain personal data leave the server only as encrypted ZIPs. No row
means the default (encryption offered, not required).
"""
from alembic import op
import sqlalchemy as sa


revision = '0019_export_policy'
down_revision = '0017_statistics_indexes'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'site_setting',
        sa.Column('key', sa.String(length=64), nullable=False),
        sa.Column('value', sa.Text(), nullable=False),
        sa.Column('version', sa.Integer(), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('updated_by', sa.String(length=100), nullable=False),
        sa.CheckConstraint('length(key) > 0', name='ck_site_setting_key'),
        sa.CheckConstraint('version >= 1', name='ck_site_setting_version'),
        sa.PrimaryKeyConstraint('key'),
    )


def downgrade():
    op.drop_table('site_setting')
