"""Discard (廃棄): candidates past the deadlines, holds, bulk discard, the discard register."""
from datetime import date, datetime, time

from flask import flash, redirect, request, url_for
from flask_appbuilder import BaseView, expose, has_access
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import select

from app import clock
from app.clock import JST
from app.extensions import session
from app.models.card import Card
from app.services import audit, cards, fields, japanese
from app.services.errors import DomainError, InputError
from app.views.feedback import flash_refusal
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
        found = cards.discard_candidates(session(), clock.now().date())
        mode = request.args.get("mode")
        if mode in cards.VISIT_MODE_LABELS:
            found = [c for c in found if c.card.visit_mode == mode]
        return self.render_template("cards/discard.html", candidates=found, mode=mode,
                                    modes=cards.VISIT_MODE_LABELS,
                                    state_label=cards.state_label,
                                    date_with_era=japanese.date_with_era,
                                    can_execute=self.appbuilder.sm.has_access(
                                        "can_execute", self.class_permission_name),
                                    can_register=self.appbuilder.sm.has_access(
                                        "can_register", self.class_permission_name))

    @expose("/hold", methods=["POST"])
    @has_access
    def hold(self):
        try:
            hold = request.form.get("hold") == "1"
            count = cards.set_discard_hold(session(), self._ids(), hold,
                                           fields.clean_text(request.form.get("reason"), 200),
                                           actor=cards.actor_of(current_user))
            flash(_("Discard held back for %(n)d card(s).", n=count) if hold
                  else _("Hold lifted for %(n)d card(s).", n=count), "success")
        except DomainError as error:
            flash_refusal(error)
        return redirect(url_for(".candidates"))

    @expose("/execute", methods=["POST"])
    @has_access
    def execute(self):
        try:
            done = cards.discard_cards(session(), self._ids(),
                                       fields.clean_text(request.form.get("reason"), 200) or "",
                                       actor=cards.actor_of(current_user))
            flash(_("%(n)d card(s) discarded.", n=len(done)), "success")
        except DomainError as error:
            flash_refusal(error)
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
        except InputError as error:
            flash(str(error.message), "danger")
            start, end = _fiscal_year_start(today), today
        mode = request.args.get("mode")
        query = select(Card).where(Card.state == cards.DISCARDED,
                                   Card.discarded_at >= datetime.combine(start, time.min, JST),
                                   Card.discarded_at <= datetime.combine(end, time.max, JST))
        if mode in cards.VISIT_MODE_LABELS:
            query = query.where(Card.visit_mode == mode)
        rows = list(session().execute(query.order_by(Card.discarded_at, Card.application_id))
                    .scalars())
        audit.record_event(audit.ACTION_PRINT, "card", None,
                           {"what": "discard register", "from": start.isoformat(),
                            "to": end.isoformat(), "rows": len(rows), "mode": mode})
        return self.render_template("cards/discard_register.html", rows=rows, start=start,
                                    end=end, date_with_era=japanese.date_with_era,
                                    now=clock.now(), mode=mode, modes=cards.VISIT_MODE_LABELS)
