"""The whole role matrix (docs/roles.md): every (role, screen or action) pair.

The expectations are written here independently of config.FAB_ROLES, so a change to the
roles that is not also a change to the documented matrix fails.
"""
import pytest

from app.models.audit import AuditLog
from app.models.maintenance import MaintenanceWindow
from tests.factories import make_notice

ROLES = ["sysadmin", "manager", "clerk", "viewer"]
Y, N = True, False

# (method, url template, {role: allowed})
MATRIX = [
    ("GET", "/", dict(sysadmin=Y, manager=Y, clerk=Y, viewer=Y)),
    ("GET", "/users/userinfo/", dict(sysadmin=Y, manager=Y, clerk=Y, viewer=Y)),
    ("GET", "/resetmypassword/form", dict(sysadmin=Y, manager=Y, clerk=Y, viewer=Y)),
    ("GET", "/userinfoeditview/form", dict(sysadmin=Y, manager=Y, clerk=Y, viewer=Y)),
    ("GET", "/noticemodelview/list/", dict(sysadmin=Y, manager=Y, clerk=Y, viewer=Y)),
    ("GET", "/noticemodelview/show/{notice}", dict(sysadmin=Y, manager=Y, clerk=Y, viewer=Y)),
    ("GET", "/noticemodelview/add", dict(sysadmin=Y, manager=Y, clerk=N, viewer=N)),
    ("GET", "/noticemodelview/edit/{notice}", dict(sysadmin=Y, manager=Y, clerk=N, viewer=N)),
    ("POST", "/noticemodelview/delete/{notice}", dict(sysadmin=Y, manager=Y, clerk=N, viewer=N)),
    ("GET", "/auditlogmodelview/list/", dict(sysadmin=Y, manager=Y, clerk=N, viewer=N)),
    ("GET", "/auditlogmodelview/show/{audit}", dict(sysadmin=Y, manager=Y, clerk=N, viewer=N)),
    ("GET", "/auditlogmodelview/export/", dict(sysadmin=Y, manager=Y, clerk=N, viewer=N)),
    ("GET", "/auditlogmodelview/verify/", dict(sysadmin=Y, manager=N, clerk=N, viewer=N)),
    # Append-only: nobody, not even the system administrator, edits or deletes records.
    ("GET", "/auditlogmodelview/add", dict(sysadmin=N, manager=N, clerk=N, viewer=N)),
    ("GET", "/auditlogmodelview/edit/{audit}", dict(sysadmin=N, manager=N, clerk=N, viewer=N)),
    ("POST", "/auditlogmodelview/delete/{audit}", dict(sysadmin=N, manager=N, clerk=N, viewer=N)),
    ("GET", "/maintenancewindowmodelview/list/", dict(sysadmin=Y, manager=N, clerk=N, viewer=N)),
    ("GET", "/maintenancewindowmodelview/add", dict(sysadmin=Y, manager=N, clerk=N, viewer=N)),
    ("GET", "/maintenancewindowmodelview/edit/{window}", dict(sysadmin=Y, manager=N, clerk=N, viewer=N)),
    ("POST", "/maintenancewindowmodelview/start-now/", dict(sysadmin=Y, manager=N, clerk=N, viewer=N)),
    # --- encryption of exports (issue 15 §4): the policy is the supervisors' and the
    # system administrator's; a prepared ZIP's page is every role's (own files only: an
    # unknown token is 404 for those allowed, see tests/web/test_export_encryption.py).
    ("GET", "/export-policy/", dict(sysadmin=Y, manager=Y, clerk=N, viewer=N)),
    ("POST", "/export-policy/", dict(sysadmin=Y, manager=Y, clerk=N, viewer=N)),
    ("GET", "/jobs/", dict(sysadmin=Y, manager=N, clerk=N, viewer=N)),
    ("GET", "/users/list/", dict(sysadmin=Y, manager=N, clerk=N, viewer=N)),
    ("GET", "/users/show/{user}", dict(sysadmin=Y, manager=N, clerk=N, viewer=N)),
    ("GET", "/users/add", dict(sysadmin=Y, manager=N, clerk=N, viewer=N)),
    ("GET", "/users/edit/{user}", dict(sysadmin=Y, manager=N, clerk=N, viewer=N)),
    ("GET", "/resetpassword/form?pk={user}", dict(sysadmin=Y, manager=N, clerk=N, viewer=N)),
    ("GET", "/roles/list/", dict(sysadmin=Y, manager=N, clerk=N, viewer=N)),
    # Roles are declared in code: read only (groups and statistics are gone, see
    # tests/web/test_fab_screens.py).
    ("GET", "/roles/show/{role}", dict(sysadmin=Y, manager=N, clerk=N, viewer=N)),
    ("GET", "/roles/add", dict(sysadmin=N, manager=N, clerk=N, viewer=N)),
    # The card ledger: business screens; the system administrator has none of them.
    ("GET", "/cardmodelview/list/", dict(sysadmin=N, manager=Y, clerk=Y, viewer=Y)),
    ("GET", "/cardmodelview/show/{card}", dict(sysadmin=N, manager=Y, clerk=Y, viewer=Y)),
    ("GET", "/cardmodelview/add", dict(sysadmin=N, manager=Y, clerk=Y, viewer=N)),
    ("GET", "/cardmodelview/edit/{card}", dict(sysadmin=N, manager=Y, clerk=Y, viewer=N)),
    ("POST", "/cardmodelview/delete/{card}", dict(sysadmin=N, manager=Y, clerk=N, viewer=N)),
    ("POST", "/cardmodelview/transition/{card}", dict(sysadmin=N, manager=Y, clerk=Y, viewer=N)),
    ("GET", "/cardeventmodelview/list/", dict(sysadmin=N, manager=Y, clerk=Y, viewer=Y)),
    ("GET", "/handover/", dict(sysadmin=N, manager=Y, clerk=Y, viewer=N)),
    ("POST", "/handover/{card}", dict(sysadmin=N, manager=Y, clerk=Y, viewer=N)),
    ("GET", "/storageplacemodelview/list/", dict(sysadmin=N, manager=Y, clerk=Y, viewer=Y)),
    ("GET", "/storageplacemodelview/add", dict(sysadmin=N, manager=Y, clerk=N, viewer=N)),
    # Printed lists with names and birth dates are an export: not for 閲覧者.
    ("GET", "/storage/inventory", dict(sysadmin=N, manager=Y, clerk=Y, viewer=N)),
    ("GET", "/storage/move?ids={card}", dict(sysadmin=N, manager=Y, clerk=Y, viewer=N)),
    ("GET", "/discard/", dict(sysadmin=N, manager=Y, clerk=Y, viewer=Y)),
    ("GET", "/discard/register", dict(sysadmin=N, manager=Y, clerk=Y, viewer=N)),
    ("POST", "/discard/hold", dict(sysadmin=N, manager=Y, clerk=N, viewer=N)),
    ("POST", "/discard/execute", dict(sysadmin=N, manager=Y, clerk=N, viewer=N)),
    # issue 16 §3: the candidates are found again by whoever may discard (and nightly).
    ("POST", "/discard/refresh", dict(sysadmin=N, manager=Y, clerk=N, viewer=N)),
    ("GET", "/scan/", dict(sysadmin=N, manager=Y, clerk=Y, viewer=N)),
    ("GET", "/ledger-import/", dict(sysadmin=N, manager=Y, clerk=N, viewer=N)),
    ("POST", "/ledger-import/upload", dict(sysadmin=N, manager=Y, clerk=N, viewer=N)),
    ("POST", "/scan/new", dict(sysadmin=N, manager=Y, clerk=Y, viewer=N)),
    # Booking settings: supervisors edit, staff read.
    ("GET", "/venuepurposemodelview/list/", dict(sysadmin=N, manager=Y, clerk=Y, viewer=Y)),
    ("GET", "/venuepurposemodelview/add", dict(sysadmin=N, manager=Y, clerk=N, viewer=N)),
    ("GET", "/venuemodelview/add", dict(sysadmin=N, manager=Y, clerk=N, viewer=N)),
    ("GET", "/purposemodelview/list/", dict(sysadmin=N, manager=Y, clerk=Y, viewer=Y)),
    ("GET", "/weeklyrulemodelview/add", dict(sysadmin=N, manager=Y, clerk=N, viewer=N)),
    ("GET", "/dateexceptionmodelview/list/", dict(sysadmin=N, manager=Y, clerk=Y, viewer=Y)),
    ("GET", "/booking-calendar/", dict(sysadmin=N, manager=Y, clerk=Y, viewer=Y)),
    ("GET", "/booking-calendar/day/{offer}/2026-12-08", dict(sysadmin=N, manager=Y, clerk=Y, viewer=Y)),
    # Bookings and the check-in desk: the daily work of the counter.
    ("GET", "/reservationmodelview/list/", dict(sysadmin=N, manager=Y, clerk=Y, viewer=Y)),
    ("GET", "/reservationmodelview/show/{reservation}", dict(sysadmin=N, manager=Y, clerk=Y, viewer=Y)),
    ("GET", "/reservationmodelview/edit/{reservation}", dict(sysadmin=N, manager=Y, clerk=Y, viewer=N)),
    ("GET", "/reservationmodelview/move/{reservation}", dict(sysadmin=N, manager=Y, clerk=Y, viewer=N)),
    ("GET", "/reservationmodelview/cancel/{reservation}", dict(sysadmin=N, manager=Y, clerk=Y, viewer=N)),
    ("GET", "/reservationmodelview/slip/{reservation}", dict(sysadmin=N, manager=Y, clerk=Y, viewer=N)),
    ("GET", "/desk/{venue}", dict(sysadmin=N, manager=Y, clerk=Y, viewer=Y)),
    ("GET", "/desk/{venue}/counts", dict(sysadmin=N, manager=Y, clerk=Y, viewer=Y)),
    ("GET", "/desk/{venue}/new", dict(sysadmin=N, manager=Y, clerk=Y, viewer=N)),
    ("GET", "/desk/{venue}/print", dict(sysadmin=N, manager=Y, clerk=Y, viewer=N)),
    ("POST", "/desk/{venue}/close-day", dict(sysadmin=N, manager=Y, clerk=Y, viewer=N)),
    # --- Application intake (申請受付, issue 13: intake helper) ---------------------------
    # Read by every business role; taken, changed, withdrawn and sent by staff; never
    # deleted (withdrawn with a reason instead); the printed session list is not for 閲覧者.
    ("GET", "/intakemodelview/list/", dict(sysadmin=N, manager=Y, clerk=Y, viewer=Y)),
    ("GET", "/intakemodelview/show/{intake}", dict(sysadmin=N, manager=Y, clerk=Y, viewer=Y)),
    ("GET", "/intakemodelview/add", dict(sysadmin=N, manager=Y, clerk=Y, viewer=N)),
    ("GET", "/intakemodelview/edit/{intake}", dict(sysadmin=N, manager=Y, clerk=Y, viewer=N)),
    ("POST", "/intakemodelview/withdraw/{intake}", dict(sysadmin=N, manager=Y, clerk=Y, viewer=N)),
    ("POST", "/intakemodelview/delete/{intake}", dict(sysadmin=N, manager=N, clerk=N, viewer=N)),
    ("GET", "/outreachsessionmodelview/list/", dict(sysadmin=N, manager=Y, clerk=Y, viewer=Y)),
    ("GET", "/outreachsessionmodelview/show/{outreach}", dict(sysadmin=N, manager=Y, clerk=Y, viewer=Y)),
    ("GET", "/outreachsessionmodelview/add", dict(sysadmin=N, manager=Y, clerk=Y, viewer=N)),
    ("GET", "/outreachsessionmodelview/edit/{outreach}", dict(sysadmin=N, manager=Y, clerk=Y, viewer=N)),
    ("GET", "/outreachsessionmodelview/print/{outreach}", dict(sysadmin=N, manager=Y, clerk=Y, viewer=N)),
    ("POST", "/outreachsessionmodelview/delete/{outreach}", dict(sysadmin=N, manager=N, clerk=N, viewer=N)),
    # --- fees (issue 13 §2): the panel and money for staff, refunds for supervisors; the
    # day's and month's sheets on screen for 閲覧者 too, downloads not.
    ("GET", "/fees/intake/{intake}", dict(sysadmin=N, manager=Y, clerk=Y, viewer=N)),
    ("POST", "/fees/intake/{intake}/charge", dict(sysadmin=N, manager=Y, clerk=Y, viewer=N)),
    ("POST", "/fees/intake/{intake}/pay", dict(sysadmin=N, manager=Y, clerk=Y, viewer=N)),
    ("POST", "/fees/intake/{intake}/waive", dict(sysadmin=N, manager=Y, clerk=Y, viewer=N)),
    ("POST", "/fees/refund/{payment}", dict(sysadmin=N, manager=Y, clerk=N, viewer=N)),
    ("POST", "/fees/receipt/{payment}", dict(sysadmin=N, manager=Y, clerk=Y, viewer=N)),
    ("GET", "/fees/daily", dict(sysadmin=N, manager=Y, clerk=Y, viewer=Y)),
    ("POST", "/fees/daily/close", dict(sysadmin=N, manager=Y, clerk=Y, viewer=N)),
    ("GET", "/fees/daily.xlsx", dict(sysadmin=N, manager=Y, clerk=Y, viewer=N)),
    ("GET", "/fees/monthly", dict(sysadmin=N, manager=Y, clerk=Y, viewer=Y)),
    ("GET", "/fees/monthly.xlsx", dict(sysadmin=N, manager=Y, clerk=Y, viewer=N)),
    ("GET", "/feeschedulemodelview/list/", dict(sysadmin=N, manager=Y, clerk=Y, viewer=Y)),
    ("GET", "/feeschedulemodelview/add", dict(sysadmin=N, manager=Y, clerk=N, viewer=N)),
    ("GET", "/feeschedulemodelview/edit/{fee_row}", dict(sysadmin=N, manager=Y, clerk=N, viewer=N)),
    ("POST", "/feeschedulemodelview/delete/{fee_row}", dict(sysadmin=N, manager=Y, clerk=N, viewer=N)),
    # --- scanned documents of an intake (issue 13 §3): 閲覧者 never see them ---
    ("GET", "/documents/intake/{doc_intake}", dict(sysadmin=N, manager=Y, clerk=Y, viewer=N)),
    ("POST", "/documents/intake/{doc_intake}/upload", dict(sysadmin=N, manager=Y, clerk=Y, viewer=N)),
    ("GET", "/documents/{document}", dict(sysadmin=N, manager=Y, clerk=Y, viewer=N)),
    ("GET", "/documents/{document}/page/1", dict(sysadmin=N, manager=Y, clerk=Y, viewer=N)),
    ("GET", "/documents/{document}/thumbnail", dict(sysadmin=N, manager=Y, clerk=Y, viewer=N)),
    ("GET", "/documents/{document}/download", dict(sysadmin=N, manager=Y, clerk=Y, viewer=N)),
    ("POST", "/documents/{document}/delete", dict(sysadmin=N, manager=Y, clerk=N, viewer=N)),
    # --- statistics (issue 14 §1): figures only, for every business role ---
    ("GET", "/statistics/", dict(sysadmin=N, manager=Y, clerk=Y, viewer=Y)),
    ("GET", "/statistics/csv", dict(sysadmin=N, manager=Y, clerk=Y, viewer=Y)),
    ("GET", "/statistics/xlsx", dict(sysadmin=N, manager=Y, clerk=Y, viewer=Y)),
    # --- extraction (抽出, issue 14 §2): on screen for every business role; exports are
    # personal data leaving the screen (not 閲覧者); shared queries are the supervisor's.
    ("GET", "/extraction/", dict(sysadmin=N, manager=Y, clerk=Y, viewer=Y)),
    ("GET", "/extraction/?saved={shared_query}", dict(sysadmin=N, manager=Y, clerk=Y, viewer=Y)),
    ("POST", "/extraction/preview", dict(sysadmin=N, manager=Y, clerk=Y, viewer=Y)),
    ("POST", "/extraction/export/csv", dict(sysadmin=N, manager=Y, clerk=Y, viewer=N)),
    ("POST", "/extraction/export/csv?encoding=cp932", dict(sysadmin=N, manager=Y, clerk=Y, viewer=N)),
    ("POST", "/extraction/export/xlsx", dict(sysadmin=N, manager=Y, clerk=Y, viewer=N)),
    ("POST", "/extraction/save", dict(sysadmin=N, manager=Y, clerk=Y, viewer=Y)),
    ("POST", "/extraction/save-shared", dict(sysadmin=N, manager=Y, clerk=N, viewer=N)),
    ("POST", "/extraction/saved/{shared_query}/overwrite", dict(sysadmin=N, manager=Y, clerk=N, viewer=N)),
    ("POST", "/extraction/saved/{shared_query}/delete", dict(sysadmin=N, manager=Y, clerk=N, viewer=N)),
]

