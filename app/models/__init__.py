"""All models, imported so that Model.metadata (Alembic's target) knows every table."""
from app.models.audit import AuditLog
from app.models.card import Card, CardEvent, CardTally
from app.models.discard import DiscardCandidate
from app.models.document import DocumentBlob, IntakeDocument
from app.models.extraction import ExportJob, SavedQuery
from app.models.fee import DailyClose, FeeEntry, FeeSchedule, ReceiptCounter
from app.models.intake import Intake, OutreachSession
from app.models.job import JobRun
from app.models.ledger_import import LedgerImportJob
from app.models.maintenance import MaintenanceWindow
from app.models.notice import Notice
from app.models.outbox import OutboxMail
from app.models.reservation import BookingEvent, Hold, Reservation, ReservationPerson, Slot
from app.models.scan import ScanBatch, ScanItem
from app.models.setting import SiteSetting
from app.models.storage import StoragePlace
from app.models.stored_file import StoredFile, StoredFileChunk
from app.models.throttle import Throttle
from app.models.user import StaffUser
from app.models.venue import DateException, Purpose, Venue, VenuePurpose, WeeklyRule

__all__ = ["AuditLog", "BookingEvent", "Card", "CardEvent", "CardTally", "DailyClose",
           "DateException", "DiscardCandidate", "DocumentBlob", "ExportJob", "FeeEntry",
           "FeeSchedule", "Hold", "Intake", "IntakeDocument", "JobRun", "LedgerImportJob",
           "MaintenanceWindow", "Notice", "OutboxMail", "OutreachSession", "Purpose",
           "ReceiptCounter", "Reservation", "ReservationPerson", "SavedQuery", "ScanBatch",
           "ScanItem", "SiteSetting", "Slot", "StaffUser", "StoragePlace", "StoredFile",
           "StoredFileChunk", "Throttle", "Venue",
           "VenuePurpose", "WeeklyRule"]
