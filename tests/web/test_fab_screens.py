"""Flask-AppBuilder's own screens as a city uses them (issue 12, §3): staff accounts in
Japanese without groups, LDAP/OpenID hints or the "Public" role; roles read-only, shown as
the matrix of docs/roles.md computed from the real permission check; no groups or
statistics screens."""
import os
import re

import pytest

from app.views.users import ABILITY_GROUPS, ALL, NONE, role_matrix, shown_roles
from tests.conftest import text_of

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MACHINE_WORDS = ["LDAP", "OpenID", "OID", "Public", "group", "Group", "グループ", "有効？",
                 "Is Active", "First Name", "Last Name", "User Name", "名前(名)", "名字(姓)",
                 "Full Name", "Login count", "Failed login count", "None", "Permissions",
                 "can_", "View$", ".*"]


def docs_matrix() -> tuple[list[str], dict[str, list[bool]]]:
    """The first table of docs/roles.md: the role names and, per row, ✓ or – per role."""
    with open(os.path.join(ROOT, "docs", "roles.md"), encoding="utf-8") as handle:
        lines = handle.read().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("| screen or action"))
    header = [cell.strip() for cell in lines[start].strip("|").split("|")]
    rows = {}
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        assert set(cells[1:]) <= {"✓", "–"}, line
        rows[cells[0]] = [cell == "✓" for cell in cells[1:]]
    return header[1:], rows


def _visible(text: str) -> str:
    """What a person reads: the page text without scripts (FAB's filter JSON)."""
    return re.sub(r"\(function\(\$\).*?\}\)\(jQuery\);?|document\.getElementById.*?\}\)",
                  " ", text, flags=re.S)


def _assert_no_machine_words(response):
    page = _visible(text_of(response))
    found = [word for word in MACHINE_WORDS if word in page]
    assert found == [], (found, page[:3000])


def test_role_matrix_agrees_with_docs_roles_md(app):
    names, documented = docs_matrix()
    with app.test_request_context():
        sm = app.appbuilder.sm
        roles = shown_roles(sm)
        assert [role.name for role in roles] == names
        matrix = role_matrix(sm, roles)
    computed = {ability.doc: [cell == ALL for cell in cells]
                for _group, rows in matrix for ability, cells in rows}
    partial = {ability.doc: cells for _group, rows in matrix for ability, cells in rows
               if any(cell not in (ALL, NONE) for cell in cells)}
    assert partial == {}  # a row is granted wholly or not at all, never in part
    assert sorted(computed) == sorted(documented)
    assert {doc: cells for doc, cells in computed.items() if documented[doc] != cells} == {}


def test_matrix_rows_name_real_permissions(app):
    """A typo in a row's permission would read as "–" for everyone: every permission a row
    needs exists on a registered view."""
    known = {(permission, view.class_permission_name) for view in app.appbuilder.baseviews
             for permission in view.base_permissions or ()}
    missing = [(ability.doc, need) for _group, abilities in ABILITY_GROUPS
               for ability in abilities for need in ability.needs if need not in known]
    # The audit log is append-only: its screen has no add, edit or delete to grant at all.
    assert missing == [("操作ログ: add, edit, delete", (permission, "AuditLogModelView"))
                       for permission in ("can_add", "can_edit", "can_delete")]


def test_the_matrix_follows_a_change_of_the_roles(app):
    """Computed from the permission check, not written down: take a right away and the
    matrix shows it."""
    with app.test_request_context():
        sm = app.appbuilder.sm
        roles = shown_roles(sm)
        clerk = next(role for role in roles if role.name == app.config["ROLE_CLERK"])
        saved = sm.builtin_roles[clerk.name]
        sm.builtin_roles[clerk.name] = [pair for pair in saved if "HandoverView" not in pair[0]
                                        or "can_hand_over" not in pair[1]]
        sm.builtin_roles[clerk.name].append((r"HandoverView$", r"can_index$"))
        sm.__dict__.pop("_builtin_access", None)
        try:
            cells = {ability.doc: cells[roles.index(clerk)]
                     for _group, rows in role_matrix(sm, roles) for ability, cells in rows}
        finally:
            sm.builtin_roles[clerk.name] = saved
            sm.__dict__.pop("_builtin_access", None)
    assert cells["交付 (hand-over)"] not in (ALL, NONE)  # shown as "partly", not ✓


def test_role_list_is_a_readable_matrix(login_as):
    client = login_as("sysadmin")
    response = client.get("/roles/list/")
    assert response.status_code == 200
    page = text_of(response)
    for text in ("名称", "説明", "この画面では変更できません", "ロールごとにできること",
                 "カード管理簿：一覧、詳細、履歴", "交付", "操作ログ：改ざん検査",
                 "業務画面の閲覧のみ", "システム管理者", "窓口職員", "閲覧者"):
        assert text in page, text
    assert "氏名" not in page.split("ロールごとにできること")[0]  # 名称, not 氏名
    assert page.count("✓") >= 60
    _assert_no_machine_words(response)
    html = response.get_data(as_text=True)
    assert "/roles/add" not in html and "/roles/edit" not in html and "copyrole" not in html


def test_role_detail_shows_one_role(login_as, app):
    client = login_as("sysadmin")
    with app.app_context():
        viewer = app.appbuilder.sm.find_role(app.config["ROLE_VIEWER"])
        public = app.appbuilder.sm.find_role(app.config["AUTH_ROLE_PUBLIC"])
    response = client.get(f"/roles/show/{viewer.id}")
    assert response.status_code == 200
    page = text_of(response)
    assert "閲覧者" in page and "業務画面の閲覧のみ" in page and "システム管理者" not in page
    _assert_no_machine_words(response)
    assert client.get(f"/roles/show/{public.id}").status_code == 404
    assert client.get("/roles/show/99999999999999999999").status_code == 404


