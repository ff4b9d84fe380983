"""Application intake (申請受付, F2.1, F2.2): one row per application a clerk takes, at the
counter or off-site (出張申請), and the off-site sessions that group them.

An intake and its card share the 申請書ID, normalised the same way (23 digits), so the
link holds whichever comes first: an intake taken before J-LIS delivers the card, or a
card registered before its intake was typed in. ``Intake.card`` is that join (read only).
"""
from __future__ import annotations

from datetime import date, datetime

from flask_appbuilder import Model
from flask_babel import lazy_gettext as _l
from sqlalchemy import (Boolean, CheckConstraint, Date, ForeignKey, Integer, String, Text,
                        text)
from sqlalchemy.orm import Mapped, foreign, mapped_column, relationship

from app.models.card import VISIT_AT_APPLICATION, VISIT_AT_HANDOVER, Card
from app.models.reservation import Reservation
from app.models.types import AwareDateTime
from app.models.venue import Venue

# --- how the application was taken (受付方法 of the intake) ------------------------------
METHOD_COUNTER = "counter"  # 窓口申請
METHOD_OUTREACH = "outreach"  # 出張申請 (belongs to an OutreachSession)
METHOD_SUPPORT = "support"  # 申請時サポート
METHOD_MAIL_HELP = "mail_help"  # 郵送申請の補助
METHOD_ONLINE_HELP = "online_help"  # オンライン申請の補助
METHOD_LABELS = {
    METHOD_COUNTER: _l("Counter application"),
    METHOD_OUTREACH: _l("Outreach application"),
    METHOD_SUPPORT: _l("Application support"),
    METHOD_MAIL_HELP: _l("Help with a postal application"),
    METHOD_ONLINE_HELP: _l("Help with an online application"),
}
METHODS = tuple(METHOD_LABELS)

# --- what is applied for ---------------------------------------------------------------
KIND_NEW = "new"  # 新規
KIND_RENEWAL = "renewal"  # 有効期限による更新
KIND_REISSUE = "reissue"  # 再交付 (with a reason)
KIND_CERT_RENEWAL = "cert_renewal"  # 電子証明書の更新
KIND_EXPRESS = "express"  # 特急発行
KIND_LABELS = {
    KIND_NEW: _l("New card"),
    KIND_RENEWAL: _l("Renewal on expiry"),
    KIND_REISSUE: _l("Reissue"),
    KIND_CERT_RENEWAL: _l("Certificate renewal"),
    KIND_EXPRESS: _l("Express issue"),
}
KINDS = tuple(KIND_LABELS)

REASON_LOST = "lost"  # 紛失
REASON_STOLEN = "stolen"  # 盗難
REASON_DAMAGED = "damaged"  # 破損
REASON_DISASTER = "disaster"  # 災害
REASON_MALFUNCTION = "malfunction"  # 機能不良
REASON_NO_SPACE = "no_space"  # 追記欄の余白なし
REASON_OTHER = "other"  # その他
REISSUE_REASON_LABELS = {
    REASON_LOST: _l("Lost"),
    REASON_STOLEN: _l("Stolen"),
    REASON_DAMAGED: _l("Damaged"),
    REASON_DISASTER: _l("Disaster"),
    REASON_MALFUNCTION: _l("Malfunction"),
    REASON_NO_SPACE: _l("No space left for additions"),
    REASON_OTHER: _l("Other"),
}
REISSUE_REASONS = tuple(REISSUE_REASON_LABELS)

# --- the photo on the application ----------------------------------------------------
PHOTO_TAKEN = "taken"  # taken at the counter
PHOTO_BROUGHT = "brought"  # brought by the applicant
PHOTO_LABELS = {PHOTO_TAKEN: _l("Taken at the counter"), PHOTO_BROUGHT: _l("Brought")}
PHOTOS = tuple(PHOTO_LABELS)

