from datetime import timedelta

import pytest

from app.services.errors import MaintenanceStateError
from app.services.maintenance import (end_maintenance_now, maintenance_status,
                                      start_maintenance_now)


def test_start_and_end_now(db, clock):
    now = clock()
    assert maintenance_status(db, now).active is None
    start_maintenance_now(db, now, "点検中", "admin")
    assert maintenance_status(db, now).active.message == "点検中"
    with pytest.raises(MaintenanceStateError):
        start_maintenance_now(db, now, "二重", "admin")
    end_maintenance_now(db, now + timedelta(minutes=5))
    assert maintenance_status(db, now + timedelta(minutes=5)).active is None
    with pytest.raises(MaintenanceStateError):
        end_maintenance_now(db, now + timedelta(minutes=6))


def test_planned_window_is_announced_then_active_then_over(db, clock):
    from app.models.maintenance import MaintenanceWindow

    now = clock()
    db.add(MaintenanceWindow(starts_at=now + timedelta(days=3), ends_at=now + timedelta(days=3, hours=2),
                             message="計画停止"))
    db.commit()
    far = maintenance_status(db, now - timedelta(days=30))
    assert far.upcoming == [] and far.active is None  # not yet announced
    soon = maintenance_status(db, now)
    assert [w.message for w in soon.upcoming] == ["計画停止"] and soon.active is None
    during = maintenance_status(db, now + timedelta(days=3, hours=1))
    assert during.active is not None
    after = maintenance_status(db, now + timedelta(days=3, hours=2))
    assert after.active is None and after.upcoming == []