# Actions on the ledger list (FAB checks them in action_post): {action: roles allowed}
CARD_ACTIONS = {
    "to_setup": {"manager", "clerk"}, "to_notice_sent": {"manager", "clerk"},
    "print_data": {"manager", "clerk"}, "move_storage": {"manager", "clerk"},
    "print_data_encrypted": {"manager", "clerk"},
}

CASES = [(role, method, url, expected[role]) for method, url, expected in MATRIX for role in ROLES]


@pytest.fixture
def targets(app, db, clock, users):
    notice = make_notice(db, clock())
    window = MaintenanceWindow(starts_at=clock(), ends_at=None, message="m")
    db.add(window)
    db.commit()
    other = users.create("viewer", username="target_user")
    from tests.factories import make_card, make_storage

    make_storage(db)
    card = make_card(db)
    from datetime import date

    from app.services import booking
    from app.services.calendar import ensure_slots
    from tests.factories import make_offer

    offer = make_offer(db, purpose_code="shinsei")
    with app.test_request_context():
        slot = ensure_slots(db, offer, date(2026, 12, 8), date(2026, 12, 8))[0]
        reservation = booking.book(db, slot, None, date(1980, 3, 1),
                                   booking.Contact(phone="0312345678"), seats=1, staff=True)
    from app.models.intake import OutreachSession
    from app.services import fees
    from app.services.cards import SYSTEM
    from tests.factories import make_intake
    from tests.unit.test_fees import seed_fees

    outreach = OutreachSession(day=date(2026, 12, 8), site_kind="school", site_name="第一小学校")
    db.add(outreach)
    db.commit()
    # a paid reissue and a fee-table row (fees, issue 13 §2)
    seed_fees(db)
    application = make_intake(db, kind="reissue", reissue_reason="lost", venue=offer.venue)
    fees.charge(db, application, actor=SYSTEM, venue_id=offer.venue_id, now=clock())
    payment = fees.pay(db, application, actor=SYSTEM, venue_id=offer.venue_id, now=clock(),
                       tendered=1000)
    fee_row = fees.schedule_row(db, "express", clock().date())
    # scanned documents (issue 13 §3): an intake with one stored document
    from app.services import documents as document_svc
    from tests.document_files import make_png

    doc_intake = make_intake(db)
    with app.test_request_context():
        document = document_svc.upload(db, doc_intake.id, "other", [("a.png", make_png())])[0]
    # a query shared with the office (extraction, issue 14 §2)
    from app.models.extraction import SavedQuery

    shared_query = SavedQuery(name="交付待ちの一覧", subject="cards",
                              definition='{"subject": "cards"}', owner="someone",
                              shared=True, created_at=clock(), updated_at=clock())
    db.add(shared_query)
    db.commit()
    audit_id = db.query(AuditLog.id).order_by(AuditLog.id.desc()).first()[0]
    return {"shared_query": shared_query.id,"payment": payment.id, "fee_row": fee_row.id,
            "doc_intake": doc_intake.id, "document": document.id,
            "notice": notice.id, "window": window.id, "user": other.id, "audit": audit_id,
            "card": card.id, "offer": offer.id, "venue": offer.venue_id,
            "reservation": reservation.id, "intake": application.id, "outreach": outreach.id,
            "role": app.appbuilder.sm.find_role(app.config["ROLE_VIEWER"]).id}


