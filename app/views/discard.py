"""Discard (廃棄): candidates past the deadlines (as last refreshed), holds, bulk discard,
the discard register."""
from datetime import date, datetime, time

from flask import flash, redirect, request, url_for
from flask_appbuilder import BaseView, expose, has_access
from flask_babel import gettext as _
from flask_login import current_user

from app import clock
from app.clock import JST
from app.extensions import session
from app.models.card_states import VISIT_MODE_LABELS, state_label
from app.services import audit, audit_text, cards, discard, fields, japanese
from app.services.errors import InputError
from app.views.feedback import flash_refusal, refusals_flashed
from app.views.fields import form_ids


def _fiscal_year_start(today: date) -> date:
    return date(today.year if today.month >= 4 else today.year - 1, 4, 1)


class DiscardView(BaseView):
    route_base = "/discard"
    default_view = "candidates"

    def _ids(self):
        return form_ids(request.form.getlist("ids"))

    @expose("/")
    @has_access
    def candidates(self):
        """The candidates the last refresh found that still qualify now (reads only)."""
        mode = request.args.get("mode")
        page = request.args.get("page", "1")
        number = int(page) if page.isascii() and page.isdigit() and len(page) < 7 else 1
        found = discard.snapshot(session(), clock.now().date(), mode, page=number,
                                 page_size=discard.PAGE_SIZE)
        return self.render_template("cards/discard.html", snapshot=found,
                                    candidates=found.candidates, mode=mode,
                                    modes=VISIT_MODE_LABELS,
                                    state_label=state_label,
                                    date_with_era=japanese.date_with_era,
                                    actor_name=audit_text.actor_name,
                                    can_execute=self.appbuilder.sm.has_access(
                                        "can_execute", self.class_permission_name),
                                    can_refresh=self.appbuilder.sm.has_access(
                                        "can_refresh", self.class_permission_name),
                                    can_register=self.appbuilder.sm.has_access(
                                        "can_register", self.class_permission_name))

    @expose("/refresh", methods=["POST"])
    @has_access
    @refusals_flashed(back=".candidates")
    def refresh(self):
        """「今すぐ更新」: find the candidates again now."""
        count = discard.refresh(session(), clock.now(), actor=cards.actor_of(current_user))
        flash(_("Discard candidates refreshed: %(n)d card(s) found.", n=count), "success")
        mode = request.form.get("mode")
        return redirect(url_for(".candidates", mode=mode if mode in VISIT_MODE_LABELS
                                else None))

    @expose("/hold", methods=["POST"])
    @has_access
    @refusals_flashed(back=".candidates")
    def hold(self):
        hold = request.form.get("hold") == "1"
        count = cards.set_discard_hold(session(), self._ids(), hold,
                                       fields.clean_text(request.form.get("reason"), 200),
                                       actor=cards.actor_of(current_user))
        flash(_("Discard held back for %(n)d card(s).", n=count) if hold
              else _("Hold lifted for %(n)d card(s).", n=count), "success")
        return redirect(url_for(".candidates"))

    @expose("/execute", methods=["POST"])
    @has_access
    @refusals_flashed(back=".candidates")
    def execute(self):
        done = discard.discard_candidates(
            session(), self._ids(), fields.clean_text(request.form.get("reason"), 200) or "",
            actor=cards.actor_of(current_user))
        flash(_("%(n)d card(s) discarded.", n=len(done)), "success")
        return redirect(url_for(".candidates"))

    @expose("/register")
    @has_access
    def register(self):
        """The discard register (廃棄簿) for a period, printable; opening it is audited."""
        today = clock.now().date()
        try:
            start = japanese.parse_date(request.args["from"]) if request.args.get("from") \
                else _fiscal_year_start(today)
            end = japanese.parse_date(request.args["to"]) if request.args.get("to") else today
        except InputError as error:  # a wrong date: said, and the whole year shown
            flash_refusal(error)
            start, end = _fiscal_year_start(today), today
        mode = request.args.get("mode")
        rows = cards.discarded_between(session(), datetime.combine(start, time.min, JST),
                                       datetime.combine(end, time.max, JST), mode)
        audit.record_event(audit.ACTION_PRINT, "card", None,
                           {"what": "discard register", "from": start.isoformat(),
                            "to": end.isoformat(), "rows": len(rows), "mode": mode})
        return self.render_template("cards/discard_register.html", rows=rows, start=start,
                                    end=end, date_with_era=japanese.date_with_era,
                                    now=clock.now(), mode=mode, modes=VISIT_MODE_LABELS,
                                    actor_name=audit_text.actor_name)
