"""Scanned papers of an intake through the screens (issue 13 §3): uploads checked by their
content with a Japanese message per refused file and nothing stored, pages of every type
rendered to PNG, roles, audit of every view and download, reads that write nothing but
their audit record."""
import io
import re

import pytest
from PIL import Image
from sqlalchemy import event, func, select
from sqlalchemy.engine import Engine

from app.models.audit import AuditLog
from app.models.document import DocumentBlob, IntakeDocument
from app.services import documents
from tests import document_files as files
from tests.conftest import login, text_of
from tests.factories import make_intake


@pytest.fixture
def intake(db):
    return make_intake(db)


def _upload(client, intake_id, named_files, category="application_form", follow=True):
    data = {"category": category,
            "files": [(io.BytesIO(content), name) for name, content in named_files]}
    return client.post(f"/documents/intake/{intake_id}/upload", data=data,
                       content_type="multipart/form-data", follow_redirects=follow)


def _count(db, model=IntakeDocument):
    db.expire_all()
    return db.execute(select(func.count()).select_from(model)).scalar_one()


def _stored(db, clerk, intake, name, content, category="application_form"):
    response = _upload(clerk, intake.id, [(name, content)], category)
    assert response.status_code == 200, text_of(response)[:500]
    db.expire_all()
    return db.execute(select(IntakeDocument).order_by(IntakeDocument.id.desc())).scalars().first()


@pytest.mark.parametrize("name,content,message", [
    ("申請書.pdf", files.renamed_exe(), "PDF、JPEG、PNG、TIFF のいずれでもありません"),
    ("空.pdf", b"", "ファイルが空です"),
    ("写真.png", files.corrupt_png(), "画像ファイルが壊れているか途中で切れている"),
    ("壊れ.png", files.damaged_png(), "画像ファイルが壊れているか途中で切れている"),
    ("js.pdf", files.js_open_action_pdf(), "JavaScript"),
    ("js2.pdf", files.js_escaped_names_pdf(), "JavaScript"),
    ("js3.pdf", files.js_names_tree_pdf(), "JavaScript"),
    ("js4.pdf", files.js_page_aa_in_object_stream_pdf(), "JavaScript"),
    ("js5.pdf", files.objstm_pdf("hexflate", "openaction"), "JavaScript"),
    ("lzw.pdf", files.objstm_pdf("lzw", js=False), "確認できない圧縮形式"),
    ("pw.pdf", files.encrypted_pdf(), "パスワード"),
])
def test_a_bad_file_is_refused_in_japanese_and_nothing_is_stored(login_as, db, intake, name,
                                                                  content, message):
    clerk = login_as("clerk")
    response = _upload(clerk, intake.id, [("正しい申請書.pdf", files.make_pdf(2)),
                                          (name, content)])
    shown = text_of(response)
    assert response.status_code == 200
    assert "保存しませんでした" in shown, shown[:1500]
    assert name in shown and message in shown, shown[:1500]
    assert "正しい申請書.pdf" not in shown.split("保存しませんでした")[1][:300]  # only the bad one
    assert _count(db) == 0 and _count(db, DocumentBlob) == 0


def test_too_many_pages_and_too_large_are_refused(login_as, db, intake, app):
    from app import settings

    clerk = login_as("clerk")
    settings.configure(app, DOCUMENT_MAX_PAGES=2)
    shown = text_of(_upload(clerk, intake.id, [("long.tif", files.make_tiff(3))]))
    assert "3 ページ" in shown and "2 ページまで" in shown, shown[:1500]
    settings.configure(app, DOCUMENT_MAX_PAGES=200, DOCUMENT_MAX_BYTES=1000)
    shown = text_of(_upload(clerk, intake.id, [("big.png", files.make_png())]))
    assert "上限" in shown and "MB" in shown, shown[:1500]
    assert _count(db) == 0


def test_a_request_over_the_limit_gets_the_japanese_413_page(login_as, app, intake, db):
    clerk = login_as("clerk")
    content = files.make_tiff(3)
    app.config["MAX_CONTENT_LENGTH"] = len(content) // 2
    response = _upload(clerk, intake.id, [("big.tif", content)], follow=False)
    assert response.status_code == 413
    assert "大きすぎ" in text_of(response), text_of(response)[:800]
    assert _count(db) == 0


