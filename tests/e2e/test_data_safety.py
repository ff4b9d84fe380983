"""Data in, data out, data safe (issue 15), as city staff use the screens at 1366x768:

1. a 管理者 imports the old system's ledger (既存データ取込): a CP932 CSV with three good
   rows, an impossible date and a duplicate 申請書ID; the preview and the report (line,
   column, value, reason in Japanese); 「問題のない行だけ取り込む」; the result with the
   rejected rows to download; the cards in the ledger;
2. an encrypted export (操作ログ CSV, 暗号化ZIP, generated password): the password is shown
   once, the ZIP opens with it (pyzipper) and not without it, the page reached again no
   longer shows it;
3. the システム管理者's home warns when there is no verified backup, then shows the time and
   size of one made and verified here;
4. the 管理者 makes encryption mandatory (エクスポートの暗号化); a plain export is refused with a
   Japanese message.
Nothing is loaded from another host."""
from __future__ import annotations

import csv
import io
import re

import pytest
import pyzipper
from sqlalchemy import select

from app.models.card import Card
from app.services import audit, backups, ledger_import
from tests.e2e.conftest import body_text, shot
from tests.e2e.pages import LoginPage
from tests.ledger_import_files import app_id, row, write_csv

PEOPLE = [("髙橋　﨑子", "ﾀｶﾊｼ ｻｷｺ"), ("山﨑　一郎", "ﾔﾏｻﾞｷ ｲﾁﾛｳ"), ("佐藤　花子", "ｻﾄｳ ﾊﾅｺ")]


@pytest.fixture
def app_config(app_config, tmp_path):
    return {**app_config, "BACKUP_DIR": str(tmp_path / "backups")}


def _sign_in(page_factory, live_server, users, role, username):
    users.create(role, username=username)
    page = page_factory(width=1366, height=768)
    LoginPage(page, live_server).open().sign_in(username, users.password)
    return page


def _rows(page, testid):
    return page.eval_on_selector_all(
        f"[data-testid={testid}] tbody tr",
        "rows => rows.map(r => Array.from(r.children).map(c => c.innerText.trim()))")


def _no_english(text: str):
    """No untranslated sentence or raw state name on a clerk's screen."""
    for word in ("Import", "Problems", "Line", "Reason", "checked", "done", "failed",
                 "Traceback", "None", "{", "Download"):
        assert word not in text, word


