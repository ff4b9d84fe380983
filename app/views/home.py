"""The staff home page: today's figures per venue, cards waiting for hand-over, notices."""
from flask import g, redirect
from flask_appbuilder import IndexView, expose

from app import clock
from app.clock import JST
from app.extensions import session
from app.models.notice import AUDIENCE_STAFF
from app.services import desk
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
               ("DeskView.day", "HandoverView.index", "CardModelView.list")}
        figures, waiting_cards = ([], 0)
        if can["DeskView.day"] or can["CardModelView.list"]:
            figures, waiting_cards = desk.today_figures(session(), now)
        return self.render_template(self.index_template, appbuilder=self.appbuilder,
                                    notices=notices, figures=figures,
                                    waiting_cards=waiting_cards, can=can,
                                    today=now.astimezone(JST).date())