def _allowed(response) -> bool:
    if response.status_code == 200:
        return True
    if response.status_code == 302:
        return "/login" not in response.headers["Location"]
    return False


def _denied(response) -> bool:
    if response.status_code == 403:
        return True
    return response.status_code == 302 and "/login" in response.headers["Location"]


@pytest.mark.parametrize("role,method,url,allowed", CASES,
                         ids=[f"{r}-{m}-{u}" for r, m, u, _ in CASES])
def test_role_matrix(login_as, targets, role, method, url, allowed):
    client = login_as(role)
    response = client.open(url.format(**targets), method=method)
    if allowed:
        assert _allowed(response), (response.status_code, response.headers.get("Location"))
    else:
        assert _denied(response), (response.status_code, response.headers.get("Location"))


@pytest.mark.parametrize("method,url", [(m, u) for m, u, _ in MATRIX])
def test_anonymous_is_sent_to_the_login_page(client, targets, method, url):
    response = client.open(url.format(**targets), method=method)
    assert response.status_code == 302
    assert "/login" in response.headers["Location"]


def test_delete_on_get_deletes_nothing(login_as, targets, db):
    from app.models.notice import Notice

    client = login_as("manager")
    client.get(f"/noticemodelview/delete/{targets['notice']}")
    assert db.get(Notice, targets["notice"]) is not None


