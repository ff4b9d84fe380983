"""Scanned documents at rest (issue 13 §3, S2): what the database holds is ciphertext bound
to its row and key; a damaged byte, a wrong or missing key, a swapped blob or a changed hash
is refused loudly; key rotation re-encrypts everything and old documents still open; the
retention rule removes exactly what is past it (and --dry-run nothing)."""
import base64
import io
import os
import shutil
from datetime import datetime

import pytest
from sqlalchemy import select

from app import settings
from app.clock import JST
from app.models.audit import AuditLog
from app.models.document import DocumentBlob, IntakeDocument
from app.services import documents
from app.services.errors import InputError, NotPermittedError
from tests import document_files as files
from tests.factories import make_card, make_intake

SNIPPET = b"Application form"  # drawn as text in plain_pdf()


@pytest.fixture
def intake(db):
    return make_intake(db)


def _store(db, intake, content=None, name="申請書.pdf"):
    content = content if content is not None else files.plain_pdf()
    return documents.upload(db, intake.id, "application_form", [(name, content)])[0]


def _blob(db, document):
    db.expire_all()
    return db.get(DocumentBlob, document.id)


def test_the_database_holds_ciphertext_not_the_file(app, db, intake):
    content = files.plain_pdf()
    assert SNIPPET in content
    document = _store(db, intake, content)
    blob = _blob(db, document)
    assert SNIPPET not in blob.ciphertext and content not in blob.ciphertext
    assert len(blob.nonce) == 12 and len(blob.ciphertext) == len(content) + 16  # GCM tag
    assert documents.plaintext_of(db, document) == content
    uri = app.config["SQLALCHEMY_DATABASE_URI"]
    if uri.startswith("sqlite:///"):  # the whole database file, not only the column
        db.close()
        # Read in another process: closing a descriptor of the database file in this one
        # would drop every SQLite lock this process holds on it (POSIX locks are per
        # process), and a later process would take itself for the last user of the WAL.
        import subprocess
        import sys

        found = subprocess.run(
            [sys.executable, "-c", "import sys; data = open(sys.argv[1], 'rb').read(); "
             "print(bytes.fromhex(sys.argv[2]) in data)", uri[len("sqlite:///"):],
             SNIPPET.hex()], capture_output=True, text=True, check=True).stdout.strip()
        assert found == "False"


def test_every_file_gets_its_own_nonce(db, intake):
    first, second = _store(db, intake), _store(db, intake)
    assert first.sha256 == second.sha256
    one, two = _blob(db, first), _blob(db, second)
    assert one.nonce != two.nonce and one.ciphertext != two.ciphertext