def test_manager_imports_the_old_ledger_skipping_the_bad_rows(
        db, users, live_server, page_factory, tmp_path, monkeypatch):
    rows = [row(n, 氏名=name, カナ氏名=kana) for n, (name, kana) in enumerate(PEOPLE, start=1)]
    rows.append(row(4, 氏名="鈴木　次郎", カナ氏名="ｽｽﾞｷ ｼﾞﾛｳ", 生年月日="H31.5.1"))
    # (a keyword argument would be NFKC-normalised to 申請書ID and miss the header)
    rows.append(row(5, 氏名="田中　実", カナ氏名="ﾀﾅｶ ﾐﾉﾙ", **{"申請書ＩＤ": app_id(2)}))
    source = write_csv(tmp_path / "旧システム台帳.csv", rows, encoding="cp932")

    page = _sign_in(page_factory, live_server, users, "manager", "kanri_e2e")
    page.goto(f"{live_server}/ledger-import/")
    assert "既存データ取込" in page.inner_text("h2")
    shot(page, "data-01-ledger-import-upload")

    # The check is held back once, so that the progress page is seen as a clerk with a
    # large file sees it; then it runs and the page (polling its status) shows the result.
    held = []
    run_now = ledger_import.launch
    monkeypatch.setattr(ledger_import, "launch",
                        lambda app, status, actor: held.append((app, status, actor)))
    page.set_input_files("#file", source)
    with page.expect_navigation():
        page.click("[data-testid=ledger-import-upload] button[type=submit]")
    assert page.get_attribute("[data-testid=ledger-import-job]", "data-finished") == "0"
    assert page.is_visible("progress[data-job-bar]")
    state = page.inner_text("[data-testid=ledger-import-state]")
    assert "確認" in state, state
    _no_english(page.inner_text("[data-testid=ledger-import-job]"))
    shot(page, "data-02a-ledger-import-progress")
    monkeypatch.setattr(ledger_import, "launch", run_now)
    (app, status, actor), = held
    run_now(app, status, actor=actor)
    page.wait_for_selector("[data-testid=ledger-import-job][data-finished='1']",
                           state="attached")
    assert page.inner_text("[data-testid=ledger-import-state]").startswith("確認しました")
    preview = page.inner_text("[data-testid=ledger-import-preview]")
    assert "髙橋　﨑子" in preview and "タカハシ　サキコ" in preview  # CP932 and kana
    problems = _rows(page, "ledger-import-problems")
    by_line = {p[0]: p for p in problems}
    assert by_line["5"][1:3] == ["生年月日", "H31.5.1"], problems
    assert "平成は終わっています" in by_line["5"][3]
    # the column as the file names it (full-width ＩＤ), the line of the first occurrence
    assert by_line["6"][1:3] == ["申請書ＩＤ", app_id(2)], problems
    assert by_line["6"][3] == "同じ値がこのファイルの3行目にもあります。"
    summary = dict(_rows(page, "ledger-import-summary"))
    assert summary["ファイルの行数"] == "5" and summary["問題のある行"] == "2", summary
    assert summary["文字コード"] == "Shift_JIS（CP932）", summary
    marked = page.eval_on_selector_all(
        "[data-testid=ledger-import-preview] tbody tr.danger",
        "rows => rows.map(r => r.children[0].innerText.split('\\n')[0].trim())")
    assert marked == ["5", "6"], marked  # the bad rows stand out in the preview too
    _no_english(page.inner_text("[data-testid=ledger-import-job]"))
    assert db.execute(select(Card)).first() is None  # the check wrote nothing
    shot(page, "data-02-ledger-import-preview-and-report")

    page.check("[data-testid=ledger-import-start] input[name=skip_invalid]")
    with page.expect_navigation():
        page.click("[data-testid=ledger-import-start] button[type=submit]")
    page.wait_for_selector("[data-testid=ledger-import-job][data-finished='1']")
    result = page.inner_text("[data-testid=ledger-import-result]")
    assert "新しいカード 3 件" in result and "カード管理簿で見る" in result, result
    assert "問題のある行は取り込んでいません" in result
    _no_english(page.inner_text("[data-testid=ledger-import-job]"))
    shot(page, "data-03-ledger-import-result")

    with page.expect_download() as started:
        page.click("form[action$='/download/rejects'] button")
    rejected = started.value.path().read_bytes().decode("utf-8-sig")
    lines = list(csv.reader(io.StringIO(rejected)))
    ids = [r[0] for r in lines[1:] if r]
    assert ids.count(app_id(2)) == 1 and app_id(4) in ids and app_id(1) not in ids, ids

    with page.expect_navigation():
        page.click("[data-testid=ledger-import-to-ledger]")
    assert "/cardmodelview/list" in page.url
    ledger = body_text(page)
    for name, _kana in PEOPLE:
        assert name in ledger
    assert "鈴木　次郎" not in ledger and "田中　実" not in ledger
    shot(page, "data-04-ledger-after-import")
    assert page.requests.outside() == []


