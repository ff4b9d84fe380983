"""The export policy service (issue 15 §4): what the form asked for, the refusal of a plain
file of personal data while encryption is required, and the one-time hand-out of a
prepared encrypted file to its owner."""
import io

import pytest
from werkzeug.datastructures import MultiDict

from app.services import export_policy, file_store, protected_zip
from app.services.cards import SYSTEM
from app.services.errors import InputError
from app.services.export_policy import (EXPORTS, PLAIN, EncryptionRequiredError,
                                        PreparedFileGoneError)


def test_the_form_choice(app):
    assert export_policy.choice_from(MultiDict()) is PLAIN
    assert export_policy.choice_from(MultiDict({"password_mode": "typed"})) is PLAIN
    generated = export_policy.choice_from(MultiDict({"encrypt": "1"}))
    assert generated.encrypt and generated.generated and len(generated.password) == 19
    typed = export_policy.choice_from(MultiDict({"encrypt": "on", "password_mode": "typed",
                                                 "zip_password": "twelve-chars"}))
    assert (typed.encrypt, typed.generated, typed.password) == (True, False, "twelve-chars")
    assert "twelve-chars" not in repr(typed)  # never in a log line of the choice
    assert typed.audit_note() == {"encrypted": True} and PLAIN.audit_note() == {
        "encrypted": False}
    with pytest.raises(InputError):
        export_policy.choice_from(MultiDict({"encrypt": "1", "password_mode": "typed",
                                             "zip_password": "eleven-char"}))


def test_every_export_is_marked_and_only_personal_ones_are_refused(app, db):
    assert {k for k, e in EXPORTS.items() if e.personal} == {
        "audit_csv", "postcard_print", "extraction", "fees_daily", "document_original",
        "migration_export", "ledger_import_report"}
    for key in EXPORTS:  # the default: nothing required
        export_policy.require(db, key, encrypted=False)
    export_policy.set_policy(db, encryption_required=True, expected_version=0, actor=SYSTEM)
    for key, export in EXPORTS.items():
        export_policy.require(db, key, encrypted=True)
        if export.personal:
            with pytest.raises(EncryptionRequiredError):
                export_policy.require(db, key, encrypted=False)
        else:
            export_policy.require(db, key, encrypted=False)


def test_a_prepared_file_goes_once_to_its_owner(app):
    with app.test_request_context():
        chosen = export_policy.choice_from(MultiDict({"encrypt": "1"}))
        prepared = export_policy.prepare([protected_zip.Part("名簿.csv", b"a,b\r\n")], chosen,
                                         owner="kanri", filename="名簿.csv")
        assert prepared.filename == "名簿.zip"
        with pytest.raises(PreparedFileGoneError):
            export_policy.prepared(prepared.token, "someone_else")
        for bad in ("../secret_key", "", "x" * 10):
            with pytest.raises(PreparedFileGoneError):
                export_policy.prepared(bad, "kanri")
        found = export_policy.take(prepared.token, "kanri")
        content = file_store.read_all(found.stored)
        assert protected_zip.read_all(io.BytesIO(content), chosen.password) == {
            "名簿.csv": b"a,b\r\n"}
        with pytest.raises(PreparedFileGoneError):  # a second take finds nothing
            export_policy.take(prepared.token, "kanri")
        export_policy.discard(found)
        with pytest.raises(PreparedFileGoneError):
            export_policy.prepared(prepared.token, "kanri")
        with pytest.raises(ValueError):
            export_policy.prepare([], PLAIN, owner="kanri", filename="x.csv")
