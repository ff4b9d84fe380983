"""The one place that registers the staff screens and APIs (nothing registers at import)."""
from flask_babel import lazy_gettext as _l

from app.views.audit import AuditLogModelView
from app.views.maintenance import MaintenanceWindowModelView
from app.views.notice import NoticeModelView

# Menu categories, in the order of the work (later issues fill the first four).
CATEGORY_RESERVATIONS = "Reservations"
CATEGORY_INTAKE = "Intake"
CATEGORY_CARDS = "Cards"
CATEGORY_STATISTICS = "Statistics"
CATEGORY_SYSTEM = "Security"  # FAB's own category, relabelled システム


def register_views(appbuilder) -> None:
    appbuilder.add_view(NoticeModelView, "Notices", icon="fa-bullhorn", label=_l("Notices"),
                        category=CATEGORY_SYSTEM)
    appbuilder.add_view(AuditLogModelView, "Audit Log", icon="fa-list-alt",
                        label=_l("Audit log"), category=CATEGORY_SYSTEM)
    appbuilder.add_view(MaintenanceWindowModelView, "Maintenance", icon="fa-wrench",
                        label=_l("Maintenance"), category=CATEGORY_SYSTEM)
    system = appbuilder.menu.find(CATEGORY_SYSTEM)
    if system is not None:
        system.label = _l("System")
        system.icon = "fa-cogs"
