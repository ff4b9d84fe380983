"""Issuance fees (手数料, F2.3, DOMAIN.md "Fees"): the fee of an application, the fee table
supervisors keep, and the money taken per intake.

- :func:`quote` is the one place that knows what an application costs, including every
  free case of DOMAIN.md. :func:`quote_for` applies it to an intake (its application day).
- An intake's money moves ``none → charged → paid → refunded`` (or ``none/charged →
  waived``), each step a compare-and-set on ``intake.fee_state`` and a new
  :class:`~app.models.fee.FeeEntry`; entries are never edited or deleted (a refund is a new
  negative entry that names the payment).
- Receipt numbers are gapless per 年度: the payment takes the next number of its year with
  ``UPDATE receipt_counter SET last = last + 1 ... RETURNING last`` in its own transaction,
  so the row lock serialises clerks and a rollback gives the number back.
- 日計表: a clerk's day at a venue closes with the counted cash; a difference needs its
  explanation; a closed day takes no new entries. :func:`close_day` and the entries lock the
  same counter row, so no payment slips in between the count and the close.

Roles (docs/roles.md): 窓口職員 and 管理者 charge, take payments and waive; only 管理者
refund and edit the fee table. The actor is any object with ``username``, ``roles`` and
``system`` (the screens pass ``cards.actor_of(current_user)``, tests ``cards.SYSTEM``).
"""
from __future__ import annotations

import io
import re
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

from dateutil.relativedelta import relativedelta
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import and_, exists, func, select, update

from app.clock import JST
from app.models.fee import (CHARGED_KINDS, ENTRY_CHARGE, ENTRY_LABELS, ENTRY_PAYMENT,
                            ENTRY_REFUND, ENTRY_WAIVER, METHOD_CASH, METHOD_CASHLESS,
                            PAYMENT_METHOD_LABELS, PAYMENT_METHODS, DailyClose, FeeEntry,
                            FeeSchedule, ReceiptCounter)
from app.models.intake import (WITHDRAWN, FEE_CHARGED, FEE_NONE, FEE_PAID, FEE_REFUNDED,
                               FEE_STATE_LABELS, FEE_WAIVED, KIND_CERT_RENEWAL,
                               KIND_LABELS, KIND_NEW, KIND_RENEWAL, KIND_REISSUE,
                               REASON_DISASTER, REASON_NO_SPACE, REASON_STOLEN,
                               REISSUE_REASON_LABELS, Intake, label)
from app.models.venue import Venue
from app.services import actors, audit, export_policy, fields, japanese, spreadsheet, unit
from app.services.errors import DomainError, InputError, NotPermittedError

STAFF = ("ROLE_MANAGER", "ROLE_CLERK")
SUPERVISORS = ("ROLE_MANAGER",)
REASON_MAX = 200  # fee_entry.reason, fee_entry.override_reason
EXPLANATION_MAX = 2000
YEN_MAX = 10_000_000  # no fee, payment or count at one counter comes near this
EXPIRY_FREE_MONTHS = 3  # DOMAIN.md: free when the card expires within 3 months

# --- why an application costs nothing (DOMAIN.md "Fees") -----------------------------------
FREE_NEW = "new"
FREE_RENEWAL = "renewal"
FREE_CERT_RENEWAL = "cert_renewal"
FREE_EXPIRING = "expiring"
FREE_DISASTER = "disaster"
FREE_THEFT = "theft"
FREE_NO_SPACE = "no_space"
FREE_OFFICIAL_ERROR = "official_error"
FREE_LABELS = {
    FREE_NEW: _l("A first card is free."),
    FREE_RENEWAL: _l("A renewal on expiry is free."),
    FREE_CERT_RENEWAL: _l("A certificate renewal is free."),
    FREE_EXPIRING: _l("Free: the old card expires within 3 months."),
    FREE_DISASTER: _l("Free: the card was lost in a disaster."),
    FREE_THEFT: _l("Free: the card was stolen through no fault of the holder."),
    FREE_NO_SPACE: _l("Free: the card has no space left for additions."),
    FREE_OFFICIAL_ERROR: _l("Free: an error of the city or J-LIS caused it."),
}
FREE_KINDS = {KIND_NEW: FREE_NEW, KIND_RENEWAL: FREE_RENEWAL,
              KIND_CERT_RENEWAL: FREE_CERT_RENEWAL}


class FeeFieldError(InputError):
    """A typed value is refused; ``field`` names the form field the message belongs to."""

    def __init__(self, field_name: str, message):
        self.field = field_name
        super().__init__(message)


class FeeStateError(DomainError):
    message = _l("The fee of this application has changed in the meantime. Nothing was "
                 "changed; reload the page.")


class DayClosedError(DomainError):
    message = _l("This day is already closed on the daily fee sheet. Nothing was changed; "
                 "enter a correction on a later day.")


class FeeTableLockedError(DomainError):
    message = _l("This fee has already been applied and cannot be changed or deleted. Add a "
                 "new row with a later valid-from date instead.")


# --- who ------------------------------------------------------------------------------------

def fee_state_text(fee_state: str | None, kind: str | None) -> str:
    """The fee's progress as a clerk reads it: an application of a kind that costs nothing
    (新規, 更新, 電子証明書の更新) has 手数料なし, a chargeable one not yet charged 未調定."""
    if fee_state == FEE_NONE and kind not in CHARGED_KINDS:
        return str(NO_FEE)
    return label(FEE_STATE_LABELS, fee_state)


