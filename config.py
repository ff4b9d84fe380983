"""Configuration: flat UPPERCASE keys, read from the environment where sites differ.

Nothing secret lives here. SECRET_KEY and AUDIT_HMAC_KEY come from the
environment or are generated into ``instance/`` on first start (see app/secrets.py).
"""
import os
from datetime import timedelta

from flask_appbuilder.const import AUTH_DB

BASE_DIR = os.path.abspath(os.path.dirname(__file__))
INSTANCE_DIR = os.environ.get("INSTANCE_DIR", os.path.join(BASE_DIR, "instance"))


def _env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    text = value.strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(f"{name} must be 1/true/yes/on or 0/false/no/off, not {value!r}")


def _env_int(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


# --- the site -------------------------------------------------------------
CITY_NAME = os.environ.get("CITY_NAME", "みどり市")
APP_NAME = os.environ.get("APP_NAME", "マイナンバーカード交付予約管理システム")
TIMEZONE = "Asia/Tokyo"

# --- database ---------------------------------------------------------------
SQLALCHEMY_DATABASE_URI = os.environ.get(
    "DATABASE_URL", "sqlite:///" + os.path.join(INSTANCE_DIR, "app.db")
)
SQLALCHEMY_TRACK_MODIFICATIONS = False
# hide_parameters: a database error's text (in the logs, on the 定期処理 screen) names the
# statement, never the values bound to it (residents' names and addresses).
SQLALCHEMY_ENGINE_OPTIONS = {"pool_pre_ping": True, "hide_parameters": True}

# --- secrets (None: generated into instance/ on first start) ---------------------
SECRET_KEY = os.environ.get("SECRET_KEY") or None
AUDIT_HMAC_KEY = os.environ.get("AUDIT_HMAC_KEY") or None

# --- language -------------------------------------------------------------------
# ja_JP: FAB ships its catalogue as ja_JP; ours (translations/ja) loads under it too.
BABEL_DEFAULT_LOCALE = "ja_JP"
BABEL_DEFAULT_TIMEZONE = TIMEZONE
LANGUAGES = {
    "ja_JP": {"flag": "jp", "name": "日本語"},
    "en": {"flag": "gb", "name": "English"},
}

# --- Flask-AppBuilder ---------------------------------------------------------------
AUTH_TYPE = AUTH_DB
AUTH_USER_REGISTRATION = False
AUTH_ROLE_ADMIN = "システム管理者"
AUTH_ROLE_PUBLIC = "Public"
FAB_CREATE_DB = False  # the schema belongs to Alembic (flask --app run init)
FAB_UPDATE_PERMS = False  # permissions are synced by `init`, not at every start
FAB_ADD_SECURITY_PERMISSION_VIEW = False
FAB_ADD_SECURITY_VIEW_MENU_VIEW = False
FAB_ADD_SECURITY_PERMISSION_VIEWS_VIEW = False
FAB_API_SWAGGER_UI = False
FAB_PASSWORD_COMPLEXITY_ENABLED = True
# FAB_PASSWORD_COMPLEXITY_VALIDATOR is set by create_app: app.services.passwords.fab_password_validator
FAB_SECURITY_MANAGER_CLASS = "app.security.AppSecurityManager"
FAB_API_MAX_PAGE_SIZE = 100
APP_THEME = ""
APP_ICON = ""

# Login protection.
# Sign-in attempts (form and API) per IP address and window, counted in the database
# (table throttle), so every worker and every instance shares the limit.
LOGIN_RATE_LIMIT = _env_int("LOGIN_RATE_LIMIT", 20)
LOGIN_RATE_WINDOW_SECONDS = _env_int("LOGIN_RATE_WINDOW_SECONDS", 60)
# Flask-Limiter on the sign-in endpoints, an optional extra (AUTH_RATE_LIMITED=1): with
# memory:// each worker counts on its own, so use redis://... under several workers.
RATELIMIT_ENABLED = _env_bool("RATELIMIT_ENABLED", True)
RATELIMIT_STORAGE_URI = os.environ.get("RATELIMIT_STORAGE_URI", "memory://")
AUTH_RATE_LIMITED = _env_bool("AUTH_RATE_LIMITED", False)
AUTH_RATE_LIMIT = os.environ.get("AUTH_RATE_LIMIT", "20 per minute")
# Failed sign-ins in a row before an account is locked, for LOGIN_LOCK_MINUTES, doubled
# with each further lock before a successful sign-in, at most LOGIN_LOCK_MAX_MINUTES. Only
# an administrator's lock (user list) lasts until unlocked.
LOGIN_LOCK_THRESHOLD = _env_int("LOGIN_LOCK_THRESHOLD", 5)
LOGIN_LOCK_MINUTES = _env_int("LOGIN_LOCK_MINUTES", 15)
LOGIN_LOCK_MAX_MINUTES = _env_int("LOGIN_LOCK_MAX_MINUTES", 24 * 60)
IDLE_TIMEOUT_MINUTES = _env_int("IDLE_TIMEOUT_MINUTES", 30)
# REST API tokens: short access tokens, refresh tokens for at most a working day. Both are
# refused at once when the account is locked, deactivated or gets a new password.
JWT_ACCESS_TOKEN_EXPIRES = timedelta(minutes=_env_int("JWT_ACCESS_TOKEN_MINUTES", 15))
JWT_REFRESH_TOKEN_EXPIRES = timedelta(minutes=_env_int("JWT_REFRESH_TOKEN_MINUTES", 8 * 60))

# Reverse proxies in front of the app whose X-Forwarded-For/-Proto/-Host are trusted (0: none,
# the header is ignored). Behind one nginx: 1. Residents' guessing limits count per address.
PROXY_FIX_HOPS = _env_int("PROXY_FIX_HOPS", 0)
if not 0 <= PROXY_FIX_HOPS <= 5:
    raise ValueError("PROXY_FIX_HOPS must be a whole number from 0 to 5")
# The proxies whose headers count (app/proxies.py): the peer must be one of these addresses
# (comma-separated; "*": any). The same variable tells gunicorn (deploy/).
FORWARDED_ALLOW_IPS = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1,::1")

# Cookies: Secure by default; set COOKIE_SECURE=0 only for plain-http local use.
SESSION_COOKIE_SECURE = _env_bool("COOKIE_SECURE", True)
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
REMEMBER_COOKIE_SECURE = SESSION_COOKIE_SECURE
REMEMBER_COOKIE_HTTPONLY = True
PERMANENT_SESSION_LIFETIME = IDLE_TIMEOUT_MINUTES * 60
WTF_CSRF_ENABLED = True
WTF_CSRF_TIME_LIMIT = None  # bound to the session, which itself times out

# --- operating hours (O1, O2) -------------------------------------------------------
STAFF_HOURS_OPEN = os.environ.get("STAFF_HOURS_OPEN", "06:30")
STAFF_HOURS_CLOSE = os.environ.get("STAFF_HOURS_CLOSE", "23:00")
STAFF_CLOSED_DAY_AFTER_THIRD_SATURDAY = _env_bool("STAFF_CLOSED_DAY_AFTER_THIRD_SATURDAY", True)
STAFF_CLOSED_YEAR_END = ("12-29", "01-03")  # inclusive, MM-DD
STAFF_CLOSED_DATES: list[str] = [  # the city's own closed days, YYYY-MM-DD
    d for d in os.environ.get("STAFF_CLOSED_DATES", "").split(",") if d
]
STAFF_HOURS_ENFORCED = _env_bool("STAFF_HOURS_ENFORCED", True)
STAFF_HOURS_ADMIN_BYPASS = _env_bool("STAFF_HOURS_ADMIN_BYPASS", True)
MAINTENANCE_BANNER_DAYS = _env_int("MAINTENANCE_BANNER_DAYS", 14)

# --- roles (F5.1, S4) ---------------------------------------------------------------
# FAB built-in roles: (view regex, permission regex), matched with re.match, so
# every pattern is anchored. The matrix in words is docs/roles.md.
ROLE_SYSADMIN = AUTH_ROLE_ADMIN
ROLE_MANAGER = "管理者"
ROLE_CLERK = "窓口職員"
ROLE_VIEWER = "閲覧者"
STAFF_ROLES = (ROLE_SYSADMIN, ROLE_MANAGER, ROLE_CLERK, ROLE_VIEWER)

_SELF_SERVICE = [  # every signed-in user: own profile and own password
    (r"UserDBModelView$", r"(can_userinfo|userinfoedit)$"),
    (r"UserInfoEditView$", r"can_this_form_(get|post)$"),
    (r"ResetMyPasswordView$", r"can_this_form_(get|post)$"),
]
_READ = r"(can_list|can_show)$"
_BOOKING_SETTINGS = (r"(VenuePurposeModelView|VenueModelView|PurposeModelView"
                     r"|WeeklyRuleModelView|DateExceptionModelView)$")
_BOOKING_MENUS = (r"(Reservations|Check-in Desk|Bookings|Booking Calendar|Booking Settings"
                  r"|Venues|Purposes"
                  r"|Weekly Pattern|Date Exceptions)$")
_WRITE = r"(can_list|can_show|can_add|can_edit|can_delete)$"
# Intake and fees (issue 13). Menu items of the 申請受付 category.
_INTAKE_MENUS = (r"(Intake|Applications|Outreach Sessions|Daily Fees|Monthly Fees"
                 r"|Fee Table)$")

# Statistics and extraction (issue 14). Menu items of the 集計・抽出 category.
_REPORT_MENUS = r"(Reports|Statistics|Extraction)$"

# Encryption of exports (issue 15 §4): the policy is set by 管理者 and システム管理者; every
# role that downloads anything may fetch its own prepared encrypted ZIP (owner-checked).
_EXPORT_ENCRYPTION_POLICY = [(r"ExportPolicyView$", r".*"),
                             (r"Export Encryption$", r"menu_access$")]
_EXPORT_ENCRYPTED_FILES = [(r"ProtectedExportView$", r".*")]

FAB_ROLES = {
    ROLE_SYSADMIN: [
        (r"(UserDBModelView|RoleModelView|UserGroupModelView|UserStatsChartView"
         r"|ResetPasswordView|UserInfoEditView|ResetMyPasswordView|ApiKeyModelView)$", r".*"),
        (r"(MaintenanceWindowModelView|MaintenanceView)$", r".*"),
        (r"NoticeModelView$", _WRITE),
        (r"AuditLogModelView$", r"(can_list|can_show|can_export|can_verify)$"),
        (r"(Security|List Users|List Roles|List Groups|User's Statistics|API Keys"
         r"|Notices|Audit Log|Maintenance)$", r"menu_access$"),
        *_EXPORT_ENCRYPTION_POLICY,
        *_EXPORT_ENCRYPTED_FILES,
        # 定期処理 (issue 16 §3): the worker's jobs, read only.
        (r"JobsView$", r"can_index$"),
        (r"Scheduled Jobs$", r"menu_access$"),
    ],
    ROLE_MANAGER: [
        *_SELF_SERVICE,
        (r"(CardModelView|CardEventModelView|HandoverView|StoragePlaceModelView|StorageView"
         r"|DiscardView|CardApi|ScanView|LedgerImportView)$", r".*"),
        (r"(Cards|Card Ledger|Scan Station|Hand-over|Storage Places|Discard|Card History"
         r"|Ledger Import)$", r"menu_access$"),
        (_BOOKING_SETTINGS, _WRITE),
        (r"BookingCalendarView$", r"can_(month|day|close|reopen)$"),
        (r"(ReservationModelView|DeskView|ReservationApi)$", r".*"),
        (_BOOKING_MENUS, r"menu_access$"),
        (r"NoticeModelView$", _WRITE),
        (r"AuditLogModelView$", r"(can_list|can_show|can_export)$"),
        (r"(Security|Notices|Audit Log)$", r"menu_access$"),
        # Intake, fees and scanned papers: everything, incl. the fee table and refunds.
        (r"(IntakeModelView|OutreachSessionModelView|FeeScheduleModelView|FeeView"
         r"|DocumentView)$", r".*"),
        (_INTAKE_MENUS, r"menu_access$"),
        # Figures, extraction and export; shared saved queries are the supervisor's.
        (r"(StatisticsView|ExtractionView)$", r".*"),
        (_REPORT_MENUS, r"menu_access$"),
        *_EXPORT_ENCRYPTION_POLICY,
        *_EXPORT_ENCRYPTED_FILES,
    ],
    ROLE_CLERK: [
        *_SELF_SERVICE,
        (r"CardModelView$", r"(can_list|can_show|can_add|can_edit|can_transition|to_\w+"
                            r"|release_hold|move_storage|print_data\w*)$"),
        (r"(CardEventModelView|StoragePlaceModelView)$", _READ),
        (r"HandoverView$", r"(can_index|can_hand_over)$"),
        (r"StorageView$", r"(can_move|can_inventory)$"),
        (r"DiscardView$", r"(can_candidates|can_register)$"),
        (r"CardApi$", r"(can_get|can_info|can_put|can_transition)$"),
        (r"ScanView$", r"can_\w+$"),
        (_BOOKING_SETTINGS, _READ),
        (r"BookingCalendarView$", r"can_(month|day)$"),
        (r"(ReservationModelView|DeskView|ReservationApi)$", r".*"),
        (_BOOKING_MENUS, r"menu_access$"),
        (r"(Cards|Card Ledger|Scan Station|Hand-over|Storage Places|Discard|Card History)$",
         r"menu_access$"),
        (r"NoticeModelView$", _READ),
        (r"(Security|Notices)$", r"menu_access$"),
        # Intake: take and edit applications (never delete: withdraw with a reason),
        # collect fees (a refund is the supervisor's), scan and read papers.
        (r"(IntakeModelView|OutreachSessionModelView)$", r"(?!can_delete$)\w+$"),
        (r"FeeScheduleModelView$", _READ),
        (r"FeeView$", r"(?!can_refund$)\w+$"),
        (r"DocumentView$", r"(?!can_delete$)\w+$"),
        (_INTAKE_MENUS, r"menu_access$"),
        # Figures and extraction with export; shared queries are used, not managed.
        (r"StatisticsView$", r".*"),
        (r"ExtractionView$", r"(?!can_share$)\w+$"),
        (_REPORT_MENUS, r"menu_access$"),
        *_EXPORT_ENCRYPTED_FILES,
    ],
    ROLE_VIEWER: [
        *_SELF_SERVICE,
        # No export of personal data (docs/roles.md): no REST API, no printed lists.
        (r"(CardModelView|CardEventModelView|StoragePlaceModelView)$", _READ),
        (r"DiscardView$", r"can_candidates$"),
        (_BOOKING_SETTINGS, _READ),
        (r"BookingCalendarView$", r"can_(month|day)$"),
        (r"ReservationModelView$", _READ),
        (r"DeskView$", r"can_(index|day|live_counts)$"),
        (_BOOKING_MENUS, r"menu_access$"),
        (r"(Cards|Card Ledger|Storage Places|Discard|Card History)$", r"menu_access$"),
        (r"NoticeModelView$", _READ),
        (r"(Security|Notices)$", r"menu_access$"),
        # Intakes and the day's figures on screen; no scanned papers, no receipts, no
        # printed lists or downloads (personal data leaving the screen).
        (r"(IntakeModelView|OutreachSessionModelView|FeeScheduleModelView)$", _READ),
        (r"FeeView$", r"can_(daily|monthly)$"),
        (_INTAKE_MENUS, r"menu_access$"),
        # Figures (no personal data) on screen and downloaded; extraction on screen only
        # (count and preview, own saved queries): never an export of personal data.
        (r"StatisticsView$", r".*"),
        (r"ExtractionView$", r"can_(index|preview|save|delete_own)$"),
        (_REPORT_MENUS, r"menu_access$"),
        *_EXPORT_ENCRYPTED_FILES,
    ],
}

# Audit: a change nobody can be named for fails (tests turn this on).
AUDIT_STRICT_ACTOR = _env_bool("AUDIT_STRICT_ACTOR", False)

# --- mail to residents (issue 5): nothing is sent while MAIL_SERVER is empty -------------
MAIL_SERVER = os.environ.get("MAIL_SERVER", "")
MAIL_PORT = _env_int("MAIL_PORT", 25)
MAIL_STARTTLS = _env_bool("MAIL_STARTTLS", False)
MAIL_USERNAME = os.environ.get("MAIL_USERNAME", "")
MAIL_PASSWORD = os.environ.get("MAIL_PASSWORD", "")
MAIL_FROM = os.environ.get("MAIL_FROM", "no-reply@example.lg.jp")
MAIL_TIMEOUT_SECONDS = _env_int("MAIL_TIMEOUT_SECONDS", 10)

# --- card ledger (issue 3) -------------------------------------------------------------
# Postcard numbers: letters from an alphabet without look-alikes, then digits (the last is
# a check digit). Shown as ABC-123456.
NOTICE_NUMBER_LETTERS = _env_int("NOTICE_NUMBER_LETTERS", 3)
NOTICE_NUMBER_DIGITS = _env_int("NOTICE_NUMBER_DIGITS", 6)
NOTICE_NUMBER_ALPHABET = os.environ.get("NOTICE_NUMBER_ALPHABET", "ACDEFGHJKLMNPQRTUVWXY")
# The residents' site as printed on postcards (booking URL and its QR code).
PUBLIC_BASE_URL = os.environ.get("PUBLIC_BASE_URL", "http://127.0.0.1:8080")
# Discard candidates (DOMAIN.md): months after the notice, after a reminder, after a return.
DISCARD_AFTER_NOTICE_MONTHS = _env_int("DISCARD_AFTER_NOTICE_MONTHS", 12)
DISCARD_AFTER_RENOTICE_MONTHS = _env_int("DISCARD_AFTER_RENOTICE_MONTHS", 3)
DISCARD_AFTER_RETURN_MONTHS = _env_int("DISCARD_AFTER_RETURN_MONTHS", 12)

# --- bookings (issue 5) -------------------------------------------------------------------
# Bookable slots are made this many days ahead at least (staff plan and close days up to
# about a year ahead; residents see only the offer's own window).
SLOTS_AHEAD_DAYS = _env_int("SLOTS_AHEAD_DAYS", 400)
HOLD_MINUTES = _env_int("HOLD_MINUTES", 10)  # a chosen time is kept while the form is filled
# Guessing on the residents' site: identity checks per IP address and window, and failures
# per typed postcard or booking number before that number is locked for a while.
IDENTITY_IP_ATTEMPTS = _env_int("IDENTITY_IP_ATTEMPTS", 30)
IDENTITY_IP_WINDOW_MINUTES = _env_int("IDENTITY_IP_WINDOW_MINUTES", 15)
IDENTITY_NUMBER_FAILURES = _env_int("IDENTITY_NUMBER_FAILURES", 5)
IDENTITY_LOCK_MINUTES = _env_int("IDENTITY_LOCK_MINUTES", 30)
# Residents whose day has few seats left see 「残りわずか」 (free seats at or below this share).
FEW_SEATS_SHARE = float(os.environ.get("FEW_SEATS_SHARE", "0.3"))
# Where residents call when they cannot book online (shown on the site and in e-mails).
CITY_CONTACT = os.environ.get("CITY_CONTACT", "市民課 マイナンバーカード係 0120-000-000（平日 8:30〜17:15）")
# The same two in English for residents who chose English (empty: the Japanese is shown).
CITY_NAME_EN = os.environ.get("CITY_NAME_EN", "Midori City")
CITY_CONTACT_EN = os.environ.get(
    "CITY_CONTACT_EN", "Citizens Division, My Number Card desk, 0120-000-000 "
    "(weekdays 8:30–17:15)")
LATE_GRACE_MINUTES = _env_int("LATE_GRACE_MINUTES", 5)  # a booked visitor shows 遅刻 after this
# A resident who looked up a booking may change or cancel it for this long without typing
# the number and birth date again.
VIEW_MINUTES = _env_int("VIEW_MINUTES", 30)

# --- scanned papers of an intake (issue 13 §3, app/services/documents.py) -----------------
# Each file at most DOCUMENT_MAX_BYTES and DOCUMENT_MAX_PAGES pages; at most
# DOCUMENT_MAX_FILES files in one upload. The whole request is limited by Flask's
# MAX_CONTENT_LENGTH (default: four files of the largest size, and the form around them);
# a larger request gets the error page 413.
DOCUMENT_MAX_BYTES = _env_int("DOCUMENT_MAX_BYTES", 30 * 1024 * 1024)
DOCUMENT_MAX_FILES = _env_int("DOCUMENT_MAX_FILES", 10)
DOCUMENT_MAX_PAGES = _env_int("DOCUMENT_MAX_PAGES", 200)
MAX_CONTENT_LENGTH = _env_int("MAX_CONTENT_LENGTH", 4 * DOCUMENT_MAX_BYTES + 1024 * 1024)
# Documents are removed by `flask documents purge` this many years after the card's
# hand-over or the application's withdrawal.
DOCUMENT_RETENTION_YEARS = _env_int("DOCUMENT_RETENTION_YEARS", 5)
# The AES-256-GCM keys (docs/documents.md). Empty: a key ring generated into
# instance/document_keys on first use (mode 0600) and extended by `documents rotate-key`.
# Or from the environment (several app servers): "id1:base64,id2:base64" and the id of the
# key new files are encrypted with.
DOCUMENT_KEYS = os.environ.get("DOCUMENT_KEYS", "")
DOCUMENT_KEY_CURRENT = os.environ.get("DOCUMENT_KEY_CURRENT", "")

# --- background exports of the extraction screen (issue 14 §2, app/services/extraction.py) --
# XLSX, and CSV above EXPORT_JOB_MIN_ROWS rows, are written by a background job into
# instance/exports/ and offered for download when done; the file is removed
# EXPORT_KEEP_MINUTES after it was made. A job that has not reported progress for
# EXPORT_STALE_MINUTES (its process died) is shown as failed. EXPORT_JOBS_INLINE runs the
# job inside the request (tests; a server without threads).
EXPORT_JOB_MIN_ROWS = _env_int("EXPORT_JOB_MIN_ROWS", 10_000)
EXPORT_KEEP_MINUTES = _env_int("EXPORT_KEEP_MINUTES", 60)
EXPORT_STALE_MINUTES = _env_int("EXPORT_STALE_MINUTES", 5)
EXPORT_JOBS_INLINE = _env_bool("EXPORT_JOBS_INLINE", False)

# --- backups (issue 15 §3, app/services/backups.py, docs/operations.md) ------------------
# `flask backup create` writes mnc-backup-YYYYMMDD-HHMMSS.mncbak into BACKUP_DIR (empty:
# instance/backups), sealed with AES-256-GCM under BACKUP_KEY: 32 bytes as base64 or hex
# from the environment, else a key generated once into instance/backup_key (mode 0600).
# Never the documents' key, never inside a backup: keep a copy of it away from the server.
BACKUP_DIR = os.environ.get("BACKUP_DIR", "")
BACKUP_KEY = os.environ.get("BACKUP_KEY", "")
# `flask backup prune` keeps the newest backup of each of the last BACKUP_KEEP_DAILY days
# and of each of the last BACKUP_KEEP_MONTHLY months (and always the newest verified one).
BACKUP_KEEP_DAILY = _env_int("BACKUP_KEEP_DAILY", 14)
BACKUP_KEEP_MONTHLY = _env_int("BACKUP_KEEP_MONTHLY", 12)
# The home page warns the system administrator when the last verified backup is older.
BACKUP_WARN_HOURS = _env_int("BACKUP_WARN_HOURS", 36)

# --- the worker (issue 16 §3, app/services/jobs.py, docs/worker.md) ----------------------
# `flask --app run worker` sends the outbox every WORKER_INTERVAL_SECONDS and runs the
# scheduled jobs (Japan time): the day-before reminders daily at REMINDER_HOUR:00, the
# nightly backup (create, verify, prune) at BACKUP_HOUR:00 when WORKER_BACKUPS is on. Use
# either the worker's backup or deploy/mnc-backup.timer, not both (WORKER_BACKUPS=0 when
# the timer makes the backups); every worker host needs the same settings.
REMINDER_HOUR = _env_int("REMINDER_HOUR", 17)
BACKUP_HOUR = _env_int("BACKUP_HOUR", 2)
WORKER_BACKUPS = _env_bool("WORKER_BACKUPS", True)
WORKER_INTERVAL_SECONDS = _env_int("WORKER_INTERVAL_SECONDS", 15)
# --- monitoring and logs (issue 16 §4, app/metrics.py, app/observability.py,
# docs/monitoring.md) ---------------------------------------------------------------------
# /metrics answers only addresses in METRICS_ALLOW (comma-separated IPs or CIDRs, as seen
# after ProxyFix) or a request with "Authorization: Bearer <METRICS_TOKEN>" (at least 16
# characters; empty: no token access). Anyone else gets 404.
METRICS_ALLOW = os.environ.get("METRICS_ALLOW", "127.0.0.1/32,::1")
METRICS_TOKEN = os.environ.get("METRICS_TOKEN", "")
# The app's log lines on standard error: "text" (one readable line) or "json" (one JSON
# object a line, for a log collector). Each request writes one access line.
LOG_FORMAT = os.environ.get("LOG_FORMAT", "text")