def test_several_files_at_once_are_stored_encrypted(login_as, db, intake):
    clerk = login_as("clerk")
    response = _upload(clerk, intake.id, [("申請書.pdf", files.make_pdf(3)),
                                          ("免許証.jpg", files.make_jpeg()),
                                          ("通知書.tif", files.make_tiff(2)),
                                          ("写真.png", files.make_png())], category="identity")
    assert "4 件のファイルを保存しました" in text_of(response), text_of(response)[:1000]
    rows = db.execute(select(IntakeDocument).order_by(IntakeDocument.id)).scalars().all()
    assert [(r.filename, r.media_type, r.pages, r.category) for r in rows] == [
        ("申請書.pdf", "application/pdf", 3, "identity"),
        ("免許証.jpg", "image/jpeg", 1, "identity"),
        ("通知書.tif", "image/tiff", 2, "identity"),
        ("写真.png", "image/png", 1, "identity")]
    assert all(r.uploaded_by == "clerk1" or r.uploaded_by.startswith("clerk") for r in rows)
    panel = text_of(clerk.get(f"/documents/intake/{intake.id}"))
    for name in ("申請書.pdf", "免許証.jpg", "通知書.tif", "写真.png", "本人確認書類", "3 ページ"):
        assert name in panel, panel[:2000]


def test_the_type_is_read_from_the_content_not_the_name(login_as, db, intake):
    clerk = login_as("clerk")
    document = _stored(db, clerk, intake, "scan.exe", files.make_png())
    assert document.media_type == "image/png" and document.filename == "scan.exe"


@pytest.mark.parametrize("name,content", [("multi.tif", files.make_tiff(3)),
                                          ("multi.pdf", files.make_pdf(3))])
def test_page_two_of_a_tiff_and_a_pdf_is_a_png(login_as, db, intake, name, content):
    clerk = login_as("clerk")
    document = _stored(db, clerk, intake, name, content)
    viewer = clerk.get(f"/documents/{document.id}?page=2")
    assert viewer.status_code == 200
    assert f"/documents/{document.id}/page/2" in viewer.get_data(as_text=True)
    assert "2 / 3 ページ" in text_of(viewer)
    page = clerk.get(f"/documents/{document.id}/page/2")
    assert page.status_code == 200 and page.mimetype == "image/png"
    assert "no-store" in page.headers["Cache-Control"]
    image = Image.open(io.BytesIO(page.data))
    assert image.format == "PNG" and image.width > 800
    first = Image.open(io.BytesIO(clerk.get(f"/documents/{document.id}/page/1").data))
    assert image.tobytes() != first.convert(image.mode).tobytes()  # another page
    assert clerk.get(f"/documents/{document.id}/page/4").status_code == 404
    thumb = clerk.get(f"/documents/{document.id}/thumbnail")
    assert thumb.mimetype == "image/png" and Image.open(io.BytesIO(thumb.data)).width <= 180


def test_download_is_the_original_file(login_as, db, intake):
    clerk = login_as("clerk")
    content = files.make_pdf(2)
    document = _stored(db, clerk, intake, "申請書 原本.pdf", content)
    response = clerk.get(f"/documents/{document.id}/download")
    assert response.data == content and response.mimetype == "application/pdf"
    assert "attachment" in response.headers["Content-Disposition"]
    assert "no-store" in response.headers["Cache-Control"]


def _events(db, action):
    db.expire_all()
    return db.execute(select(AuditLog).where(AuditLog.action == action,
                                             AuditLog.target_table == "intake_document")
                      .order_by(AuditLog.id)).scalars().all()


