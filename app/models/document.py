"""Scanned papers of an intake (F2.4, S2): the description of each file here, its
encrypted bytes in ``document_blob`` (AES-256-GCM, app/services/documents.py), so that
lists never load the bytes, the audit trail never copies them, and a file and its row are
stored, replicated and backed up together with the database.
"""
from __future__ import annotations

from datetime import datetime

from flask_appbuilder import Model
from flask_babel import lazy_gettext as _l
from sqlalchemy import CheckConstraint, ForeignKey, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, deferred, mapped_column, relationship

from app.models.intake import Intake
from app.models.types import AwareDateTime

CATEGORY_APPLICATION_FORM = "application_form"  # 申請書
CATEGORY_IDENTITY = "identity"  # 本人確認書類
CATEGORY_PROXY = "proxy"  # 代理人の書類
CATEGORY_OTHER = "other"  # その他
CATEGORY_LABELS = {CATEGORY_APPLICATION_FORM: _l("Application form"),
                   CATEGORY_IDENTITY: _l("Identity documents"),
                   CATEGORY_PROXY: _l("Proxy documents"), CATEGORY_OTHER: _l("Other")}
CATEGORIES = tuple(CATEGORY_LABELS)

MEDIA_TYPES = ("application/pdf", "image/jpeg", "image/png", "image/tiff")


class IntakeDocument(Model):
    __tablename__ = "intake_document"
    __table_args__ = (
        CheckConstraint("category IN ('application_form', 'identity', 'proxy', 'other')",
                        name="ck_document_category"),
        CheckConstraint("media_type IN ('application/pdf', 'image/jpeg', 'image/png',"
                        " 'image/tiff')", name="ck_document_media_type"),
        CheckConstraint("size > 0 AND pages >= 1", name="ck_document_size_pages"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    intake_id: Mapped[int] = mapped_column(ForeignKey("intake.id"), nullable=False, index=True)
    intake: Mapped[Intake] = relationship(Intake)
    category: Mapped[str] = mapped_column(String(20), nullable=False)
    filename: Mapped[str] = mapped_column(String(255), nullable=False)  # as uploaded
    media_type: Mapped[str] = mapped_column(String(50), nullable=False)  # by content
    size: Mapped[int] = mapped_column(Integer, nullable=False)  # plaintext bytes
    pages: Mapped[int] = mapped_column(Integer, nullable=False, default=1)
    sha256: Mapped[str] = mapped_column(String(64), nullable=False)  # of the plaintext
    key_id: Mapped[str] = mapped_column(String(40), nullable=False, index=True)
    uploaded_at: Mapped[datetime] = mapped_column(AwareDateTime(), nullable=False)
    uploaded_by: Mapped[str] = mapped_column(String(100), nullable=False)
    blob: Mapped["DocumentBlob"] = relationship(back_populates="document", uselist=False,
                                                cascade="all, delete-orphan")

    def __repr__(self) -> str:
        return self.filename


class DocumentBlob(Model):
    """The encrypted bytes of one document: nonce (12 bytes) and ciphertext with its tag.
    Not audited (app/services/audit.py EXCLUDED_TABLES): the document row is."""

    __tablename__ = "document_blob"

    document_id: Mapped[int] = mapped_column(ForeignKey("intake_document.id"),
                                             primary_key=True, autoincrement=False)
    document: Mapped[IntakeDocument] = relationship(back_populates="blob")
    nonce: Mapped[bytes] = mapped_column(LargeBinary(12), nullable=False)
    ciphertext: Mapped[bytes] = deferred(mapped_column(LargeBinary, nullable=False))
