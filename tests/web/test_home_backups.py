"""The staff home shows the system administrator the last good backup (issue 15 §3): its
time and size, and a warning when there is none or it is older than BACKUP_WARN_HOURS
(36). Read from the backups' sidecars: nothing is written; other roles see nothing."""
import os
from datetime import timedelta

import pytest

from app.services import backups
from tests.conftest import text_of


@pytest.fixture
def app_config(app_config, tmp_path):
    return {**app_config, "BACKUP_DIR": str(tmp_path / "backups")}


def _backup(app, clock, hours_ago: float, verified: bool, size: int = 3 * 1024 * 1024):
    with app.app_context():
        folder = backups.backup_dir()
    os.makedirs(folder, exist_ok=True)
    moment = clock() - timedelta(hours=hours_ago)
    path = os.path.join(folder, f"mnc-backup-{moment:%Y%m%d-%H%M%S}.mncbak")
    with open(path, "wb") as handle:
        handle.write(b"\0" * size)
    backups._write_sidecar(path, {"created_at": moment.isoformat(),
                                  "verified_at": moment.isoformat() if verified else None})
    return os.path.basename(path)


def _status(page) -> str:
    return text_of(page).split("バックアップ", 1)[1] if "backup-status" in page.get_data(
        as_text=True) else ""


def test_no_backup_at_all_is_a_warning_for_the_system_administrator(login_as, no_writes):
    client = login_as("sysadmin")
    with no_writes("the home page"):
        page = client.get("/")
    assert "検証できたバックアップがありません" in _status(page)
    assert 'data-testid="backup-warning"' in page.get_data(as_text=True)


def test_a_recent_verified_backup_shows_its_time_and_size(app, clock, login_as):
    name = _backup(app, clock, hours_ago=5, verified=True)
    _backup(app, clock, hours_ago=1, verified=False)  # newer, but not verified
    page = login_as("sysadmin").get("/")
    status = _status(page)
    assert "2026-12-01 05:00" in status and "3.0 MB" in status and name in status
    assert 'data-testid="backup-warning"' not in page.get_data(as_text=True)


def test_a_verified_backup_older_than_36_hours_is_a_warning(app, clock, login_as):
    _backup(app, clock, hours_ago=37, verified=True)
    page = login_as("sysadmin").get("/")
    assert "36 時間より古くなっています" in _status(page)
    assert "2026-11-29 21:00" in _status(page)


@pytest.mark.parametrize("role", ["manager", "clerk", "viewer"])
def test_other_roles_see_nothing_of_the_backups(login_as, role):
    page = login_as(role).get("/").get_data(as_text=True)
    assert "backup-status" not in page and "バックアップ" not in page
