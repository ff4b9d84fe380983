"""The staff home page: today's figures per venue, cards waiting for hand-over, notices."""
from flask import current_app, g, redirect
from flask_appbuilder import IndexView, expose

from app import clock
from app.clock import JST
from app.extensions import session
from app.models.notice import AUDIENCE_STAFF
from app.services import backups, desk, fees, intake
from app.services.notices import current_notices
from app.views.access import can_open


class HomeView(IndexView):
    index_template = "home.html"

    @expose("/")
    def index(self):
        if g.user is None or not g.user.is_authenticated:
            return redirect(self.appbuilder.get_url_for_login)
        now = clock.now()
        notices = current_notices(session(), AUDIENCE_STAFF, now)
        # Business figures only for the roles that work with them (the system
        # administrator has no business screens: docs/roles.md); every link on the page
        # is offered only to a role that can open it.
        can = {endpoint: can_open(endpoint) for endpoint in
               ("DeskView.day", "HandoverView.index", "CardModelView.list",
                "IntakeModelView.list", "FeeView.daily")}
        figures, waiting_cards = ([], 0)
        if can["DeskView.day"] or can["CardModelView.list"]:
            figures, waiting_cards = desk.today_figures(session(), now)
        today = now.astimezone(JST).date()
        counter = (intake_and_fees(today, fees_too=can["FeeView.daily"])
                   if can["IntakeModelView.list"] else [])
        # The system administrator sees when the last good backup was made (read from the
        # backups' sidecar files: no key, no database, nothing written).
        backup = (backups.status(now) if current_app.config["ROLE_SYSADMIN"] in
                  {role.name for role in g.user.roles} else None)
        return self.render_template(self.index_template, appbuilder=self.appbuilder,
                                    notices=notices, figures=figures,
                                    waiting_cards=waiting_cards, can=can, today=today,
                                    counter=counter, yen=fees.yen, backup=backup,
                                    megabytes=_megabytes, backup_time=_backup_time)


def intake_and_fees(day, fees_too: bool) -> list[dict]:
    """Today's applications and fees per venue (off-site applications under their site):
    one row a place, with the venue's id where the 日計表 can be opened."""
    rows: dict[str, dict] = {}
    for name, count in intake.intakes_today(session(), day).items():
        rows[name] = {"name": name, "intakes": count, "payments": 0, "amount": 0,
                      "venue_id": None}
    if fees_too:
        for venue in fees.fees_today(session(), day):
            row = rows.setdefault(venue.venue_name, {"name": venue.venue_name, "intakes": 0})
            row.update(payments=venue.payments, amount=venue.amount, venue_id=venue.venue_id)
    return sorted(rows.values(), key=lambda row: row["name"])


def _megabytes(size: int) -> str:
    return f"{size / 1024 / 1024:,.1f} MB"


def _backup_time(info) -> str:
    return info.created_at.astimezone(JST).strftime("%Y-%m-%d %H:%M") if info.created_at else "?"