def test_menus_follow_the_role(login_as):
    clerk = login_as("clerk").get("/").get_data(as_text=True)
    assert "お知らせ" in clerk and "操作ログ" not in clerk and "ユーザー一覧" not in clerk


def test_every_role_exists_after_init(app):
    with app.app_context():
        names = {r.name for r in app.appbuilder.sm.get_all_roles()}
    assert set(app.config["STAFF_ROLES"]) <= names


# Each ledger action from the state it works on, and what it does when allowed.
ACTION_SETUP = {"to_setup": "received", "to_notice_sent": "setup",
                "print_data": "notice_sent", "move_storage": "received",
                "print_data_encrypted": "notice_sent"}


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("action_name", sorted(CARD_ACTIONS))
def test_card_list_actions_follow_the_role(login_as, targets, db, role, action_name):
    """Allowed: the action's effect is there (FAB's own refusal is a 302 too, so the status
    alone proves nothing). Refused: nothing happened."""
    from app.models.card import Card
    from app.services import cards as card_svc
    from tests.factories import make_card

    start = ACTION_SETUP[action_name]
    card = make_card(db, state="setup" if start == "notice_sent" else start)
    if start == "notice_sent":
        card_svc.transition_card(db, card, card_svc.NOTICE_SENT, actor=card_svc.SYSTEM)
    client = login_as(role)
    response = client.post("/cardmodelview/action_post",
                           data={"action": action_name, "rowid": [card.id]})
    db.expire_all()
    state = db.get(Card, card.id).state
    effects = {
        "to_setup": state == "setup",
        "to_notice_sent": state == "notice_sent" and start == "setup",
        "print_data": response.mimetype == "application/zip",
        # the first step: the page with the encryption choice for the chosen cards
        "print_data_encrypted": response.status_code == 200
        and response.mimetype == "text/html"
        and 'data-testid="print-data-encrypted"' in response.get_data(as_text=True),
        "move_storage": response.status_code == 302
        and f"ids={card.id}" in response.headers.get("Location", "")
        and "/storage/" in response.headers.get("Location", "").lower(),
    }
    if role in CARD_ACTIONS[action_name]:
        assert effects[action_name], (response.status_code, response.headers, state)
    else:  # refused: FAB flashes "access denied" and redirects; nothing happened
        assert state == start
        assert not effects[action_name]
        assert response.status_code in (302, 403)


