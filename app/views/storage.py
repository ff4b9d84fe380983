"""Storage places (保管場所, F3.5): the places, moving cards, and the stock-taking list."""
from flask import flash, redirect, request, url_for
from flask_appbuilder import BaseView, ModelView, expose, has_access
from flask_appbuilder.models.sqla.interface import SQLAInterface
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from sqlalchemy import select
from wtforms.validators import DataRequired, NumberRange

from app import clock
from app.extensions import session
from app.models.card import Card
from app.models.storage import StoragePlace
from app.services import audit, cards
from app.services.errors import DomainError
from app.services.fields import parse_id
from app.views.fields import form_id, form_ids
from app.views.formatting import yes_no
from app.views.validators import CleanText, UniqueValue


class StoragePlaceModelView(ModelView):
    datamodel = SQLAInterface(StoragePlace)
    list_title = _l("Storage places")
    show_title = _l("Storage place")
    add_title = _l("Add a storage place")
    edit_title = _l("Edit storage place")
    label_columns = {"code": _l("Place"), "capacity": _l("Capacity"),
                     "sort_key": _l("Shelf order"), "active": _l("In use"), "note": _l("Note")}
    description_columns = {"code": _l("For example 金庫A-棚2-箱05"),
                           "sort_key": _l("Cards fill places in this order; stock-taking lists follow it.")}
    list_columns = ["code", "capacity", "sort_key", "active", "note"]
    add_columns = edit_columns = ["code", "capacity", "sort_key", "active", "note"]
    search_columns = ["code", "active"]
    base_order = ("sort_key", "asc")
    formatters_columns = {"active": yes_no}
    validators_columns = {
        "code": [DataRequired(), CleanText(40), UniqueValue(StoragePlace.code, _l("This place already exists."))],
        "capacity": [DataRequired(), NumberRange(min=1, max=100000)],
        "note": [CleanText(200)],
    }
    list_template = "cards/storage_list.html"


class StorageView(BaseView):
    route_base = "/storage"
    default_view = "inventory"

    @expose("/move", methods=["GET", "POST"])
    @has_access
    def move(self):
        ids = form_ids((request.values.get("ids") or "").split(","))
        chosen = list(session().execute(select(Card).where(Card.id.in_(ids))
                                        .order_by(Card.application_id)).scalars())
        places = list(session().execute(select(StoragePlace).where(StoragePlace.active.is_(True))
                                        .order_by(StoragePlace.sort_key)).scalars())
        if request.method == "POST":
            place = session().get(StoragePlace, form_id(request.form, "place"))
            if place is None:
                flash(_("Choose a storage place."), "danger")
            else:
                try:
                    cards.move_cards(session(), ids, place, actor=cards.actor_of(current_user))
                    flash(_("%(n)d card(s) moved to %(place)s.", n=len(chosen), place=place.code),
                          "success")
                    return redirect(url_for("CardModelView.list"))
                except DomainError as error:
                    session().rollback()
                    flash(str(error.message), "danger")
        return self.render_template("cards/move.html", cards=chosen, places=places,
                                    occupancy=cards.occupancy(session()),
                                    ids=",".join(str(i) for i in ids),
                                    state_label=cards.state_label)

    @expose("/inventory")
    @has_access
    def inventory(self):
        """Stock-taking (棚卸し): every place in shelf order with the cards it holds."""
        place_id = parse_id(request.args.get("place"))
        query = select(StoragePlace).order_by(StoragePlace.sort_key, StoragePlace.code)
        if place_id:
            query = query.where(StoragePlace.id == place_id)
        places = list(session().execute(query).scalars())
        mode = request.args.get("mode")
        cards_query = select(Card).where(Card.storage_place_id.is_not(None))
        if mode in cards.VISIT_MODE_LABELS:
            cards_query = cards_query.where(Card.visit_mode == mode)
        held = {}
        for card in session().execute(cards_query.order_by(Card.application_id)).scalars():
            held.setdefault(card.storage_place_id, []).append(card)
        audit.record_event(audit.ACTION_PRINT, "storage_place", place_id,
                           {"what": "inventory", "places": len(places), "mode": mode,
                            "cards": sum(len(held.get(p.id, [])) for p in places)})
        return self.render_template("cards/inventory.html", places=places, held=held,
                                    state_label=cards.state_label, now=clock.now(),
                                    mode=mode, modes=cards.VISIT_MODE_LABELS)
