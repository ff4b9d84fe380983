"""定期処理 (issue 16 §3): the worker's jobs, their schedule, last run and next due time,
the outbox's queued and failed mails, and a warning when the worker seems to have stopped.
システム管理者 only; reads only (the jobs run in `flask --app run worker`, docs/worker.md)."""
from __future__ import annotations

from flask_appbuilder import BaseView, expose, has_access
from flask_babel import gettext as _

from app.clock import JST
from app.extensions import session
from app.services import jobs


class JobsView(BaseView):
    route_base = "/jobs"
    default_view = "index"

    @expose("/")
    @has_access
    def index(self):
        return self.render_template("jobs/index.html", overview=jobs.overview(session()),
                                    tz=JST, title=_("Scheduled jobs"))
