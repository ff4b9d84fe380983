"""Scanned documents (issue 13 §5): what encryption at rest costs, and how fast the viewer
shows a first page.

On a throwaway SQLite database (or DATABASE_URL), a 20-page A4 PDF drawn at 300 dpi with
Pillow (frame, ruled lines, boxes and text on every page):

- upload: ``documents.upload`` (type check by content, pdfium opening every page, the
  JavaScript scan, SHA-256, AES-256-GCM, the row and its blob in one transaction) against
  writing the same bytes plainly to a file on disk (write + fsync), as a ratio;
- the same upload split: the checks alone, and the encryption alone;
- the viewer's first page: ``GET /documents/<id>/page/1`` through the app (decrypt, hash
  check, pdfium render at the screen resolution, PNG, audit record) with a signed-in
  clerk's test client, and the viewer page itself.
"""
from __future__ import annotations

import os
import shutil
import statistics
import tempfile
import time

REPEAT = int(os.environ.get("BENCH_DOCUMENTS_REPEAT", "5"))


def _median(fn, repeat=REPEAT):
    runs = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - start)
    return statistics.median(runs)


def bench_documents(rows):
    from app import create_app
    from app.cli import init_database
    from app.services import documents
    from tests.document_files import make_pdf
    from tests.factories import UserFactory, make_intake

    instance = tempfile.mkdtemp(prefix="mnc-bench-docs-")
    url = os.environ.get("DATABASE_URL") or f"sqlite:///{instance}/bench.db"
    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "INSTANCE_DIR": instance,
                      "SESSION_COOKIE_SECURE": False, "WTF_CSRF_ENABLED": False,
                      "STAFF_HOURS_ENFORCED": False})
    rows.append(("what", "how", "median", "result"))
    start = time.perf_counter()
    pdf = make_pdf(20, 300)
    made = time.perf_counter() - start
    rows.append(("a 20-page A4 PDF at 300 dpi", "drawn with Pillow", f"{made:.2f} s",
                 f"{len(pdf) / 1024 / 1024:.1f} MB"))
    try:
        with app.app_context():
            init_database()
            session = app.appbuilder.session
            intake = make_intake(session)

            def plain():
                path = os.path.join(instance, "plain.pdf")
                with open(path, "wb") as handle:
                    handle.write(pdf)
                    handle.flush()
                    os.fsync(handle.fileno())

            def upload():
                documents.upload(session, intake.id, "application_form", [("scan.pdf", pdf)])

            disk = _median(plain)
            stored = _median(upload)
            checks = _median(lambda: documents.inspect_file(pdf))
            ring = documents.key_ring()
            sealing = _median(lambda: documents._seal(ring, 1, pdf))
            rows.append(("plain write to disk", "write + fsync", f"{disk * 1000:.0f} ms", ""))
            rows.append(("upload through the service", "check, hash, encrypt, one transaction",
                         f"{stored * 1000:.0f} ms", f"{stored / disk:.1f} × the plain write"))
            rows.append(("", "of which: checks by content", f"{checks * 1000:.0f} ms", ""))
            rows.append(("", "of which: AES-256-GCM", f"{sealing * 1000:.0f} ms",
                         f"{len(pdf) / sealing / 1024 / 1024:.0f} MB/s"))
            document_id = documents.documents_of(session, intake.id)[-1].id
            users = UserFactory(app)
            clerk = users.create("clerk", username="benchclerk")
            session.remove()
        client = app.test_client()
        client.post("/login/", data={"username": clerk.username, "password": users.password})
        first = client.get(f"/documents/{document_id}/page/1")
        assert first.status_code == 200 and first.mimetype == "image/png", first.status_code
        page = _median(lambda: client.get(f"/documents/{document_id}/page/1"))
        viewer = _median(lambda: client.get(f"/documents/{document_id}"))
        rows.append(("viewer: first page as PNG", f"GET /documents/<id>/page/1 "
                     f"({documents.SCREEN_DPI} dpi)", f"{page * 1000:.0f} ms",
                     f"{len(first.data) / 1024:.0f} KB PNG"))
        rows.append(("viewer page (HTML)", "decrypt and hash check, no image",
                     f"{viewer * 1000:.0f} ms", ""))
    finally:
        shutil.rmtree(instance, ignore_errors=True)
