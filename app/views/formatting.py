"""Display helpers shared by the staff views."""
from flask_babel import lazy_gettext as _l

from app import clock
from app.models.notice import (AUDIENCE_BOTH, AUDIENCE_RESIDENTS, AUDIENCE_STAFF,
                               IMPORTANCE_IMPORTANT, IMPORTANCE_NORMAL, IMPORTANCE_URGENT)

AUDIENCE_CHOICES = [
    (AUDIENCE_STAFF, _l("Staff")),
    (AUDIENCE_RESIDENTS, _l("Residents")),
    (AUDIENCE_BOTH, _l("Staff and residents")),
]
IMPORTANCE_CHOICES = [
    (IMPORTANCE_NORMAL, _l("Normal")),
    (IMPORTANCE_IMPORTANT, _l("Important")),
    (IMPORTANCE_URGENT, _l("Urgent")),
]


def label_of(choices, value) -> str:
    return str(dict(choices).get(value, value if value is not None else ""))


def jst(value) -> str:
    """A timestamp as Japan time, to the minute."""
    return "" if value is None else clock.to_jst(value).strftime("%Y-%m-%d %H:%M")


TABLE_LABELS = {
    "ab_user": _l("Staff accounts"),
    "ab_role": _l("Roles"),
    "ab_user_role": _l("Roles of staff accounts"),
    "ab_permission_view_role": _l("Permissions of roles"),
    "notice": _l("Notices"),
    "maintenance_window": _l("Maintenance"),
    "audit_log": _l("Audit log"),
}


def table_label(value) -> str:
    """A table name as staff read it, the technical name beside it."""
    if not value:
        return ""
    label = TABLE_LABELS.get(value)
    return f"{label} ({value})" if label else value


def blank_none(value) -> str:
    return "" if value is None else str(value)


def yes_no(value) -> str:
    return str(_l("Yes")) if value else str(_l("No"))
