"""Hand-over (交付) at the counter: find the card, tick the identity checklist, hand over."""
from flask import flash, redirect, request, url_for
from flask_appbuilder import BaseView, expose, has_access
from flask_babel import gettext as _
from flask_login import current_user

from app.extensions import session
from app.models.card_states import state_label
from app.services import cards, handover, identity, japanese, notice_numbers
from app.services.errors import CardNotFoundError, DomainError
from app.views.feedback import flash_refusal

PROXY_REASON_LABELS = identity.PROXY_REASON_LABELS
CHECKLIST_FIELDS = handover.CHECKLIST_FIELDS


class HandoverView(BaseView):
    route_base = "/handover"
    default_view = "index"

    @expose("/")
    @has_access
    def index(self):
        query = (request.args.get("q") or "").strip()
        card, error = None, None
        if query:
            try:
                card = cards.find_card(session(), query)
            except CardNotFoundError as exc:  # said on the search form itself
                error = str(exc.message)
        return self.render_template(
            "cards/handover.html", query=query, card=card, error=error,
            proxy_reasons=PROXY_REASON_LABELS, state_label=state_label,
            date_with_era=japanese.date_with_era, display_number=notice_numbers.display,
            can_hand_over=handover.may_hand_over(card), check=request.args)

    @expose("/<id:pk>", methods=["POST"])
    @has_access
    def hand_over(self, pk):
        card = cards.card_by_id(session(), pk)
        if card is None:
            flash(_("No card matches."), "danger")
            return redirect(url_for(".index"))
        check = handover.checklist_of(request.form)
        try:
            handover.hand_over(session(), card, check, actor=cards.actor_of(current_user))
        except DomainError as error:  # back to the card with the ticks kept
            flash_refusal(error)
            return redirect(url_for(".index", q=card.application_id, **check))
        flash(_("Handed over: %(name)s (%(id)s).", name=card.name, id=card.application_id),
              "success")
        back = request.form.get("next") or ""
        if back.startswith("/desk/"):  # came from the check-in desk: back to it
            return redirect(back)
        return redirect(url_for(".index"))