NO_FEE = _l("No fee")


def may(actor, keys) -> bool:
    return actors.has_role(actor, keys)


def _check_roles(actor, keys) -> None:
    actors.check_roles(actor, keys, _(
        "Your role does not allow this operation. Only %(roles)s may do this.",
        roles="、".join(actors.role_names(keys))))


def may_refund(actor) -> bool:
    return may(actor, SUPERVISORS)


_name_of = actors.name_of


# --- amounts --------------------------------------------------------------------------------

def parse_yen(text, field_name: str = "amount", *, required: bool = True) -> int | None:
    """Yen typed by a person: ``1000``, ``1,000``, ``１０００円``, ``¥1,000`` → 1000 (int).
    Never a float; at least 0, at most YEN_MAX."""
    if isinstance(text, bool):
        raise FeeFieldError(field_name, _l("Enter the amount in yen as a whole number."))
    if isinstance(text, int):
        value = text
    else:
        raw = japanese.half_width(str(text if text is not None else "")).strip()
        raw = re.sub(r"[,\s]|円$|^[¥￥]", "", raw)
        if not raw:
            if required:
                raise FeeFieldError(field_name, _l("Enter the amount in yen."))
            return None
        if not re.fullmatch(r"[0-9]{1,9}", raw):
            raise FeeFieldError(field_name, _l("Enter the amount in yen as a whole number."))
        value = int(raw)
    if not 0 <= value <= YEN_MAX:
        raise FeeFieldError(field_name, _l("Enter an amount between 0 and %(max)s yen.",
                                           max=f"{YEN_MAX:,}"))
    return value


def yen(value: int | None) -> str:
    """1000 → 1,000円 (negative: -1,000円)."""
    return "" if value is None else f"{value:,}円"


def fiscal_year(day: date) -> int:
    """年度: April to March, named by the year it starts in."""
    return day.year if day.month >= 4 else day.year - 1


def receipt_number(year: int, seq: int) -> str:
    return f"{year}-{seq:06d}"


def _day_of(moment: datetime) -> date:
    return moment.astimezone(JST).date()


# --- the fee of an application --------------------------------------------------------------

@dataclass(frozen=True)
class Quote:
    """What an application costs: ``amount`` = ``card_part`` + ``cert_part`` (all 0 when a
    free rule applies, ``free_rule`` names it); ``schedule`` is the fee-table row used
    (None for kinds that are always free)."""

    amount: int
    card_part: int
    cert_part: int
    schedule: FeeSchedule | None
    free_rule: str | None = None

    @property
    def free_reason(self) -> str | None:
        return str(FREE_LABELS[self.free_rule]) if self.free_rule else None


def schedule_row(session, kind: str, on_day: date) -> FeeSchedule | None:
    """The fee-table row of ``kind`` in force on ``on_day`` (latest valid_from ≤ the day)."""
    return session.execute(
        select(FeeSchedule).where(FeeSchedule.kind == kind, FeeSchedule.valid_from <= on_day)
        .order_by(FeeSchedule.valid_from.desc()).limit(1)).scalar()


def _free_rule(kind, reason, on_day, old_card_expires_on, holder_not_at_fault,
               official_error) -> str | None:
    if kind in FREE_KINDS:
        return FREE_KINDS[kind]
    if official_error:
        return FREE_OFFICIAL_ERROR
    if kind != KIND_REISSUE:
        return None
    if (old_card_expires_on is not None
            and old_card_expires_on <= on_day + relativedelta(months=EXPIRY_FREE_MONTHS)):
        return FREE_EXPIRING
    if reason == REASON_DISASTER:
        return FREE_DISASTER
    if reason == REASON_STOLEN and holder_not_at_fault:
        return FREE_THEFT
    if reason == REASON_NO_SPACE:
        return FREE_NO_SPACE
    return None


def quote(session, *, kind: str, reason: str | None = None, wants_cert: bool = True,
          on_day: date, old_card_expires_on: date | None = None,
          holder_not_at_fault: bool = False, official_error: bool = False) -> Quote:
    """The fee of an application made on ``on_day`` (DOMAIN.md "Fees"), from the fee table.

    - 新規, 有効期限による更新, 電子証明書の更新: free.
    - 再交付: card part + certificate part (the certificate part only when a certificate is
      wanted: 800 + 200 or 800). Free when the old card expires within 3 months of the
      application day (or has already expired), when it was lost in a disaster (災害),
      stolen through no fault of the holder (盗難 with ``holder_not_at_fault``), when its
      追記欄 is full (追記欄の余白なし), or when a city/J-LIS error caused the reissue
      (``official_error``).
    - 特急発行: 1,800 + 200 (1,800 without a certificate). Our choice: it is free only when a
      city/J-LIS error caused it. The other free rules of 再交付 do not apply: express
      issue is a service the applicant chooses, and a free reissue can be applied for as
      再交付.

    A chargeable kind without a row in force on that day is refused (the fee table must be
    completed by a supervisor first), never guessed.
    """
    if kind not in KIND_LABELS:
        raise InputError(_l("Unknown kind of application."))
    rule = _free_rule(kind, reason, on_day, old_card_expires_on, holder_not_at_fault,
                      official_error)
    if kind not in CHARGED_KINDS:
        return Quote(0, 0, 0, None, rule)
    row = schedule_row(session, kind, on_day)
    if row is None:
        raise InputError(_("The fee table has no fee for %(kind)s on %(day)s. Ask a "
                           "supervisor to add one.", kind=label(KIND_LABELS, kind),
                           day=japanese.date_with_era(on_day)))
    if rule is not None:
        return Quote(0, 0, 0, row, rule)
    cert = int(row.cert_amount) if wants_cert else 0
    return Quote(int(row.card_amount) + cert, int(row.card_amount), cert, row, None)