def test_every_view_and_download_is_audited_with_the_actor(login_as, db, intake):
    clerk = login_as("clerk")
    document = _stored(db, clerk, intake, "申請書.pdf", files.make_pdf(2))
    clerk.get(f"/documents/{document.id}/page/2")
    clerk.get(f"/documents/{document.id}/thumbnail")
    clerk.get(f"/documents/{document.id}/download")
    views = _events(db, "view")
    assert [(e.target_id, e.username) for e in views] == [(str(document.id), "clerk1")] * 2 \
        or all(e.username.startswith("clerk") for e in views)
    assert len(views) == 2
    assert '"page": 2' in views[0].changes and f'"intake": {intake.id}' in views[0].changes
    downloads = _events(db, "download")
    assert len(downloads) == 1 and downloads[0].username.startswith("clerk")


def test_reading_writes_nothing_but_its_audit_record(login_as, db, intake):
    clerk = login_as("clerk")
    document = _stored(db, clerk, intake, "申請書.pdf", files.make_pdf(2))
    seen = []

    def spy(conn, cursor, statement, parameters, context, executemany):
        if re.match(r"\s*(INSERT|UPDATE|DELETE)", statement, re.I):
            seen.append(" ".join(statement.split())[:80])

    event.listen(Engine, "before_cursor_execute", spy)
    try:
        clerk.get(f"/documents/intake/{intake.id}")
        clerk.get(f"/documents/{document.id}?page=2")
        clerk.get(f"/documents/{document.id}/page/2")
        clerk.get(f"/documents/{document.id}/thumbnail")
        clerk.get(f"/documents/{document.id}/download")
    finally:
        event.remove(Engine, "before_cursor_execute", spy)
    assert seen and all(s.startswith("INSERT INTO audit_log") for s in seen), seen
    assert len(seen) == 3  # page, thumbnail, download; the pages themselves record nothing


ROUTES = [("GET", "/documents/intake/{intake}"), ("POST", "/documents/intake/{intake}/upload"),
          ("GET", "/documents/{document}"), ("GET", "/documents/{document}/page/1"),
          ("GET", "/documents/{document}/thumbnail"), ("GET", "/documents/{document}/download"),
          ("POST", "/documents/{document}/delete")]


@pytest.fixture
def stored(login_as, users, db, intake, app):
    document = documents.upload(db, intake.id, "application_form",
                                [("申請書.pdf", files.make_pdf(1))])[0]
    return {"intake": intake.id, "document": document.id}


@pytest.mark.parametrize("method,url", ROUTES)
def test_viewers_reach_no_document_route(login_as, db, stored, method, url):
    viewer = login_as("viewer")
    response = viewer.open(url.format(**stored), method=method, data={"reason": "x"})
    assert response.status_code == 403
    assert _count(db) == 1
    assert not _events(db, "view") and not _events(db, "download")


@pytest.mark.parametrize("role,shown", [("viewer", False), ("clerk", True)])
def test_the_panel_shows_nothing_to_a_viewer(app, users, db, intake, stored, role, shown):
    from flask_login import login_user

    ref = users.create(role)
    with app.test_request_context():
        from flask import g

        g.user = app.appbuilder.sm.find_user(username=ref.username)  # as FAB's before_request
        login_user(g.user)
        html = app.jinja_env.get_template("documents/_intake_panel.html").render(intake=intake)
    assert ("document-panel" in html) is shown and ("申請書.pdf" in html) is shown
    assert ("document-upload" in html) is shown


def test_a_clerk_cannot_delete_and_a_manager_must_give_a_reason(app, users, login_as, db, stored):
    clerk = login_as("clerk")
    assert clerk.post(f"/documents/{stored['document']}/delete",
                      data={"reason": "誤り"}).status_code == 403
    assert _count(db) == 1
    manager = app.test_client()
    ref = users.create("manager")
    assert login(manager, ref.username, users.password).status_code == 302
    shown = text_of(manager.post(f"/documents/{stored['document']}/delete", data={"reason": " "},
                                 follow_redirects=True))
    assert "削除の理由" in shown and _count(db) == 1
    response = manager.post(f"/documents/{stored['document']}/delete",
                            data={"reason": "別人の書類を取り込んだため"})
    assert response.status_code == 302
    assert _count(db) == 0 and _count(db, DocumentBlob) == 0
    deletes = _events(db, "delete")
    assert any("別人の書類を取り込んだため" in (e.changes or "") and e.username.startswith("manager")
               for e in deletes)


