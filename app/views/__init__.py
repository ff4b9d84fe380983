"""The one place that registers the staff screens and APIs (nothing registers at import)."""
from flask import current_app
from flask_babel import lazy_gettext as _l

from app.views.api import CardApi, ReservationApi
from app.views.audit import AuditLogModelView
from app.views.booking_calendar import BookingCalendarView
from app.views.desk import DeskView
from app.views.reservation import ReservationModelView
from app.views.card import CardEventModelView, CardModelView
from app.views.discard import DiscardView
from app.views.documents import DocumentView, document_panel
from app.views.extraction import ExtractionView
from app.views.fees import FeeScheduleModelView, FeeView, fee_panel
from app.views.handover import HandoverView
from app.views.intake import IntakeModelView, OutreachSessionModelView
from app.views.jobs import JobsView
from app.views.ledger_import import LedgerImportView
from app.views.maintenance import MaintenanceWindowModelView
from app.views.protected_exports import ExportPolicyView, ProtectedExportView
from app.views.notice import NoticeModelView
from app.views.scan import ScanView
from app.views.statistics import StatisticsView
from app.views.storage import StoragePlaceModelView, StorageView
from app.views.venue import (DateExceptionModelView, PurposeModelView, VenueModelView,
                             VenuePurposeModelView, WeeklyRuleModelView)

# Menu categories, in the order of the work (later issues fill the first four).
CATEGORY_RESERVATIONS = "Reservations"
CATEGORY_INTAKE = "Intake"
CATEGORY_CARDS = "Cards"
CATEGORY_STATISTICS = "Statistics"
CATEGORY_REPORTS = "Reports"  # 集計・抽出 (issue 14): statistics and extraction
CATEGORY_SYSTEM = "Security"  # FAB's own category, relabelled システム


def register_views(appbuilder) -> None:
    bookings = dict(category=CATEGORY_RESERVATIONS, category_icon="fa-calendar",
                    category_label=_l("Reservations"))
    appbuilder.add_view(DeskView, "Check-in Desk", icon="fa-check-square-o",
                        label=_l("Check-in desk"), **bookings)
    appbuilder.add_view(ReservationModelView, "Bookings", icon="fa-list",
                        label=_l("Booking list"), **bookings)
    appbuilder.add_view(BookingCalendarView, "Booking Calendar", icon="fa-calendar",
                        label=_l("Booking calendar"), **bookings)
    appbuilder.add_view(VenuePurposeModelView, "Booking Settings", icon="fa-sliders",
                        label=_l("Booking settings per venue"), **bookings)
    appbuilder.add_view(VenueModelView, "Venues", icon="fa-building", label=_l("Venues"),
                        **bookings)
    appbuilder.add_view(PurposeModelView, "Purposes", icon="fa-tags",
                        label=_l("Purposes of a visit"), **bookings)
    appbuilder.add_view(WeeklyRuleModelView, "Weekly Pattern", icon="fa-calendar-o",
                        label=_l("Weekly opening pattern"), **bookings)
    appbuilder.add_view(DateExceptionModelView, "Date Exceptions", icon="fa-calendar-times-o",
                        label=_l("Date exceptions"), **bookings)
    intakes = dict(category=CATEGORY_INTAKE, category_icon="fa-file-text-o",
                   category_label=_l("Application intake"))
    appbuilder.add_view(IntakeModelView, "Applications", icon="fa-list",
                        label=_l("Application list"), **intakes)
    appbuilder.add_view(OutreachSessionModelView, "Outreach Sessions", icon="fa-car",
                        label=_l("Outreach applications"), **intakes)
    # Fees (issue 13 §2): the same category arguments as the intake screens.
    appbuilder.add_view(FeeView, "Daily Fees", icon="fa-jpy", label=_l("Daily fees"),
                        **intakes)
    appbuilder.add_link("Monthly Fees", href="FeeView.monthly", icon="fa-calendar-o",
                        label=_l("Monthly fees"), **intakes)
    appbuilder.add_view(FeeScheduleModelView, "Fee Table", icon="fa-table",
                        label=_l("Fee table"), **intakes)
    appbuilder.app.jinja_env.globals["fee_panel"] = fee_panel
    cards = dict(category=CATEGORY_CARDS, category_icon="fa-id-card",
                 category_label=_l("Cards"))
    appbuilder.add_view(CardModelView, "Card Ledger", icon="fa-book", label=_l("Card ledger"),
                        **cards)
    appbuilder.add_view(ScanView, "Scan Station", icon="fa-qrcode",
                        label=_l("Register deliveries (QR)"), **cards)
    appbuilder.add_view(HandoverView, "Hand-over", icon="fa-handshake-o",
                        label=_l("Hand-over"), **cards)
    appbuilder.add_view(StoragePlaceModelView, "Storage Places", icon="fa-archive",
                        label=_l("Storage places"), **cards)
    appbuilder.add_view(DiscardView, "Discard", icon="fa-trash", label=_l("Discard candidates"),
                        **cards)
    appbuilder.add_view(CardEventModelView, "Card History", icon="fa-history",
                        label=_l("Card history"), **cards)
    appbuilder.add_view_no_menu(StorageView)
    # 既存データ取込 (issue 15 §1): the city's existing ledger, 管理者 only.
    appbuilder.add_view(LedgerImportView, "Ledger Import", icon="fa-upload",
                        label=_l("Import existing data"), **cards)
    # Extraction (抽出, issue 14 §2), in the 集計・抽出 category with the statistics.
    appbuilder.add_view(ExtractionView, "Extraction", icon="fa-filter", label=_l("Extraction"),
                        category=CATEGORY_REPORTS, category_icon="fa-bar-chart",
                        category_label=_l("Statistics and extraction"))
    # Scanned papers of an intake: reached from the intake's page, whose template includes
    # documents/_intake_panel.html (data from the global ``document_panel(intake)``).
    appbuilder.add_view_no_menu(DocumentView)
    current_app.jinja_env.globals["document_panel"] = document_panel
    # Statistics and extraction (issue 14): figures for the city's reports.
    reports = dict(category=CATEGORY_REPORTS, category_icon="fa-bar-chart",
                   category_label=_l("Statistics and extraction"))
    appbuilder.add_view(StatisticsView, "Statistics", icon="fa-line-chart",
                        label=_l("Statistics"), **reports)
    appbuilder.add_api(CardApi)
    appbuilder.add_api(ReservationApi)
    appbuilder.add_view(NoticeModelView, "Notices", icon="fa-bullhorn", label=_l("Notices"),
                        category=CATEGORY_SYSTEM)
    appbuilder.add_view(AuditLogModelView, "Audit Log", icon="fa-list-alt",
                        label=_l("Audit log"), category=CATEGORY_SYSTEM)
    appbuilder.add_view(MaintenanceWindowModelView, "Maintenance", icon="fa-wrench",
                        label=_l("Maintenance"), category=CATEGORY_SYSTEM)
    appbuilder.add_view(ExportPolicyView, "Export Encryption", icon="fa-lock",
                        label=_l("Export encryption"), category=CATEGORY_SYSTEM)
    appbuilder.add_view_no_menu(ProtectedExportView)
    # 定期処理 (issue 16 §3): the worker's jobs and their last runs, システム管理者 only.
    appbuilder.add_view(JobsView, "Scheduled Jobs", icon="fa-clock-o",
                        label=_l("Scheduled jobs"), category=CATEGORY_SYSTEM)
    system = appbuilder.menu.find(CATEGORY_SYSTEM)
    if system is not None:
        system.label = _l("System")
        system.icon = "fa-cogs"
