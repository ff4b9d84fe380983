"""Maintenance of the residents' site, switched by a system administrator."""
from datetime import timedelta

from tests.conftest import text_of


def test_switching_maintenance_on_and_off(login_as, client, db):
    admin = login_as("sysadmin")
    response = admin.post("/maintenancewindowmodelview/start-now/",
                          data={"message": "サーバー点検のため停止中です"}, follow_redirects=True)
    assert "メンテナンス中にしました" in text_of(response)
    public = client.get("/reserve/")
    assert public.status_code == 503
    assert "メンテナンス中" in text_of(public) and "サーバー点検のため停止中です" in text_of(public)
    assert client.get("/healthz").status_code == 200  # the service itself is up
    admin.post("/maintenancewindowmodelview/end-now/")
    assert client.get("/reserve/").status_code == 200


def test_ending_when_nothing_runs_is_refused_with_a_message(login_as):
    admin = login_as("sysadmin")
    response = admin.post("/maintenancewindowmodelview/end-now/", follow_redirects=True)
    assert "実施中のメンテナンスはありません" in text_of(response)


def test_planned_window_shows_a_banner_first(login_as, client, clock):
    admin = login_as("sysadmin")
    start = clock() + timedelta(days=5)
    admin.post("/maintenancewindowmodelview/add", data={
        "starts_at": start.strftime("%Y-%m-%d %H:%M:%S"),
        "ends_at": (start + timedelta(hours=3)).strftime("%Y-%m-%d %H:%M:%S"),
        "message": "定期保守"})
    page = client.get("/reserve/")
    assert page.status_code == 200
    assert 'data-testid="maintenance-banner"' in page.get_data(as_text=True)
    assert "定期保守" in text_of(page) and start.strftime("%Y-%m-%d %H:%M") in text_of(page)
    clock.set(start + timedelta(hours=1))
    assert client.get("/reserve/").status_code == 503
    clock.set(start + timedelta(hours=3))
    assert client.get("/reserve/").status_code == 200


def test_window_ending_before_it_starts_is_refused(login_as, db):
    from app.models.maintenance import MaintenanceWindow

    admin = login_as("sysadmin")
    response = admin.post("/maintenancewindowmodelview/add", data={
        "starts_at": "2026-12-10 01:00:00", "ends_at": "2026-12-09 01:00:00", "message": "x"},
        follow_redirects=True)
    assert "終了は開始より後の日時にしてください" in text_of(response)
    assert db.query(MaintenanceWindow).count() == 0