# --- the intake's own state (受付済 → 送付済 → 交付済, or 取下げ) ----------------------
ACCEPTED = "accepted"  # 受付済
SENT = "sent"  # 送付済: sent on to J-LIS (or its card has arrived)
HANDED_OVER = "handed_over"  # 交付済: its card was handed over (or mailed and received)
WITHDRAWN = "withdrawn"  # 取下げ (with a reason)
STATE_LABELS = {ACCEPTED: _l("Accepted"), SENT: _l("Sent"),
                HANDED_OVER: _l("Handed over"), WITHDRAWN: _l("Withdrawn")}
STATES = tuple(STATE_LABELS)

# --- the fee's progress on the intake (app/services/fees.py moves it, compare-and-set) --
FEE_NONE = "none"  # nothing charged yet (or nothing to charge)
FEE_CHARGED = "charged"  # 調定済: charged, not yet paid
FEE_PAID = "paid"  # 収納済
FEE_WAIVED = "waived"  # 免除
FEE_REFUNDED = "refunded"  # 還付済 (the payment was refunded)
FEE_STATE_LABELS = {FEE_NONE: _l("Not charged yet"), FEE_CHARGED: _l("Charged"), FEE_PAID: _l("Paid"),
                    FEE_WAIVED: _l("Waived"), FEE_REFUNDED: _l("Refunded")}
FEE_STATES = tuple(FEE_STATE_LABELS)

# --- the sites of 出張申請 -----------------------------------------------------------------
SITE_COMMUNITY_CENTER = "community_center"  # 公民館
SITE_COMPANY = "company"  # 企業
SITE_SCHOOL = "school"  # 学校
SITE_WELFARE = "welfare"  # 福祉施設
SITE_HOME_VISIT = "home_visit"  # 自宅訪問
SITE_OTHER = "other"  # その他
SITE_LABELS = {SITE_COMMUNITY_CENTER: _l("Community centre"), SITE_COMPANY: _l("Company"),
               SITE_SCHOOL: _l("School"), SITE_WELFARE: _l("Welfare facility"),
               SITE_HOME_VISIT: _l("Home visit"), SITE_OTHER: _l("Other")}
SITES = tuple(SITE_LABELS)


def _in(column: str, values) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


def label(labels: dict, value: str | None) -> str:
    """A stored code as people read it (unknown codes as they are)."""
    return str(labels.get(value, value or ""))