def application_day(intake: Intake) -> date:
    return _day_of(intake.taken_at)


def quote_for(session, intake: Intake) -> Quote:
    """The fee of an intake, on its application day."""
    return quote(session, kind=intake.kind, reason=intake.reissue_reason,
                 wants_cert=bool(intake.wants_sign_cert or intake.wants_auth_cert),
                 on_day=application_day(intake),
                 old_card_expires_on=intake.old_card_expires_on,
                 holder_not_at_fault=bool(intake.holder_not_at_fault),
                 official_error=bool(intake.official_error))


# --- the fee table ---------------------------------------------------------------------------

def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=JST)


def _used_between(session, kind: str, start: date, end: date | None) -> bool:
    """An intake of ``kind`` applied for in [start, end) has a charge or waiver entry."""
    conditions = [Intake.kind == kind, Intake.taken_at >= _midnight(start)]
    if end is not None:
        conditions.append(Intake.taken_at < _midnight(end))
    return bool(session.execute(select(exists().where(
        FeeEntry.intake_id == Intake.id,
        FeeEntry.entry_type.in_((ENTRY_CHARGE, ENTRY_WAIVER)), *conditions))
        .execution_options(autoflush=False)).scalar())


def _next_valid_from(session, kind: str, after: date, except_id=None) -> date | None:
    query = select(func.min(FeeSchedule.valid_from)).where(
        FeeSchedule.kind == kind, FeeSchedule.valid_from > after)
    if except_id is not None:
        query = query.where(FeeSchedule.id != except_id)
    return session.execute(query.execution_options(autoflush=False)).scalar()


def check_row_values(session, kind, valid_from, today, except_id=None) -> None:
    """The kind and valid-from of a new row (or of row ``except_id`` being edited, which
    must not be locked itself)."""
    if except_id is not None:
        stored = session.get(FeeSchedule, except_id)
        if stored is not None and row_locked(session, stored, today):
            raise FeeTableLockedError()
    if kind not in CHARGED_KINDS:
        raise FeeFieldError("kind", _l("Only a reissue and an express issue have a fee."))
    if not isinstance(valid_from, date):
        raise FeeFieldError("valid_from", _l("Enter the date from which the fee applies."))
    query = select(FeeSchedule.id).where(FeeSchedule.kind == kind,
                                         FeeSchedule.valid_from == valid_from)
    if except_id is not None:
        query = query.where(FeeSchedule.id != except_id)
    if session.execute(query.execution_options(autoflush=False)).first():
        raise FeeFieldError("valid_from", _l("This kind already has a fee from this date."))
    # A row starting on a past day would change the fee of applications already charged.
    if valid_from <= today and _used_between(
            session, kind, valid_from, _next_valid_from(session, kind, valid_from, except_id)):
        raise FeeFieldError("valid_from", _l(
            "Fees have already been charged on or after this date under the current fee. "
            "Choose a later date (from tomorrow)."))


def check_new_row(session, *, kind, valid_from, card_amount, cert_amount, actor,
                  today: date) -> None:
    """Every check of a new fee-table row (the screen's pre_add and :func:`add_row`)."""
    _check_roles(actor, SUPERVISORS)
    parse_yen(card_amount, "card_amount")
    parse_yen(cert_amount, "cert_amount")
    check_row_values(session, kind, valid_from, today)


def _stored_row(session, row_id: int):
    return session.execute(select(FeeSchedule.kind, FeeSchedule.valid_from).where(
        FeeSchedule.id == row_id).execution_options(autoflush=False)).first()


def row_locked(session, row: FeeSchedule, today: date) -> bool:
    """True when the row's day has come and it was applied to an application."""
    stored = _stored_row(session, row.id) if row.id else None
    if stored is None:
        return False
    kind, valid_from = stored
    if valid_from > today:
        return False
    return _used_between(session, kind, valid_from,
                         _next_valid_from(session, kind, valid_from, row.id))


def check_row_change(session, row: FeeSchedule, *, actor, today: date,
                     deleting: bool = False) -> None:
    """A row whose date has passed and that was applied is never edited or deleted (add a
    later row instead); an edit must also pass the checks of a new row."""
    _check_roles(actor, SUPERVISORS)
    if row_locked(session, row, today):
        raise FeeTableLockedError()
    if not deleting:
        parse_yen(row.card_amount, "card_amount")
        parse_yen(row.cert_amount, "cert_amount")
        check_row_values(session, row.kind, row.valid_from, today, except_id=row.id)


@unit.operation
def add_row(session, *, kind: str, valid_from: date, card_amount, cert_amount,
            note: str | None = None, actor, today: date) -> FeeSchedule:
    """A new fee from ``valid_from`` on (管理者 only)."""
    check_new_row(session, kind=kind, valid_from=valid_from, card_amount=card_amount,
                  cert_amount=cert_amount, actor=actor, today=today)
    row = FeeSchedule(kind=kind, valid_from=valid_from,
                      card_amount=parse_yen(card_amount, "card_amount"),
                      cert_amount=parse_yen(cert_amount, "cert_amount"),
                      note=fields.clean_text(note, 200))
    session.add(row)
    session.flush()
    return row