def test_a_flipped_ciphertext_byte_is_refused(db, intake):
    document = _store(db, intake)
    blob = _blob(db, document)
    damaged = bytearray(blob.ciphertext)
    damaged[len(damaged) // 2] ^= 0x80
    blob.ciphertext = bytes(damaged)
    db.commit()
    with pytest.raises(documents.DocumentIntegrityError):
        documents.plaintext_of(db, document)


def test_a_blob_moved_to_another_row_is_refused(db, intake):
    first, second = _store(db, intake), _store(db, intake, files.make_png(), "写真.png")
    one, two = _blob(db, first), _blob(db, second)
    one.nonce, one.ciphertext, two.nonce, two.ciphertext = (two.nonce, two.ciphertext,
                                                            one.nonce, one.ciphertext)
    db.commit()
    for document in (first, second):
        with pytest.raises(documents.DocumentIntegrityError):
            documents.plaintext_of(db, document)


def test_a_changed_hash_is_refused(db, intake):
    document = _store(db, intake)
    document.sha256 = "0" * 64
    db.commit()
    with pytest.raises(documents.DocumentIntegrityError, match="チェックサム"):
        documents.plaintext_of(db, document)


def _other_key() -> str:
    return base64.b64encode(os.urandom(32)).decode()


def test_a_wrong_key_is_refused(app, db, intake):
    document = _store(db, intake)
    settings.configure(app, DOCUMENT_KEYS=f"{document.key_id}:{_other_key()}",
                       DOCUMENT_KEY_CURRENT=document.key_id)
    with pytest.raises(documents.DocumentIntegrityError):
        documents.plaintext_of(db, document)


def test_a_missing_key_is_refused(app, db, intake):
    document = _store(db, intake)
    settings.configure(app, DOCUMENT_KEYS=f"kother:{_other_key()}", DOCUMENT_KEY_CURRENT="kother")
    with pytest.raises(documents.DocumentKeyError, match=document.key_id):
        documents.plaintext_of(db, document)


def test_a_missing_key_ring_is_refused(app, db, intake):
    document = _store(db, intake)
    with app.app_context():
        path = documents.ring_path()
    shutil.move(path, path + ".away")
    try:
        with pytest.raises(documents.DocumentKeyError):
            documents.plaintext_of(db, document)
    finally:
        shutil.move(path + ".away", path)
    assert documents.plaintext_of(db, document) == files.plain_pdf()


def test_the_key_ring_file_is_private(app, db, intake):
    _store(db, intake)
    assert os.stat(documents.ring_path()).st_mode & 0o077 == 0


def test_environment_keys_encrypt_and_decrypt(app, db, intake):
    settings.configure(app, DOCUMENT_KEYS=f"kenv1:{_other_key()},kenv2:{_other_key()}",
                       DOCUMENT_KEY_CURRENT="kenv2")
    document = _store(db, intake)
    assert document.key_id == "kenv2"
    assert documents.plaintext_of(db, document) == files.plain_pdf()


def test_roles_are_checked_in_the_service(app, db, intake):
    viewer = documents.DocumentActor("v", frozenset({app.config["ROLE_VIEWER"]}))
    clerk = documents.DocumentActor("c", frozenset({app.config["ROLE_CLERK"]}))
    with app.test_request_context():
        with pytest.raises(NotPermittedError):
            documents.upload(db, intake.id, "other", [("a.png", files.make_png())], actor=viewer)
        document = documents.upload(db, intake.id, "other", [("a.png", files.make_png())],
                                    actor=clerk)[0]
        with pytest.raises(NotPermittedError):
            documents.page_png(db, document, 1, actor=viewer)
        with pytest.raises(NotPermittedError):
            documents.delete(db, document.id, "誤り", actor=clerk)
    assert db.get(IntakeDocument, document.id) is not None


def test_one_bad_file_stores_none_of_the_upload(db, intake):
    with pytest.raises(InputError) as refused:
        documents.upload(db, intake.id, "identity", [("a.pdf", files.make_pdf(2)),
                                                     ("b.exe", files.renamed_exe()),
                                                     ("c.png", b"")])
    assert [name for name, _ in refused.value.failures] == ["b.exe", "c.png"]
    assert db.execute(select(IntakeDocument)).first() is None


def test_pdf_names_find_escaped_and_packed_javascript():
    assert "JavaScript" in documents.pdf_names(files.js_escaped_names_pdf())
    packed = files.js_page_aa_in_object_stream_pdf()
    assert "JavaScript" not in documents._names(packed)  # invisible to a plain scan
    assert "JavaScript" in documents.pdf_names(packed)
    assert not documents.pdf_names(files.plain_pdf()) & documents.ACTIVE_NAMES


def _cli(app, *args):
    result = app.test_cli_runner().invoke(args=["documents", *args])
    return result


def test_rotate_key_reencrypts_everything_and_old_documents_still_open(app, db, intake,
                                                                       monkeypatch):
    import getpass

    monkeypatch.setattr(getpass, "getuser", lambda: "operator7")
    stored = [_store(db, intake, files.make_pdf(2)), _store(db, intake, files.make_tiff(2), "b.tif"),
              _store(db, intake, files.make_jpeg(), "c.jpg")]
    old_key = stored[0].key_id
    before = {d.id: _blob(db, d).ciphertext for d in stored}
    result = _cli(app, "rotate-key")
    assert result.exit_code == 0, result.output
    assert "re-encrypted: 3" in result.output
    with app.app_context():
        ring = documents.key_ring()
    assert ring.current != old_key and old_key in ring.keys
    db.expire_all()
    for document in stored:
        row = db.get(IntakeDocument, document.id)
        assert row.key_id == ring.current
        assert _blob(db, row).ciphertext != before[row.id]
        assert documents.hashlib.sha256(documents.plaintext_of(db, row)).hexdigest() == row.sha256
    updates = db.execute(select(AuditLog).where(AuditLog.action == "update",
                                                AuditLog.target_table == "intake_document")
                         ).scalars().all()
    assert len(updates) == 3 and {u.username for u in updates} == {"cli:operator7"}
    dropped = _cli(app, "rotate-key", "--drop-old")
    assert dropped.exit_code == 0 and old_key in dropped.output
    with app.app_context():
        assert old_key not in documents.key_ring().keys
    assert _cli(app, "verify").output.strip().endswith("failed: 0")


def test_rotation_leaves_a_row_someone_else_changed_meanwhile(app, db, intake, monkeypatch):
    document = _store(db, intake)
    stale = documents._stored(db, document.id)
    assert _cli(app, "rotate-key").exit_code == 0  # another run re-encrypted it first
    db.expire_all()
    current = db.get(IntakeDocument, document.id).key_id
    blob_before = _blob(db, document).ciphertext
    with app.app_context():
        documents.app_secrets.add_ring_key(documents.ring_path(), "kthird-000001")
        ring = documents.key_ring()
        monkeypatch.setattr(documents, "_stored", lambda session, document_id: stale)
        report = documents.RotationReport(ring.current, True)
        documents._reencrypt_one(db, ring, document.id, report)
    assert report.skipped == 1 and report.reencrypted == 0
    db.expire_all()
    assert db.get(IntakeDocument, document.id).key_id == current
    assert _blob(db, document).ciphertext == blob_before


def test_verify_names_a_damaged_document(app, db, intake):
    good, bad = _store(db, intake), _store(db, intake)
    blob = _blob(db, bad)
    blob.ciphertext = blob.ciphertext[:-1] + bytes([blob.ciphertext[-1] ^ 1])
    db.commit()
    result = _cli(app, "verify")
    assert result.exit_code == 1 and f"document {bad.id}:" in result.output
    assert f"document {good.id}:" not in result.output


def test_purge_removes_only_documents_past_retention(app, db, monkeypatch):
    import getpass

    monkeypatch.setattr(getpass, "getuser", lambda: "operator8")
    now = datetime(2026, 12, 1, 10, 0, tzinfo=JST)
    six_years = datetime(2020, 11, 30, 10, 0, tzinfo=JST)
    four_years = datetime(2022, 12, 1, 10, 0, tzinfo=JST)
    card_old = make_intake(db)  # its card handed over six years ago (on the card)
    card = make_card(db, application_id=card_old.application_id)
    card.handed_over_at = six_years
    withdrawn_old = make_intake(db, state="withdrawn", withdrawn_at=six_years,
                                withdraw_reason="本人の申出")
    intake_old = make_intake(db, state="handed_over", handed_over_at=six_years)
    recent = make_intake(db, state="handed_over", handed_over_at=four_years)
    open_one = make_intake(db)
    db.commit()
    docs = {name: _store(db, i, name=f"{name}.pdf") for name, i in [
        ("card_old", card_old), ("withdrawn_old", withdrawn_old), ("intake_old", intake_old),
        ("recent", recent), ("open", open_one)]}
    assert now == app.config["CLOCK"]()

    dry = _cli(app, "purge", "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert "3 document(s) would be removed" in dry.output
    for name in ("card_old", "withdrawn_old", "intake_old"):
        assert f"{name}.pdf" in dry.output
    assert card_old.application_id in dry.output and "2020-11-30" in dry.output
    assert "recent.pdf" not in dry.output and "open.pdf" not in dry.output
    db.expire_all()
    assert len(db.execute(select(IntakeDocument)).all()) == 5

    result = _cli(app, "purge")
    assert result.exit_code == 0 and "removed: 3" in result.output, result.output
    db.expire_all()
    left = {d.filename for d in db.execute(select(IntakeDocument)).scalars()}
    assert left == {"recent.pdf", "open.pdf"}
    assert len(db.execute(select(DocumentBlob)).all()) == 2
    deletes = db.execute(select(AuditLog).where(AuditLog.action == "delete",
                                                AuditLog.target_table == "intake_document")
                         ).scalars().all()
    assert {str(docs[n].id) for n in ("card_old", "withdrawn_old", "intake_old")} <= {
        d.target_id for d in deletes}
    assert {d.username for d in deletes} == {"cli:operator8"}

    settings.configure(app, DOCUMENT_RETENTION_YEARS=3)  # configurable: now 4 years is past it
    assert "1 document(s) would be removed" in _cli(app, "purge", "--dry-run").output


# --- pages of any size: refused at upload above A0, and never rendered above a pixel cap ----

def test_a_page_larger_than_any_paper_is_refused(app):
    with app.test_request_context():
        with pytest.raises(InputError, match="A0"):
            documents.inspect_file(files.big_page_pdf(14400, 14400))
        with pytest.raises(InputError, match="A0"):
            documents.inspect_file(files.big_page_pdf(595, 3600))
        assert documents.inspect_file(files.big_page_pdf(2384, 3370)).pages == 1  # A0 itself


def _png_size(png: bytes) -> tuple[int, int]:
    from PIL import Image

    return Image.open(io.BytesIO(png)).size


def test_rendering_never_exceeds_the_pixel_cap(app):
    long_strip = files.big_page_pdf(3400, 300)  # accepted: within A0 and a margin
    size = _png_size(documents.render_png(long_strip, documents.PDF, 1))
    assert max(size) <= documents.PAGE_MAX_PIXELS and max(size) >= documents.PAGE_MAX_PIXELS - 2
    huge = files.big_page_pdf(14400, 14400)  # refused at upload; stored before this check
    size = _png_size(documents.render_png(huge, documents.PDF, 1))
    assert max(size) <= documents.PAGE_MAX_PIXELS
    size = _png_size(documents.render_png(huge, documents.PDF, 1, dpi=40,
                                          box=documents.THUMBNAIL_SIZE))
    assert size[0] <= documents.THUMBNAIL_SIZE[0] and size[1] <= documents.THUMBNAIL_SIZE[1]
    tall = io.BytesIO()
    from PIL import Image

    Image.new("L", (400, 9000), 255).save(tall, "PNG", dpi=(100, 100))
    assert max(_png_size(documents.render_png(tall.getvalue(), documents.PNG, 1))) <= \
        documents.PAGE_MAX_PIXELS


def test_a_rendering_failure_is_a_japanese_domain_error(app):
    with app.test_request_context():
        with pytest.raises(documents.DocumentRenderError, match="表示できませんでした"):
            documents.render_png(b"%PDF-1.4\nnot really a pdf\n%%EOF\n", documents.PDF, 1)
        with pytest.raises(documents.DocumentRenderError):
            documents.render_png(files.corrupt_png(), documents.PNG, 1)


# --- JavaScript in object streams whatever their filters; actions pdfium resolves --------

@pytest.mark.parametrize("filters", ["hex", "hexflate", "a85", "rl", "flate"])
@pytest.mark.parametrize("where", ["openaction", "page"])
def test_javascript_in_an_object_stream_is_found_whatever_its_filters(app, filters, where):
    with app.test_request_context():
        with pytest.raises(InputError, match="JavaScript"):
            documents.inspect_file(files.objstm_pdf(filters, where))


@pytest.mark.parametrize("filters", ["hex", "hexflate", "a85", "rl", "flate"])
def test_a_harmless_object_stream_is_accepted(app, filters):
    with app.test_request_context():
        assert documents.inspect_file(files.objstm_pdf(filters, js=False)).pages == 1


@pytest.mark.parametrize("kind,entry", [
    ("lzw", None),  # a filter pdfium reads and this check does not
    ("hex", b"9 0 R"),  # the filter named elsewhere: unknown here
    ("flate", b"/FlateDecode /DecodeParms << /Predictor 12 /Columns 4 >>"),
    ("hex", b"/DCTDecode"),
])
def test_an_object_stream_that_cannot_be_read_is_refused(app, kind, entry):
    with app.test_request_context():
        with pytest.raises(InputError, match="確認できない"):
            documents.inspect_file(files.objstm_pdf(kind, js=False, filter_entry=entry))


def test_an_object_stream_over_the_unpack_cap_is_refused(app, monkeypatch):
    monkeypatch.setattr(documents, "OBJECT_STREAM_CAP", 4096)
    with app.test_request_context():
        assert documents.inspect_file(files.objstm_pdf("flate", js=False, padding=3000))
        for filters in ("flate", "hex", "rl", "a85"):
            with pytest.raises(InputError, match="展開すると"):
                documents.inspect_file(files.objstm_pdf(filters, js=False, padding=5000))


def test_pdfium_refuses_a_page_action_the_name_scan_missed(app, monkeypatch):
    monkeypatch.setattr(documents, "pdf_names", lambda data: set())  # as if the scan failed
    with app.test_request_context():
        with pytest.raises(InputError, match="自動で実行"):
            documents.inspect_file(files.objstm_pdf("hex", "page"))
        assert documents.inspect_file(files.plain_pdf()).pages == 1


def test_pdf_names_are_read_by_a_tokenizer_not_fooled_by_strings(app):
    # a fake "obj" and ">>" inside a string of the object stream's dictionary
    pdf = files.objstm_pdf("hex", js=True, filter_entry=b"/ASCIIHexDecode /X (7 0 obj >>)")
    with app.test_request_context():
        with pytest.raises(InputError, match="JavaScript"):
            documents.inspect_file(pdf)
        with pytest.raises(InputError, match="壊れている"):
            documents.pdf_names(b"%PDF-1.4\n" + b"[" * 100000)


# --- the key ring is never made again while documents exist --------------------------------

def test_a_lost_ring_is_never_replaced_while_documents_exist(app, db, intake):
    first = _store(db, intake)
    path = documents.ring_path()
    shutil.move(path, path + ".away")  # e.g. instance/ not restored on a new server
    try:
        with app.test_request_context():
            with pytest.raises(documents.DocumentKeyError, match="instance/document_keys"):
                _store(db, intake, name="b.pdf")
        assert not os.path.exists(path)
        result = _cli(app, "rotate-key")
        assert result.exit_code == 2 and "DOCUMENT_KEYS" in result.output, result.output
        assert not os.path.exists(path)
    finally:
        shutil.move(path + ".away", path)
    db.expire_all()
    assert [d.id for d in db.execute(select(IntakeDocument)).scalars()] == [first.id]
    second = _store(db, intake, name="b.pdf")  # the original ring back: all is well
    assert second.key_id == first.key_id
    assert documents.plaintext_of(db, first) == documents.plaintext_of(db, second)


def test_the_first_ring_is_made_when_no_document_exists(app, db, intake):
    path = documents.ring_path()
    if os.path.exists(path):  # the instance folder is shared by the tests
        shutil.move(path, path + ".before")
    try:
        document = _store(db, intake)
        assert os.path.exists(path) and documents.key_ring().current == document.key_id
    finally:
        if os.path.exists(path + ".before"):
            shutil.move(path + ".before", path)


def test_keys_used_by_rows_but_missing_from_the_ring_are_loud(app, db, intake, caplog):
    document = _store(db, intake)
    settings.configure(app, DOCUMENT_KEYS=f"kother:{_other_key()}", DOCUMENT_KEY_CURRENT="kother")
    caplog.set_level("ERROR")
    with app.test_request_context():
        with pytest.raises(documents.DocumentKeyError):
            documents.plaintext_of(db, document)  # first use: the rows' keys are compared
    assert any(document.key_id in r.getMessage() and "1 document" in r.getMessage()
               for r in caplog.records if r.levelname == "ERROR"), caplog.text
    with app.test_request_context():
        with pytest.raises(documents.DocumentKeyError, match=document.key_id):
            _store(db, intake, name="new.pdf")  # nothing new under a ring that lacks keys
    db.expire_all()
    assert len(db.execute(select(IntakeDocument)).all()) == 1


# --- the pixel limit is checked per frame, without touching the process's warning filters --

def _tiff(*sizes) -> bytes:
    from PIL import Image

    frames = [Image.new("L", size, 255) for size in sizes]
    out = io.BytesIO()
    frames[0].save(out, "TIFF", save_all=True, append_images=frames[1:])
    return out.getvalue()


def test_the_pixel_limit_is_checked_per_frame_without_warning_filters(app, monkeypatch):
    from types import SimpleNamespace

    from PIL import Image

    def not_thread_safe(*args, **kwargs):
        raise AssertionError("warnings.catch_warnings changes process-wide state")

    # the service's own use of the warnings module (pytest needs the real one)
    monkeypatch.setattr(documents, "warnings", SimpleNamespace(catch_warnings=not_thread_safe),
                        raising=False)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 500_000)
    with app.test_request_context():
        assert documents.inspect_file(_tiff((600, 800), (700, 700))).pages == 2
        for sizes in [((600, 800), (1000, 1000)), ((1000, 1000),), ((100, 100), (2000, 2000))]:
            with pytest.raises(InputError, match="画素数が多すぎる"):
                documents.inspect_file(_tiff(*sizes))


def test_purge_removes_documents_of_a_discarded_card_past_retention(app, db):
    six_years = datetime(2020, 11, 30, 10, 0, tzinfo=JST)
    four_years = datetime(2022, 12, 1, 10, 0, tzinfo=JST)
    old, recent = make_intake(db), make_intake(db)
    for intake, when in ((old, six_years), (recent, four_years)):
        card = make_card(db, application_id=intake.application_id, state="discarded")
        card.discarded_at = when
    db.commit()
    _store(db, old, name="discarded_old.pdf")
    _store(db, recent, name="discarded_recent.pdf")
    dry = _cli(app, "purge", "--dry-run")
    assert "1 document(s) would be removed" in dry.output, dry.output
    assert "discarded_old.pdf" in dry.output and "discarded 2020-11-30" in dry.output
    assert "discarded_recent.pdf" not in dry.output
    assert "removed: 1" in _cli(app, "purge").output
    db.expire_all()
    assert {d.filename for d in db.execute(select(IntakeDocument)).scalars()} == {
        "discarded_recent.pdf"}