# The REST API: personal data leaving the screen, so 閲覧者 have none of it (docs/roles.md).
# (method, url template, {role: allowed}); a refusal is 401/403, never the data.
API_MATRIX = [
    ("GET", "/api/v1/card/", dict(sysadmin=N, manager=Y, clerk=Y, viewer=N)),
    ("GET", "/api/v1/card/{card}", dict(sysadmin=N, manager=Y, clerk=Y, viewer=N)),
    ("GET", "/api/v1/card/_info", dict(sysadmin=N, manager=Y, clerk=Y, viewer=N)),
    ("GET", "/api/v1/reservation/", dict(sysadmin=N, manager=Y, clerk=Y, viewer=N)),
    ("GET", "/api/v1/reservation/{reservation}", dict(sysadmin=N, manager=Y, clerk=Y, viewer=N)),
]
API_CASES = [(role, method, url, expected[role]) for method, url, expected in API_MATRIX
             for role in ROLES]


@pytest.mark.parametrize("role,method,url,allowed", API_CASES,
                         ids=[f"{r}-{m}-{u}" for r, m, u, _ in API_CASES])
def test_api_role_matrix(app, users, targets, role, method, url, allowed):
    from tests.conftest import login

    user = users.create(role)
    client = app.test_client()
    token = client.post("/api/v1/security/login", json={
        "username": user.username, "password": users.password, "provider": "db"}
    ).json["access_token"]
    for headers in ({"Authorization": f"Bearer {token}"}, {}):  # JWT, then session cookie
        if not headers:
            login(client, user.username, users.password)
        response = client.open(url.format(**targets), method=method, headers=headers)
        if allowed:
            assert response.status_code == 200, response.status_code
        else:
            assert response.status_code in (401, 403), response.status_code
            assert "山田" not in response.get_data(as_text=True)