@unit.operation
def change_row(session, row: FeeSchedule, *, actor, today: date, **values) -> FeeSchedule:
    for key, value in values.items():
        setattr(row, key, value)
    check_row_change(session, row, actor=actor, today=today)
    session.flush()
    return row


@unit.operation
def delete_row(session, row: FeeSchedule, *, actor, today: date) -> None:
    check_row_change(session, row, actor=actor, today=today, deleting=True)
    session.delete(row)
    session.flush()


def schedule(session) -> list[FeeSchedule]:
    return list(session.execute(select(FeeSchedule).order_by(
        FeeSchedule.kind, FeeSchedule.valid_from)).scalars())


# --- the money of an intake ------------------------------------------------------------------

def entries_of(session, intake_id: int) -> list[FeeEntry]:
    return list(session.execute(select(FeeEntry).where(FeeEntry.intake_id == intake_id)
                                .order_by(FeeEntry.id)).scalars())


def _last_entry(session, intake_id: int, entry_type: str) -> FeeEntry | None:
    return session.execute(select(FeeEntry).where(
        FeeEntry.intake_id == intake_id, FeeEntry.entry_type == entry_type)
        .order_by(FeeEntry.id.desc()).limit(1)).scalar()


def get_entry(session, entry_id) -> FeeEntry | None:
    return session.get(FeeEntry, entry_id) if entry_id else None


def get_intake(session, intake_id) -> Intake | None:
    return session.get(Intake, intake_id) if intake_id else None


def venues(session) -> list[Venue]:
    return list(session.execute(select(Venue).order_by(Venue.id)).scalars())


def _venue(session, venue_id) -> Venue:
    venue = session.get(Venue, venue_id) if venue_id else None
    if venue is None:
        raise FeeFieldError("venue_id", _l("Choose the venue where the money is taken."))
    return venue


def _move(session, intake: Intake, expected, to_state: str, *,
          open_only: bool = False) -> None:
    """Compare-and-set of the intake's fee state (one expected state or several): exactly
    one row, or nothing changes. ``open_only``: not on a withdrawn application (money is
    neither charged nor taken for one; a refund or waiver still is)."""
    expected = (expected,) if isinstance(expected, str) else tuple(expected)
    conditions = [Intake.id == intake.id, Intake.fee_state.in_(expected)]
    if open_only:
        conditions.append(Intake.state != WITHDRAWN)
    before = _fee_state_now(session, intake)
    done = session.execute(update(Intake).where(*conditions)
                           .values(fee_state=to_state).execution_options(
                               synchronize_session=False))
    if done.rowcount != 1:
        withdrawn = session.execute(select(Intake.state).where(Intake.id == intake.id)
                                    .execution_options(autoflush=False)).scalar() == WITHDRAWN
        if open_only and withdrawn:
            raise FeeStateError(_("This application was withdrawn: no fee is charged or taken "
                                  "for it. Nothing was changed."))
        raise FeeStateError(_("The fee of this application is %(state)s, so this cannot be "
                              "done now. Nothing was changed; reload the page.",
                              state=label(FEE_STATE_LABELS, _fee_state_now(session, intake))))
    audit.record_in_transaction(session, audit.ACTION_UPDATE, "intake", intake.id,
                                {"fee_state": [before, to_state]})
    session.expire(intake, ["fee_state"])


# A charge starts from nothing charged, or again after a waiver or a refund (a correction
# is a new entry: the earlier ones stay).
CHARGEABLE = (FEE_NONE, FEE_WAIVED, FEE_REFUNDED)


def _fee_state_now(session, intake: Intake) -> str | None:
    return session.execute(select(Intake.fee_state).where(Intake.id == intake.id)
                           .execution_options(autoflush=False)).scalar()


def _lock_year(session, day: date) -> int:
    """Take the receipt counter row of the day's 年度 (made when missing, race-safe): its
    row lock serialises payments, refunds and the closing of days. Returns the year."""
    year = fiscal_year(day)
    table = ReceiptCounter.__table__
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as dialect_insert
    else:
        from sqlalchemy.dialects.sqlite import insert as dialect_insert
    session.execute(dialect_insert(table).values(fiscal_year=year, last=0)
                    .on_conflict_do_nothing(index_elements=["fiscal_year"]))
    session.execute(update(table).where(table.c.fiscal_year == year)
                    .values(last=table.c.last))
    return year


def _next_receipt(session, year: int) -> int:
    table = ReceiptCounter.__table__
    return session.execute(update(table).where(table.c.fiscal_year == year)
                           .values(last=table.c.last + 1).returning(table.c.last)).scalar_one()


def day_closed(session, venue_id: int, clerk: str, day: date) -> DailyClose | None:
    return session.execute(select(DailyClose).where(
        DailyClose.venue_id == venue_id, DailyClose.clerk == clerk, DailyClose.day == day)
        .execution_options(autoflush=False)).scalar()


def _open_day(session, venue_id: int, clerk: str, day: date) -> int:
    """Lock the year's counter, then refuse an entry on a closed day. Returns the year."""
    year = _lock_year(session, day)
    if day_closed(session, venue_id, clerk, day) is not None:
        raise DayClosedError()
    return year


