"""The 廃棄候補 screen reads the snapshot of the last refresh (issue 16 §3): it says when
that was, leaves out cards handed over since, refreshes on 「今すぐ更新」 for whoever may
discard, and a GET writes nothing."""
import json
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from app.models.audit import AuditLog
from app.models.discard import DiscardCandidate
from app.models.setting import SiteSetting
from app.services import cards as svc
from app.services import discard, handover, unit
from tests.conftest import text_of
from tests.factories import make_card, make_storage

CHECKLIST = {"identity": handover.ID_ONE_A, "collector": "self", "pin_set": "1"}


@pytest.fixture
def overdue(db, clock):
    """Two cards past the notice's deadline and one that is not."""
    make_storage(db)
    made = []
    for days in (400, 380, 30):
        card = make_card(db, state=svc.NOTICE_SENT)
        card.notice_sent_at = clock() - timedelta(days=days)
        made.append(card)
    db.commit()
    return made


def _refreshes(db) -> int:
    return db.execute(select(func.count(AuditLog.id)).where(AuditLog.action == "refresh")
                      ).scalar_one()


def test_before_any_refresh_the_screen_says_so_offers_the_button_and_writes_nothing(
        login_as, db, overdue, no_writes):
    client = login_as("manager")
    with no_writes("the discard candidates screen"):
        response = client.get("/discard/")
    page = text_of(response)
    assert response.status_code == 200
    assert "廃棄候補はまだ作成されていません" in page and "今すぐ更新" in page
    assert overdue[0].application_id not in page
    assert db.get(SiteSetting, "discard_candidates") is None and _refreshes(db) == 0


def test_the_button_refreshes_and_the_screen_shows_when(login_as, db, overdue, clock,
                                                          no_writes):
    client = login_as("manager", username="kanri_r")
    response = client.post("/discard/refresh", follow_redirects=True)
    page = text_of(response)
    assert "廃棄候補を更新しました（2 枚）" in page
    assert "候補の更新: 2026-12-01 10:00" in page
    assert overdue[0].application_id in page and overdue[1].application_id in page
    assert overdue[2].application_id not in page
    record = db.execute(select(AuditLog).where(AuditLog.action == "refresh")).scalar_one()
    assert (record.username, json.loads(record.changes)["count"]) == ("kanri_r", 2)
    clock.advance(minutes=10)  # within the idle timeout
    with no_writes("the screen after a refresh"):
        again = text_of(client.get("/discard/"))
    assert "候補の更新: 2026-12-01 10:00" in again  # a read does not refresh
    client.post("/discard/refresh")
    assert "候補の更新: 2026-12-01 10:10" in text_of(client.get("/discard/"))


def test_a_card_handed_over_after_the_refresh_leaves_the_screen_at_once(
        app, login_as, db, overdue):
    client = login_as("manager")
    client.post("/discard/refresh")
    with app.test_request_context(), unit.transaction(db):
        handover.hand_over(db, db.merge(overdue[0]), dict(CHECKLIST), actor=svc.SYSTEM)
    page = text_of(client.get("/discard/"))
    assert overdue[0].application_id not in page and overdue[1].application_id in page
    assert overdue[0].id in discard.candidate_ids(db)  # no new refresh was needed
    assert _refreshes(db) == 1


def test_hold_and_discard_still_work_on_the_snapshot(login_as, db, overdue):
    client = login_as("manager")
    client.post("/discard/refresh")
    first, second = overdue[0], overdue[1]
    client.post("/discard/hold", data={"ids": [second.id], "hold": "1", "reason": "連絡あり"})
    refused = client.post("/discard/execute", data={"ids": [second.id], "reason": "期限経過"},
                          follow_redirects=True)
    assert "廃棄保留中です" in text_of(refused)
    page = text_of(client.post("/discard/execute", data={"ids": [first.id], "reason": "期限経過"},
                               follow_redirects=True))
    assert "1 枚を廃棄しました" in page
    assert first.application_id not in page  # discarded: no longer a candidate
    assert second.application_id in page and "連絡あり" in page  # held, still listed


@pytest.mark.parametrize("role", ["clerk", "viewer", "sysadmin"])
def test_other_roles_cannot_refresh(login_as, db, overdue, role):
    client = login_as(role)
    response = client.post("/discard/refresh")
    assert response.status_code == 403
    assert db.execute(select(func.count(DiscardCandidate.id))).scalar_one() == 0
    assert _refreshes(db) == 0
    if role != "sysadmin":  # the screen itself: no button for them
        assert "今すぐ更新" not in text_of(client.get("/discard/"))


def test_the_command_refreshes_as_the_operator(app, db, overdue):
    result = app.test_cli_runner().invoke(args=["cards", "refresh-discard"])
    assert result.exit_code == 0, result.output
    assert "discard candidates: 2" in result.output
    record = db.execute(select(AuditLog).where(AuditLog.action == "refresh")).scalar_one()
    assert record.username.startswith("cli:")
    assert discard.candidate_ids(db) == {overdue[0].id, overdue[1].id}


def test_many_candidates_are_paged_in_order_and_the_mode_is_kept(login_as, db, clock,
                                                                 monkeypatch):
    make_storage(db)
    for n in range(7):
        card = make_card(db, state=svc.NOTICE_SENT,
                         visit_mode=svc.VISIT_AT_APPLICATION if n == 6 else svc.VISIT_AT_HANDOVER)
        card.notice_sent_at = clock() - timedelta(days=400)
    db.commit()
    monkeypatch.setattr(discard, "PAGE_SIZE", 3)
    client = login_as("manager")
    client.post("/discard/refresh")
    ids = sorted(db.execute(select(svc.Card.application_id)).scalars())
    first = text_of(client.get("/discard/"))
    assert "候補 7 件（1〜3 件目を表示）" in first and "1 / 3 ページ" in first
    assert all(i in first for i in ids[:3]) and ids[3] not in first
    last = client.get("/discard/?page=3").get_data(as_text=True)
    assert "候補 7 件（7〜7 件目を表示）" in text_of(client.get("/discard/?page=3"))
    assert ids[6] in last and 'data-testid="next-page"' not in last
    assert "page=2" in last  # the previous page
    # a page past the end shows the last; junk shows the first
    assert "7〜7 件目" in text_of(client.get("/discard/?page=99"))
    assert "1〜3 件目" in text_of(client.get("/discard/?page=abc"))
    # one visit mode: its own count and pages, and the page links keep the mode
    mode = svc.VISIT_AT_HANDOVER
    moded = client.get(f"/discard/?mode={mode}").get_data(as_text=True)
    assert "候補 6 件（1〜3 件目を表示）" in text_of(client.get(f"/discard/?mode={mode}"))
    pager = moded.split('data-testid="discard-pages"')[1].split("</nav>")[0]
    assert f"mode={mode}" in pager and "page=2" in pager