def test_encrypted_audit_export_shows_the_password_once(
        app, db, users, live_server, page_factory, tmp_path):
    page = _sign_in(page_factory, live_server, users, "manager", "kanri_e2e")
    page.goto(f"{live_server}/auditlogmodelview/list/")
    form = "[data-testid=audit-export-form]"
    assert not page.is_visible(form)  # folded under the search: the log is read far more
    page.click("[data-testid=audit-export-open]")
    page.check(f"{form} [data-testid=export-encrypt]")
    page.check(f"{form} input[name=password_mode][value=generate]")
    shot(page, "data-05-audit-export-choose-encryption")
    with page.expect_navigation():
        page.click(f"{form} [data-testid=audit-export]")
    password = page.inner_text("[data-testid=export-password]").strip()
    assert len(password) >= 12
    assert "一度だけ" in page.inner_text("[data-testid=export-ready]")
    _no_english(page.inner_text("[data-testid=export-ready]").replace(password, ""))
    shot(page, "data-06-export-password-shown-once")

    action = page.get_attribute("[data-testid=export-download]", "action")
    token_url = re.sub(r"/download$", "", action)
    page.goto(f"{live_server}{token_url}")  # the page reached again: no password
    assert page.query_selector("[data-testid=export-password]") is None
    assert password not in page.content()
    page.wait_for_selector("[data-testid=export-password-gone]")
    shot(page, "data-07-export-password-gone")

    with page.expect_download() as started:
        page.click("[data-testid=export-download] button[type=submit]")
    saved = tmp_path / started.value.suggested_filename
    started.value.save_as(str(saved))
    with pyzipper.AESZipFile(saved) as archive:
        names = archive.namelist()
        assert len(names) == 1 and names[0].startswith("audit_log_")
        with pytest.raises(RuntimeError):
            archive.read(names[0])  # not without the password
        archive.setpassword(password.encode())
        text = archive.read(names[0]).decode("utf-8-sig")
    assert "ログイン" in text  # the manager's own sign-in is in the trail
    assert page.requests.outside() == []


def test_system_administrator_sees_the_backup_state_on_the_home(
        app, db, users, live_server, page_factory):
    page = _sign_in(page_factory, live_server, users, "sysadmin", "kanri_sys")
    page.goto(f"{live_server}/")
    warning = page.inner_text("[data-testid=backup-warning]")
    assert "検証できたバックアップがありません" in warning
    shot(page, "data-08-home-no-backup")

    audit.act_as(audit.cli_actor())
    made = backups.create(db)
    backups.verify(made.path)
    page.reload()
    status = page.inner_text("[data-testid=backup-status]")
    assert "2026-12-01 10:00" in status and made.path.rsplit("/", 1)[1] in status, status
    assert re.search(r"\d+(\.\d+)? ?[KM]B", status), status
    assert page.query_selector("[data-testid=backup-warning]") is None
    shot(page, "data-09-home-backup-ok")
    assert page.requests.outside() == []


def test_manager_makes_encryption_mandatory_and_a_plain_export_is_refused(
        db, users, live_server, page_factory):
    page = _sign_in(page_factory, live_server, users, "manager", "kanri_e2e")
    page.goto(f"{live_server}/export-policy/")
    assert "出力" in page.inner_text("h2") or "暗号化" in page.inner_text("h2")
    page.check("[data-testid=policy-required]")
    with page.expect_navigation():
        page.click("[data-testid=export-policy] button[type=submit]")
    assert page.is_checked("[data-testid=policy-required]")
    body = body_text(page)
    assert "保存しました" in body
    listing = _rows(page, "export-list")
    audit_row = next(r for r in listing if "操作ログ" in r[0])
    assert audit_row[1] == "あり" or audit_row[3] == "必須", audit_row
    _no_english(page.inner_text("[data-testid=export-policy]"))
    shot(page, "data-10-export-policy-mandatory")

    page.goto(f"{live_server}/auditlogmodelview/list/")
    form = "[data-testid=audit-export-form]"
    assert page.is_visible(form)  # required: unfolded, with the box ticked
    assert page.is_checked(f"{form} [data-testid=export-encrypt]")
    page.wait_for_selector(f"{form} [data-testid=export-encryption-required]")
    page.uncheck(f"{form} [data-testid=export-encrypt]")
    with page.expect_navigation():
        page.click(f"{form} [data-testid=audit-export]")
    body = body_text(page)
    assert "暗号化ZIPでのみ出力できます" in body, body[:600]
    shot(page, "data-11-plain-export-refused")
    assert page.requests.outside() == []