def _entry(intake, entry_type, amount, *, venue, clerk, now, **values) -> FeeEntry:
    return FeeEntry(intake_id=intake.id, entry_type=entry_type, amount=int(amount),
                    venue_id=venue.id, clerk=clerk, business_day=_day_of(now), at=now,
                    **values)


@unit.operation
def charge(session, intake: Intake, *, actor, venue_id, now: datetime, amount=None,
           override_reason=None, seen_amount=None) -> FeeEntry:
    """調定: the fee of the intake (:func:`quote_for`) becomes due. Another amount only with
    a written reason (the table's amount is kept beside it). When the fee is 0 the intake
    is waived at once, the reason being the free rule (or the override's reason)."""
    _check_roles(actor, STAFF)
    venue = _venue(session, venue_id)
    clerk = _name_of(actor)
    due = quote_for(session, intake)
    seen = parse_yen(seen_amount, "amount", required=False)
    if seen is not None and seen != due.amount:  # the application changed since the page
        raise FeeStateError(_("The fee of this application is now %(amount)s, not the "
                              "%(seen)s shown. Nothing was charged; check the application "
                              "and charge again.", amount=yen(due.amount), seen=yen(seen)))
    wanted = parse_yen(amount, "amount", required=False)
    reason = fields.clean_text(override_reason, REASON_MAX)
    if wanted is not None and wanted != due.amount:
        if not reason:
            raise FeeFieldError("override_reason", _l(
                "Write why the amount differs from the fee table (%(amount)s).",
                amount=yen(due.amount)))
    else:
        wanted, reason = due.amount, None
    _open_day(session, venue.id, clerk, _day_of(now))
    if wanted == 0:
        _move(session, intake, CHARGEABLE, FEE_WAIVED, open_only=True)
        entry = _entry(intake, ENTRY_WAIVER, 0, venue=venue, clerk=clerk, now=now,
                       standard_amount=due.amount, override_reason=reason,
                       reason=reason or due.free_reason)
    else:
        _move(session, intake, CHARGEABLE, FEE_CHARGED, open_only=True)
        entry = _entry(intake, ENTRY_CHARGE, wanted, venue=venue, clerk=clerk, now=now,
                       standard_amount=due.amount, override_reason=reason)
    session.add(entry)
    session.flush()
    return entry


@unit.operation
def pay(session, intake: Intake, *, actor, venue_id, now: datetime, tendered=None,
        method: str = METHOD_CASH) -> FeeEntry:
    """収納: the charged amount is received (cash: ``tendered`` ≥ amount, the change is
    computed; cashless: exactly the amount), with the next receipt number of the 年度."""
    _check_roles(actor, STAFF)
    venue = _venue(session, venue_id)
    clerk = _name_of(actor)
    if method not in PAYMENT_METHODS:
        raise FeeFieldError("method", _l("Choose how the fee is paid."))
    charged = _last_entry(session, intake.id, ENTRY_CHARGE)
    if charged is None or intake.fee_state != FEE_CHARGED:
        raise FeeStateError(_("Charge the fee before taking the payment."))
    amount = int(charged.amount)
    if method == METHOD_CASHLESS:
        given = amount
    else:
        given = parse_yen(tendered, "tendered")
        if given < amount:
            raise FeeFieldError("tendered", _l(
                "The money received (%(given)s) is less than the fee (%(amount)s).",
                given=yen(given), amount=yen(amount)))
    year = _open_day(session, venue.id, clerk, _day_of(now))
    _move(session, intake, FEE_CHARGED, FEE_PAID, open_only=True)
    seq = _next_receipt(session, year)
    entry = _entry(intake, ENTRY_PAYMENT, amount, venue=venue, clerk=clerk, now=now,
                   method=method, tendered=given, change_due=given - amount,
                   fiscal_year=year, receipt_seq=seq, receipt_number=receipt_number(year, seq))
    session.add(entry)
    session.flush()
    return entry


@unit.operation
def waive(session, intake: Intake, *, actor, venue_id, now: datetime, reason) -> FeeEntry:
    """免除 of a charged fee, with its reason."""
    _check_roles(actor, STAFF)
    venue = _venue(session, venue_id)
    clerk = _name_of(actor)
    why = fields.clean_text(reason, REASON_MAX)
    if not why:
        raise FeeFieldError("reason", _l("Write the reason for the waiver."))
    _open_day(session, venue.id, clerk, _day_of(now))
    _move(session, intake, FEE_CHARGED, FEE_WAIVED)
    charged = _last_entry(session, intake.id, ENTRY_CHARGE)
    entry = _entry(intake, ENTRY_WAIVER, 0, venue=venue, clerk=clerk, now=now, reason=why,
                   standard_amount=charged.amount if charged else None)
    session.add(entry)
    session.flush()
    return entry


