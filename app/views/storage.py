"""Storage places (保管場所, F3.5): the places, moving cards, and the stock-taking list."""
from flask import flash, redirect, request, url_for
from flask_appbuilder import BaseView, ModelView, expose, has_access
from flask_appbuilder.models.sqla.interface import SQLAInterface
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from wtforms.validators import DataRequired, NumberRange

from app import clock
from app.extensions import session
from app.models.card_states import VISIT_MODE_LABELS, state_label
from app.models.storage import StoragePlace
from app.services import cards, storage
from app.services.errors import DomainError
from app.services.fields import parse_id
from app.views.feedback import flash_refusal
from app.views.fields import form_id, form_ids
from app.views.formatting import blank_none, yes_no
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
    formatters_columns = {"active": yes_no, "note": blank_none}
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
        if request.method == "POST":
            place = storage.get_place(session(), form_id(request.form, "place"))
            if place is None:
                flash(_("Choose a storage place."), "danger")
            else:
                try:
                    moved = cards.move_cards(session(), ids, place,
                                             actor=cards.actor_of(current_user))
                except DomainError as error:  # shown on the move screen, with the cards
                    flash_refusal(error)
                else:
                    flash(_("%(n)d card(s) moved to %(place)s.", n=len(moved),
                            place=place.code), "success")
                    return redirect(url_for("CardModelView.list"))
        chosen, places, occupancy = storage.move_screen(session(), ids)
        return self.render_template("cards/move.html", cards=chosen, places=places,
                                    occupancy=occupancy, ids=",".join(str(i) for i in ids),
                                    state_label=state_label)

    @expose("/inventory")
    @has_access
    def inventory(self):
        """Stock-taking (棚卸し): every place in shelf order with the cards it holds."""
        listing = storage.inventory(session(), parse_id(request.args.get("place")),
                                    request.args.get("mode"))
        return self.render_template("cards/inventory.html", places=listing.places,
                                    held=listing.held, state_label=state_label,
                                    now=clock.now(), mode=request.args.get("mode"),
                                    modes=VISIT_MODE_LABELS)
