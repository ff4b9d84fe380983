"""The system administrator's account and role screens at a staff PC's size (1366x768):
Japanese labels, no groups, no LDAP/OpenID hints, no "Public" role, roles as a matrix."""
from tests.e2e.conftest import body_text, shot
from tests.e2e.pages import LoginPage

LEFTOVERS = ("LDAP", "OpenID", "Public", "group", "Group", "グループ", "有効？", "Is Active",
             "名前(名)", "名字(姓)", "統計")


def _no_leftovers(page):
    text = body_text(page)
    assert [word for word in LEFTOVERS if word in text] == [], text[:2000]
    return text


def test_user_and_role_screens_at_1366(users, live_server, page_factory, app):
    users.create("sysadmin", username="sysadmin_e2e")
    users.create("clerk", username="madoguchi_e2e")
    users.create("viewer", username="etsuran_e2e")
    page = page_factory(width=1366, height=768)
    LoginPage(page, live_server).open().sign_in("sysadmin_e2e", users.password)

    page.goto(f"{live_server}/users/list/")
    text = _no_leftovers(page)
    for word in ("職員アカウント", "ユーザーID", "氏名", "ロール", "有効", "最終ログイン",
                 "madoguchi_e2e", "窓口職員"):
        assert word in text, word
    shot(page, "fab-01-user-list")

    page.goto(f"{live_server}/users/add")
    text = _no_leftovers(page)
    for word in ("職員アカウントの追加", "姓", "名", "ユーザーID", "メールアドレス", "パスワード（確認）"):
        assert word in text, word
    # The role choices: the city's four roles, nothing else.
    page.click("#s2id_roles, .select2-container >> nth=0")
    offered = page.locator(".select2-results li, .select2-result-label").all_inner_texts()
    offered = sorted({item.strip() for item in offered if item.strip()})
    assert offered == sorted(app.config["STAFF_ROLES"]), offered
    shot(page, "fab-02-user-add-roles-open")
    page.keyboard.press("Escape")
    shot(page, "fab-02-user-add")

    page.goto(f"{live_server}/roles/list/")
    text = _no_leftovers(page)
    assert "この画面では変更できません" in text and "ロールごとにできること" in text
    matrix = page.locator("[data-testid=role-matrix]")
    assert matrix.locator("thead th").all_inner_texts()[1:] == list(app.config["STAFF_ROLES"])
    assert matrix.locator("td[data-cell=some]").count() == 0
    shot(page, "fab-03-role-matrix")

    # The system menu: users and roles, no groups or statistics.
    page.click("a.dropdown-toggle:has-text('システム')")
    menu = page.locator("ul.dropdown-menu:visible").inner_text()
    assert "ユーザー一覧" in menu and "ロール一覧" in menu
    assert "グループ" not in menu and "統計" not in menu
    shot(page, "fab-04-system-menu")
    assert page.requests.outside() == []