@unit.operation
def refund(session, payment: FeeEntry, *, actor, venue_id, now: datetime, reason) -> FeeEntry:
    """還付 (管理者 only): a new negative entry naming the payment, same method; the
    payment itself is never changed."""
    _check_roles(actor, SUPERVISORS)
    if payment is None or payment.entry_type != ENTRY_PAYMENT:
        raise FeeStateError(_("Only a payment can be refunded."))
    venue = _venue(session, venue_id)
    clerk = _name_of(actor)
    why = fields.clean_text(reason, REASON_MAX)
    if not why:
        raise FeeFieldError("refund_reason", _l("Write the reason for the refund."))
    _open_day(session, venue.id, clerk, _day_of(now))
    _move(session, payment.intake, FEE_PAID, FEE_REFUNDED)
    entry = _entry(payment.intake, ENTRY_REFUND, -int(payment.amount), venue=venue,
                   clerk=clerk, now=now, method=payment.method, reason=why,
                   refund_of_id=payment.id)
    session.add(entry)
    session.flush()
    return entry


@unit.operation
def record_receipt_print(session, payment: FeeEntry, *, actor, paper: str) -> int:
    """Count a print of the receipt (領収書) and audit it: 1 is the original, any later
    number a reprint (再発行). Called by the POST that renders the receipt."""
    _check_roles(actor, STAFF)
    if payment is None or payment.entry_type != ENTRY_PAYMENT:
        raise FeeStateError(_("Only a payment has a receipt."))
    count = session.execute(update(FeeEntry).where(FeeEntry.id == payment.id)
                            .values(printed_count=FeeEntry.printed_count + 1)
                            .returning(FeeEntry.printed_count)
                            .execution_options(synchronize_session=False)).scalar_one()
    audit.record_in_transaction(session, audit.ACTION_PRINT, "fee_entry", payment.id,
                                {"what": "receipt", "receipt_number": payment.receipt_number,
                                 "copy": count, "reissue": count > 1, "paper": paper})
    session.expire(payment, ["printed_count"])
    return count


# --- what the intake's panel shows ----------------------------------------------------------

@dataclass
class Panel:
    intake: Intake
    state: str
    state_label: str
    quote: Quote | None
    quote_error: str | None
    entries: list[FeeEntry]
    charge: FeeEntry | None
    payment: FeeEntry | None
    venues: list[Venue]

    @property
    def open(self) -> bool:
        """Money is charged and taken only for an application not withdrawn."""
        return self.intake.state != WITHDRAWN

    @property
    def can_charge(self) -> bool:
        return self.state in CHARGEABLE and self.quote is not None and self.open

    @property
    def can_pay(self) -> bool:
        return self.state == FEE_CHARGED and self.open

    @property
    def can_waive(self) -> bool:
        return self.state == FEE_CHARGED

    @property
    def can_refund(self) -> bool:
        return self.state == FEE_PAID and self.payment is not None


def panel(session, intake: Intake) -> Panel:
    try:
        due, problem = quote_for(session, intake), None
    except DomainError as error:
        due, problem = None, str(error.message)
    entries = entries_of(session, intake.id)
    last = {e.entry_type: e for e in entries}
    return Panel(intake=intake, state=intake.fee_state,
                 state_label=fee_state_text(intake.fee_state, intake.kind), quote=due,
                 quote_error=problem, entries=entries, charge=last.get(ENTRY_CHARGE),
                 payment=last.get(ENTRY_PAYMENT), venues=venues(session))


def kind_text(intake: Intake) -> str:
    text = label(KIND_LABELS, intake.kind)
    if intake.reissue_reason:
        text += f"（{label(REISSUE_REASON_LABELS, intake.reissue_reason)}）"
    return text


@dataclass
class Receipt:
    payment: FeeEntry
    intake: Intake
    copy: int
    breakdown: Quote | None  # None when the amount was changed by hand
    refund: FeeEntry | None = None  # the payment was refunded (還付): said on a reprint

    @property
    def reissue(self) -> bool:
        return self.copy > 1


def receipt(session, payment: FeeEntry, copy: int) -> Receipt:
    intake = payment.intake
    charged = _last_entry(session, intake.id, ENTRY_CHARGE)
    breakdown = None
    if charged is not None and charged.override_reason is None:
        try:
            breakdown = quote_for(session, intake)
        except DomainError:
            breakdown = None
        if breakdown is not None and breakdown.amount != payment.amount:
            breakdown = None
    refund = session.execute(select(FeeEntry).where(FeeEntry.refund_of_id == payment.id)
                             .execution_options(autoflush=False)).scalars().first()
    return Receipt(payment, intake, copy, breakdown, refund)


# --- 日計表 and 月計表 ---------------------------------------------------------------------

@dataclass
class ClerkDay:
    clerk: str
    entries: list = field(default_factory=list)  # payments and refunds, in time order
    cash_in: int = 0
    cashless_in: int = 0
    cash_out: int = 0  # refunds, as positive yen
    cashless_out: int = 0
    close: DailyClose | None = None

    @property
    def expected_cash(self) -> int:
        return self.cash_in - self.cash_out

    @property
    def cashless(self) -> int:
        return self.cashless_in - self.cashless_out

    @property
    def total(self) -> int:
        return self.expected_cash + self.cashless


@dataclass
class DailySheet:
    venue: Venue
    day: date
    clerks: list[ClerkDay]

    @property
    def cash(self) -> int:
        return sum(c.expected_cash for c in self.clerks)

    @property
    def cashless(self) -> int:
        return sum(c.cashless for c in self.clerks)

    @property
    def total(self) -> int:
        return self.cash + self.cashless


