"""Scanned documents in chromium at 1366 wide: a clerk takes in a multi-page PDF, a TIFF and
a photo for an intake through the panel, sees the thumbnails, opens the viewer and moves to
page 2; a wrong file is refused in Japanese. Screenshots: the panel and the viewer."""
import os

from sqlalchemy import func, select

from app.models.document import IntakeDocument
from tests import document_files as files
from tests.e2e.conftest import body_text, shot
from tests.e2e.pages import LoginPage
from tests.factories import make_intake


def _write(tmp_path, name, content):
    path = os.path.join(tmp_path, name)
    with open(path, "wb") as handle:
        handle.write(content)
    return path


def test_clerk_takes_in_scans_and_reads_page_two(users, db, live_server, page_factory, tmp_path):
    intake = make_intake(db)
    users.create("clerk", username="madoguchi_doc")
    page = page_factory(width=1366, height=900)
    LoginPage(page, live_server).open().sign_in("madoguchi_doc", users.password)
    page.goto(f"{live_server}/documents/intake/{intake.id}")
    assert "スキャンした書類はまだありません" in page.inner_text("[data-testid=document-panel]")

    page.select_option("#document-category", "application_form")
    page.set_input_files("#document-files", [
        _write(tmp_path, "申請書.pdf", files.make_pdf(3, dpi=150)),
        _write(tmp_path, "virus.pdf", files.renamed_exe())])
    page.click("[data-testid=document-upload-button]")
    page.wait_for_load_state("networkidle")
    body = body_text(page)
    assert "どのファイルも保存しませんでした" in body and "virus.pdf" in body
    assert db.execute(select(func.count(IntakeDocument.id))).scalar_one() == 0

    page.select_option("#document-category", "application_form")
    page.set_input_files("#document-files", [
        _write(tmp_path, "申請書.pdf", files.make_pdf(3, dpi=150))])
    page.click("[data-testid=document-upload-button]")
    page.wait_for_load_state("networkidle")
    page.select_option("#document-category", "identity")
    page.set_input_files("#document-files", [
        _write(tmp_path, "運転免許証.jpg", files.make_jpeg(dpi=100)),
        _write(tmp_path, "住民票.tif", files.make_tiff(2, dpi=150))])
    page.click("[data-testid=document-upload-button]")
    page.wait_for_load_state("networkidle")
    assert "2 件のファイルを保存しました" in body_text(page)
    thumbs = page.locator("[data-testid=document-thumb] img")
    assert thumbs.count() == 3
    page.wait_for_function("() => [...document.querySelectorAll('[data-testid=document-thumb] img')]"
                           ".every(i => i.complete && i.naturalWidth > 0)")
    shot(page, "documents-01-panel")

    page.click("[data-testid=document-thumb] >> nth=0 >> a.document-name")
    page.wait_for_load_state("networkidle")
    assert "1 / 3 ページ" in page.inner_text("[data-testid=page-of]")
    page.click("[data-testid=next-page]")
    page.wait_for_load_state("networkidle")
    assert "2 / 3 ページ" in page.inner_text("[data-testid=page-of]")
    image = page.locator("[data-testid=page-image]")
    page.wait_for_function("() => { const i = document.querySelector('[data-testid=page-image]');"
                           " return i.complete && i.naturalWidth > 800; }")
    box = image.evaluate("i => [i.getBoundingClientRect().width, i.getBoundingClientRect().bottom]")
    assert box[1] <= 900 and box[0] > 400  # the whole page in the window at first
    shot(page, "documents-02-viewer-page-2")
    page.click("a:has-text('150%')")
    page.wait_for_load_state("networkidle")
    assert "2 / 3 ページ" in page.inner_text("[data-testid=page-of]")
    assert image.evaluate("i => i.getBoundingClientRect().width") > 1500  # zoomed by CSS
    shot(page, "documents-03-viewer-zoom-150")
    assert page.requests.outside() == []
