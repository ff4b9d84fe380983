"""Notices (F5.3): which ones are current for an audience."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import or_, select

from app.models.notice import AUDIENCE_BOTH, Notice


def current_notices(session, audience: str, now: datetime) -> list[Notice]:
    """Notices for ``audience`` whose display period contains ``now``, most important first."""
    query = (
        select(Notice)
        .where(Notice.audience.in_([audience, AUDIENCE_BOTH]))
        .where(Notice.starts_at <= now)
        .where(or_(Notice.ends_at.is_(None), Notice.ends_at > now))
        .order_by(Notice.importance.desc(), Notice.starts_at.desc())
    )
    return list(session.execute(query).scalars())