def _money_entries(session, venue_id: int, start: date, end: date):
    return session.execute(
        select(FeeEntry, Intake.kind, Intake.application_id)
        .join(Intake, Intake.id == FeeEntry.intake_id)
        .where(FeeEntry.venue_id == venue_id,
               FeeEntry.entry_type.in_((ENTRY_PAYMENT, ENTRY_REFUND)),
               FeeEntry.business_day >= start, FeeEntry.business_day < end)
        .order_by(FeeEntry.business_day, FeeEntry.at, FeeEntry.id)).all()


def get_venue(session, venue_id) -> Venue | None:
    return session.get(Venue, venue_id) if venue_id else None


def daily_sheet(session, venue: Venue, day: date, include_clerk: str | None = None) -> DailySheet:
    """The 日計表 of a venue and day, one block per clerk: payments minus refunds, cash and
    cashless apart, and the close with the counted cash. No resident's name."""
    clerks: dict[str, ClerkDay] = {}

    def of(name):
        return clerks.setdefault(name, ClerkDay(name))

    for entry, kind, application_id in _money_entries(session, venue.id, day,
                                                      day + timedelta(days=1)):
        block = of(entry.clerk)
        block.entries.append((entry, kind, application_id))
        cash = entry.method == METHOD_CASH
        if entry.entry_type == ENTRY_PAYMENT:
            if cash:
                block.cash_in += entry.amount
            else:
                block.cashless_in += entry.amount
        elif cash:
            block.cash_out += -entry.amount
        else:
            block.cashless_out += -entry.amount
    for close in session.execute(select(DailyClose).where(
            DailyClose.venue_id == venue.id, DailyClose.day == day)).scalars():
        of(close.clerk).close = close
    if include_clerk:
        of(include_clerk)
    return DailySheet(venue, day, [clerks[k] for k in sorted(clerks)])


@unit.operation
def close_day(session, *, venue_id, clerk: str, day: date, counted_cash, explanation,
              actor, now: datetime) -> DailyClose:
    """Close a clerk's day at a venue with the cash counted. A difference from payments
    minus refunds in cash must be explained. A 窓口職員 closes their own day; a 管理者 any.
    Locks the year's counter row first, so no payment of that day slips in meanwhile."""
    _check_roles(actor, STAFF)
    if not may(actor, SUPERVISORS) and clerk != _name_of(actor):
        raise NotPermittedError(_("Only a supervisor may close another clerk's day."))
    venue = _venue(session, venue_id)
    if day > _day_of(now):
        raise DayClosedError(_("A day can be closed on that day or later, not ahead of it."))
    counted = parse_yen(counted_cash, "counted_cash")
    why = fields.clean_text(explanation, EXPLANATION_MAX, multiline=True)
    _lock_year(session, day)
    if day_closed(session, venue.id, clerk, day) is not None:
        raise DayClosedError(_("This day is already closed."))
    block = next((c for c in daily_sheet(session, venue, day).clerks if c.clerk == clerk),
                 ClerkDay(clerk))
    difference = counted - block.expected_cash
    if difference != 0 and not why:
        raise FeeFieldError("explanation", _l(
            "The counted cash differs by %(diff)s from the receipts minus refunds "
            "(%(expected)s). Explain the difference before closing the day.",
            diff=yen(difference), expected=yen(block.expected_cash)))
    close = DailyClose(venue_id=venue.id, clerk=clerk, day=day, counted_cash=counted,
                       expected_cash=block.expected_cash, difference=difference,
                       explanation=why, closed_at=now, closed_by=_name_of(actor))
    session.add(close)
    session.flush()
    return close


@dataclass
class MonthRow:
    day: date
    payments: int = 0
    refunds: int = 0
    cash: int = 0
    cashless: int = 0

    @property
    def total(self) -> int:
        return self.cash + self.cashless


@dataclass
class MonthlySheet:
    venue: Venue
    month: date  # the first day
    rows: list[MonthRow]
    by_kind: dict  # kind -> [count, net yen]
    by_method: dict  # method -> net yen

    @property
    def total(self) -> int:
        return sum(r.total for r in self.rows)

    @property
    def payments(self) -> int:
        return sum(r.payments for r in self.rows)

    @property
    def refunds(self) -> int:
        return sum(r.refunds for r in self.rows)


def monthly_sheet(session, venue: Venue, month: date) -> MonthlySheet:
    """The 月計表 of a venue: one row per day with money, totals by kind and by method."""
    first = month.replace(day=1)
    end = first + relativedelta(months=1)
    rows: dict[date, MonthRow] = {}
    by_kind: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    by_method = {m: 0 for m in PAYMENT_METHODS}
    for entry, kind, _application_id in _money_entries(session, venue.id, first, end):
        row = rows.setdefault(entry.business_day, MonthRow(entry.business_day))
        if entry.entry_type == ENTRY_PAYMENT:
            row.payments += 1
            by_kind[kind][0] += 1
        else:
            row.refunds += 1
        if entry.method == METHOD_CASH:
            row.cash += entry.amount
        else:
            row.cashless += entry.amount
        by_kind[kind][1] += entry.amount
        by_method[entry.method] += entry.amount
    return MonthlySheet(venue, first, [rows[d] for d in sorted(rows)], dict(by_kind), by_method)


def _workbook(title: str):
    import xlsxwriter

    buffer = io.BytesIO()
    book = xlsxwriter.Workbook(buffer, {"in_memory": True})
    sheet = book.add_worksheet(title[:31])
    bold = book.add_format({"bold": True})
    money = book.add_format({"num_format": "#,##0"})
    day_format = book.add_format({"num_format": "yyyy/mm/dd"})
    time_format = book.add_format({"num_format": "yyyy/mm/dd hh:mm"})
    return buffer, book, sheet, bold, money, day_format, time_format