def test_the_viewer_refuses_a_damaged_document_clearly(login_as, db, stored):
    blob = db.get(DocumentBlob, stored["document"])
    damaged = bytearray(blob.ciphertext)
    damaged[10] ^= 0x01
    blob.ciphertext = bytes(damaged)
    db.commit()
    clerk = login_as("clerk")
    response = clerk.get(f"/documents/{stored['document']}")
    assert response.status_code == 500
    assert "復号できませんでした" in text_of(response)
    assert 'data-testid="page-image"' not in response.get_data(as_text=True)
    page = clerk.get(f"/documents/{stored['document']}/page/1")
    assert page.status_code == 500 and page.mimetype != "image/png"
    assert not _events(db, "view")


def test_a_page_that_cannot_be_rendered_is_a_japanese_refusal_not_a_crash(login_as, db, stored,
                                                                          monkeypatch):
    def boom(*args, **kwargs):
        raise MemoryError("cannot allocate")

    monkeypatch.setattr(documents.pypdfium2.PdfPage, "render", boom)
    clerk = login_as("clerk")
    for url in (f"/documents/{stored['document']}/page/1",
                f"/documents/{stored['document']}/thumbnail"):
        response = clerk.get(url)
        assert response.status_code == 422 and response.mimetype == "text/html"
        assert "表示できませんでした" in text_of(response)
    assert not _events(db, "view")


@pytest.mark.parametrize("name,content,disposition", [
    ("x.exe", files.make_pdf(1), "filename=x.pdf"),
    ("申請書.exe", files.make_pdf(1), "filename=\"document-{id}.pdf\"; "
                                      "filename*=UTF-8''%E7%94%B3%E8%AB%8B%E6%9B%B8.pdf"),
    ("写真", files.make_png(), "filename*=UTF-8''%E5%86%99%E7%9C%9F.png"),
    ("scan.pdf", files.make_jpeg(), "filename=scan.jpg"),
    ("multi.TIFF", files.make_tiff(1), "filename=multi.tif"),
    ("\u202efdp.exe", files.make_pdf(1), "filename=fdp.pdf"),  # right-to-left override gone
])
def test_the_download_is_named_by_its_detected_type(login_as, db, intake, name, content,
                                                    disposition):
    clerk = login_as("clerk")
    document = _stored(db, clerk, intake, name, content)
    response = clerk.get(f"/documents/{document.id}/download")
    assert response.status_code == 200 and response.data == content
    assert disposition.format(id=document.id) in response.headers["Content-Disposition"], \
        response.headers["Content-Disposition"]
    assert ".exe" not in response.headers["Content-Disposition"]


@pytest.mark.parametrize("target", ["/\\evil.example/x", "//evil.example/x",
                                    "https://evil.example/x", "/\t/evil.example/x",
                                    "/\n/evil.example", "intake"])
def test_the_way_back_after_an_upload_stays_on_this_site(login_as, db, intake, target):
    clerk = login_as("clerk")
    data = {"category": "other", "next": target,
            "files": [(io.BytesIO(files.make_pdf(1)), "a.pdf")]}
    response = clerk.post(f"/documents/intake/{intake.id}/upload", data=data,
                          content_type="multipart/form-data")
    assert response.status_code == 302
    assert response.headers["Location"] == f"/documents/intake/{intake.id}"
    stored = {"category": "bogus", "next": target,
              "files": [(io.BytesIO(files.make_pdf(1)), "a.pdf")]}
    refused = clerk.post(f"/documents/intake/{intake.id}/upload", data=stored,
                         content_type="multipart/form-data")
    assert refused.headers["Location"] == f"/documents/intake/{intake.id}"


def test_the_way_back_keeps_a_page_of_this_site(login_as, db, intake):
    clerk = login_as("clerk")
    data = {"category": "other", "next": f"/intake/show/{intake.id}?tab=documents",
            "files": [(io.BytesIO(files.make_pdf(1)), "a.pdf")]}
    response = clerk.post(f"/documents/intake/{intake.id}/upload", data=data,
                          content_type="multipart/form-data")
    assert response.headers["Location"] == f"/intake/show/{intake.id}?tab=documents"
