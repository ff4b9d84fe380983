from datetime import timedelta

from app.models.notice import AUDIENCE_BOTH, AUDIENCE_RESIDENTS, AUDIENCE_STAFF
from app.services.notices import current_notices
from tests.factories import make_notice


def test_current_notices_follow_audience_and_period(db, clock):
    now = clock()
    make_notice(db, now, title="職員向け", audience=AUDIENCE_STAFF)
    make_notice(db, now, title="住民向け", audience=AUDIENCE_RESIDENTS)
    make_notice(db, now, title="両方", audience=AUDIENCE_BOTH, importance=2)
    make_notice(db, now, title="終了済み", ends_at=now - timedelta(minutes=1))
    make_notice(db, now, title="予定", starts_at=now + timedelta(days=1))
    staff = [n.title for n in current_notices(db, AUDIENCE_STAFF, now)]
    residents = [n.title for n in current_notices(db, AUDIENCE_RESIDENTS, now)]
    assert staff == ["両方", "職員向け"]  # most important first
    assert residents == ["両方", "住民向け"]