def record_sheet_export(session, export_key: str, detail: dict, *,
                        encrypted: bool) -> None:
    """The download of a 日計表 (``fees_daily``) or 月計表 (``fees_monthly``) in the audit
    trail, with whether it left as an encrypted ZIP; a plain 日計表 is refused while the
    office requires encryption of personal data (its rows carry 申請書ID)."""
    with unit.transaction(session):
        export_policy.require(session, export_key, encrypted)
        audit.record_in_transaction(session, audit.ACTION_EXPORT, "fee_entry", None,
                                    {**detail, "encrypted": encrypted})


def daily_xlsx(sheet: DailySheet, name_of=str) -> bytes:
    """The 日計表 as XLSX: Japanese headers, yen as numbers, receipt numbers and IDs as text;
    each clerk by ``name_of(user ID)`` (the screens pass the staff name)."""
    buffer, book, ws, bold, money, day_format, time_format = _workbook(str(_("Daily fees")))
    write = spreadsheet.xlsx_write_row
    write(ws, 0, [str(_("Daily fees")), sheet.venue.name, sheet.day], cell_format=bold,
          date_format=day_format)
    headers = [_("Clerk"), _("Time"), _("Receipt number"), _("Application ID"), _("Kind"),
               _("Entry"), _("Method"), _("Amount (yen)")]
    write(ws, 2, [str(h) for h in headers], cell_format=bold)
    row = 3
    for block in sheet.clerks:
        for entry, kind, application_id in block.entries:
            write(ws, row, [name_of(block.clerk), entry.at.astimezone(JST),
                            entry.receipt_number or "",
                            str(application_id), label(KIND_LABELS, kind),
                            label(ENTRY_LABELS, entry.entry_type),
                            label(PAYMENT_METHOD_LABELS, entry.method)],
                  date_format=time_format)
            ws.write_number(row, 7, int(entry.amount), money)
            row += 1
    row += 1
    write(ws, row, [str(h) for h in (_("Clerk"), _("Cash (receipts minus refunds)"),
                                     _("Cashless"), _("Total"), _("Counted cash"),
                                     _("Difference"), _("Explanation"), _("Day closed"))],
          cell_format=bold)
    for block in sheet.clerks:
        row += 1
        close = block.close
        write(ws, row, [name_of(block.clerk), block.expected_cash, block.cashless, block.total,
                        close.counted_cash if close else "", close.difference if close else "",
                        (close.explanation or "") if close else "",
                        str(_("Yes")) if close else str(_("No"))], cell_format=None)
    ws.set_column(0, 0, 14)
    ws.set_column(1, 1, 17)
    ws.set_column(2, 3, 26)
    ws.set_column(4, 7, 12)
    book.close()
    return buffer.getvalue()


def monthly_xlsx(sheet: MonthlySheet) -> bytes:
    buffer, book, ws, bold, money, day_format, _t = _workbook(str(_("Monthly fees")))
    write = spreadsheet.xlsx_write_row
    write(ws, 0, [str(_("Monthly fees")), sheet.venue.name, sheet.month.strftime("%Y-%m")],
          cell_format=bold)
    write(ws, 2, [str(h) for h in (_("Date"), _("Payments"), _("Refunds"), _("Cash"),
                                   _("Cashless"), _("Total"))], cell_format=bold)
    row = 3
    for line in sheet.rows:
        write(ws, row, [line.day, line.payments, line.refunds, line.cash, line.cashless,
                        line.total], date_format=day_format)
        row += 1
    write(ws, row, [str(_("Total")), sheet.payments, sheet.refunds,
                    sheet.by_method.get(METHOD_CASH, 0), sheet.by_method.get(METHOD_CASHLESS, 0),
                    sheet.total], cell_format=bold)
    row += 2
    write(ws, row, [str(_("Kind")), str(_("Payments")), str(_("Amount (yen)"))],
          cell_format=bold)
    for kind, (count, amount) in sorted(sheet.by_kind.items()):
        row += 1
        write(ws, row, [label(KIND_LABELS, kind), count, amount])
    ws.set_column(0, 0, 14)
    ws.set_column(1, 5, 12)
    book.close()
    return buffer.getvalue()


# --- the staff home -------------------------------------------------------------------------

@dataclass(frozen=True)
class VenueFees:
    venue_id: int
    venue_name: str
    payments: int  # count
    amount: int  # yen, payments minus refunds


def fees_today(session, day: date) -> list[VenueFees]:
    """Per venue: the day's payments and the money collected (minus refunds)."""
    rows = session.execute(
        select(Venue.id, Venue.name,
               func.count(FeeEntry.id).filter(FeeEntry.entry_type == ENTRY_PAYMENT),
               func.coalesce(func.sum(FeeEntry.amount), 0))
        .join(FeeEntry, and_(FeeEntry.venue_id == Venue.id, FeeEntry.business_day == day,
                             FeeEntry.entry_type.in_((ENTRY_PAYMENT, ENTRY_REFUND))))
        .group_by(Venue.id, Venue.name).order_by(Venue.id)).all()
    return [VenueFees(v, name, int(count), int(total)) for v, name, count, total in rows]