class OutreachSession(Model):
    """One 出張申請 outing: where and when, and who went. Its intakes are its list."""

    __tablename__ = "outreach_session"
    __table_args__ = (CheckConstraint(_in("site_kind", SITES), name="ck_outreach_site_kind"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    day: Mapped[date] = mapped_column(Date, nullable=False, index=True)
    site_kind: Mapped[str] = mapped_column(String(20), nullable=False)
    site_name: Mapped[str] = mapped_column(String(100), nullable=False)
    address: Mapped[str | None] = mapped_column(String(300), nullable=True)
    staff: Mapped[str | None] = mapped_column(String(300), nullable=True)  # names, as typed
    note: Mapped[str | None] = mapped_column(Text, nullable=True)
    intakes: Mapped[list["Intake"]] = relationship(back_populates="outreach_session",
                                                   order_by="Intake.taken_at")

    def __repr__(self) -> str:
        return f"{self.day:%Y/%m/%d} {self.site_name}"


class Intake(Model):
    """One application taken by the city (申請受付)."""

    __tablename__ = "intake"
    __table_args__ = (
        CheckConstraint(_in("method", METHODS), name="ck_intake_method"),
        CheckConstraint(_in("kind", KINDS), name="ck_intake_kind"),
        CheckConstraint(_in("state", STATES), name="ck_intake_state"),
        CheckConstraint(_in("fee_state", FEE_STATES), name="ck_intake_fee_state"),
        CheckConstraint(_in("visit_mode", (VISIT_AT_APPLICATION, VISIT_AT_HANDOVER)),
                        name="ck_intake_visit_mode"),
        CheckConstraint(f"photo IS NULL OR {_in('photo', PHOTOS)}", name="ck_intake_photo"),
        # 再交付 always names its reason; other kinds have none.
        CheckConstraint(f"(kind = 'reissue' AND {_in('reissue_reason', REISSUE_REASONS)})"
                        " OR (kind <> 'reissue' AND reissue_reason IS NULL)",
                        name="ck_intake_reissue_reason"),
        # 出張申請 belongs to its session.
        CheckConstraint("method <> 'outreach' OR outreach_session_id IS NOT NULL",
                        name="ck_intake_outreach_session"),
        CheckConstraint("state <> 'withdrawn' OR withdraw_reason IS NOT NULL",
                        name="ck_intake_withdraw_reason"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    application_id: Mapped[str] = mapped_column(String(23), nullable=False, unique=True)
    method: Mapped[str] = mapped_column(String(20), nullable=False, index=True)
    kind: Mapped[str] = mapped_column(String(20), nullable=False, index=True)
    reissue_reason: Mapped[str | None] = mapped_column(String(20), nullable=True)
    # What the fee rules of DOMAIN.md "Fees" read besides kind and reason:
    old_card_expires_on: Mapped[date | None] = mapped_column(Date, nullable=True)
    holder_not_at_fault: Mapped[bool] = mapped_column(  # a theft through no fault of theirs
        Boolean, nullable=False, default=False, server_default=text("false"))
    official_error: Mapped[bool] = mapped_column(  # caused by the city or J-LIS
        Boolean, nullable=False, default=False, server_default=text("false"))
    visit_mode: Mapped[str] = mapped_column(String(1), nullable=False,
                                            default=VISIT_AT_HANDOVER)
    # The person
    name: Mapped[str] = mapped_column(String(100), nullable=False, index=True)
    name_kana: Mapped[str] = mapped_column(String(200), nullable=False, index=True)
    birth_date: Mapped[date] = mapped_column(Date, nullable=False)
    postal_code: Mapped[str | None] = mapped_column(String(8), nullable=True)
    address: Mapped[str | None] = mapped_column(String(300), nullable=True)
    phone: Mapped[str | None] = mapped_column(String(20), nullable=True)
    wants_sign_cert: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)
    wants_auth_cert: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)
    identity_check: Mapped[str | None] = mapped_column(Text, nullable=True)  # JSON checklist
    photo: Mapped[str | None] = mapped_column(String(10), nullable=True)
    # Who took it, where and when
    clerk: Mapped[str] = mapped_column(String(100), nullable=False)
    venue_id: Mapped[int | None] = mapped_column(ForeignKey("venue.id"), nullable=True,
                                                 index=True)
    venue: Mapped[Venue | None] = relationship(Venue)
    taken_at: Mapped[datetime] = mapped_column(AwareDateTime(), nullable=False, index=True)
    outreach_session_id: Mapped[int | None] = mapped_column(
        ForeignKey("outreach_session.id"), nullable=True, index=True)
    outreach_session: Mapped[OutreachSession | None] = relationship(back_populates="intakes")
    reservation_id: Mapped[int | None] = mapped_column(ForeignKey("reservation.id"),
                                                       nullable=True, index=True)
    reservation: Mapped[Reservation | None] = relationship(Reservation)
    notes: Mapped[str | None] = mapped_column(Text, nullable=True)
    # Its state
    state: Mapped[str] = mapped_column(String(20), nullable=False, default=ACCEPTED, index=True)
    sent_at: Mapped[datetime | None] = mapped_column(AwareDateTime(), nullable=True)
    handed_over_at: Mapped[datetime | None] = mapped_column(AwareDateTime(), nullable=True)
    withdrawn_at: Mapped[datetime | None] = mapped_column(AwareDateTime(), nullable=True)
    withdraw_reason: Mapped[str | None] = mapped_column(String(200), nullable=True)
    fee_state: Mapped[str] = mapped_column(String(10), nullable=False, default=FEE_NONE,
                                           server_default=FEE_NONE, index=True)
    # The card with the same 申請書ID, whenever it arrives (read only: no foreign key, as
    # either may come first).
    card: Mapped[Card | None] = relationship(
        Card, primaryjoin=lambda: foreign(Intake.application_id) == Card.application_id,
        viewonly=True, uselist=False)

    def __repr__(self) -> str:
        return f"{self.application_id} {self.name}"