@pytest.mark.parametrize("url", ["/roles/add", "/roles/edit/1", "/roles/api/read"])
def test_roles_cannot_be_changed_on_screen(login_as, url):
    assert login_as("sysadmin").get(url).status_code in (403, 404)


def test_roles_cannot_be_deleted_or_copied(login_as, app):
    client = login_as("sysadmin")
    with app.app_context():
        viewer = app.appbuilder.sm.find_role(app.config["ROLE_VIEWER"])
    assert client.post(f"/roles/delete/{viewer.id}").status_code in (403, 404)
    assert client.post("/roles/action_post",
                       data={"action": "copyrole", "rowid": [viewer.id]}).status_code == 400
    assert client.post(f"/roles/action/copyrole/{viewer.id}").status_code == 404
    with app.app_context():
        names = [role.name for role in app.appbuilder.sm.get_all_roles()]
    assert not any(name.endswith(" copy") for name in names)


def test_user_screens_are_japanese_without_fab_leftovers(login_as, users):
    client = login_as("sysadmin")
    other = users.create("clerk", username="taro")
    expected = {
        "/users/list/": ["職員アカウント", "ユーザーID", "氏名", "ロール", "有効", "最終ログイン"],
        "/users/add": ["職員アカウントの追加", "姓", "名", "ユーザーID", "有効", "メールアドレス",
                       "ロール", "パスワード", "パスワード（確認）"],
        f"/users/edit/{other.id}": ["職員アカウントの編集", "姓", "名", "ユーザーID", "有効",
                                    "メールアドレス", "ロール"],
        f"/users/show/{other.id}": ["ユーザーID", "有効", "ロール", "ログイン回数", "失敗回数",
                                    "姓", "名", "メールアドレス", "最終ログイン", "窓口職員",
                                    "パスワードの再設定"],
        f"/resetpassword/form?pk={other.id}": ["パスワードの再設定", "新しいパスワード",
                                               "パスワード（確認）"],
        "/userinfoeditview/form": ["氏名の変更", "姓", "名"],
        "/users/userinfo/": ["自分のアカウント", "ユーザーID", "パスワードの変更", "氏名の変更"],
    }
    for url, words in expected.items():
        response = client.get(url)
        assert response.status_code == 200, url
        page = text_of(response)
        assert [word for word in words if word not in page] == [], url
        _assert_no_machine_words(response)


def test_family_name_comes_first(login_as):
    html = login_as("sysadmin").get("/users/add").get_data(as_text=True)
    assert html.index('id="last_name"') < html.index('id="first_name"')
    assert 'name="groups"' not in html


def test_role_choices_are_the_city_roles_only(login_as, app):
    html = login_as("sysadmin").get("/users/add").get_data(as_text=True)
    select = re.search(r'<select[^>]*name="roles".*?</select>', html, re.S).group(0)
    offered = re.findall(r"<option[^>]*>([^<]+)</option>", select)
    assert sorted(offered) == sorted(app.config["STAFF_ROLES"])


def test_the_public_role_is_refused_when_posted(login_as, app, db):
    from app.models.user import StaffUser

    with app.app_context():
        public = app.appbuilder.sm.find_role(app.config["AUTH_ROLE_PUBLIC"])
    client = login_as("sysadmin")
    response = client.post("/users/add", data={
        "last_name": "公開", "first_name": "花子", "username": "public_try", "active": "y",
        "email": "public_try@example.jp", "roles": [str(public.id)],
        "password": "Testpass2026ok", "conf_password": "Testpass2026ok"})
    assert response.status_code == 200  # the form again, with a message
    assert db.query(StaffUser).filter_by(username="public_try").first() is None


def test_an_account_is_added_with_a_city_role(login_as, app, db):
    from app.models.user import StaffUser

    with app.app_context():
        clerk = app.appbuilder.sm.find_role(app.config["ROLE_CLERK"])
    client = login_as("sysadmin")
    response = client.post("/users/add", data={
        "last_name": "山本", "first_name": "花子", "username": "yamamoto", "active": "y",
        "email": "yamamoto@example.jp", "roles": [str(clerk.id)],
        "password": "Testpass2026ok", "conf_password": "Testpass2026ok"})
    assert response.status_code == 302, text_of(response)[:2000]
    user = db.query(StaffUser).filter_by(username="yamamoto").one()
    assert [role.name for role in user.roles] == [clerk.name]
    assert user.get_full_name() == "山本 花子"


def test_no_role_is_a_japanese_message(login_as, db):
    from app.models.user import StaffUser

    response = login_as("sysadmin").post("/users/add", data={
        "last_name": "山本", "first_name": "花子", "username": "norole", "active": "y",
        "email": "norole@example.jp",
        "password": "Testpass2026ok", "conf_password": "Testpass2026ok"})
    assert response.status_code == 200
    assert "ロールを1つ以上選んでください" in text_of(response)
    assert "group" not in text_of(response)
    assert db.query(StaffUser).filter_by(username="norole").first() is None


@pytest.mark.parametrize("url", ["/groups/list/", "/groups/add", "/userstatschartview/chart/",
                                 "/permissions/list/", "/viewmenus/list/",
                                 "/permissionviews/list/"])
def test_unused_security_screens_are_gone(login_as, url):
    assert login_as("sysadmin").get(url).status_code == 404


def test_menu_offers_users_and_roles_only(login_as):
    page = text_of(login_as("sysadmin").get("/"))
    assert "ユーザー一覧" in page and "ロール一覧" in page
    for word in ("グループ", "統計", "Groups", "Statistics", "権限", "ビュー"):
        assert word not in page, word
