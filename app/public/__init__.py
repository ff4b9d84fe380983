"""The residents' site under /reserve/: mobile first, Japanese by default.

For now the top page: city name, current notices and the maintenance banner. Booking
(issue 5) grows here.
"""
from flask import Blueprint, current_app, redirect, render_template, request, session, url_for

from app import clock
from app.extensions import session as db_session
from app.models.notice import AUDIENCE_RESIDENTS
from app.services.maintenance import maintenance_status
from app.services.notices import current_notices

bp = Blueprint("public", __name__, url_prefix="/reserve", template_folder="templates",
               static_folder="static", static_url_path="/static")


@bp.before_request
def maintenance_gate():
    """During maintenance every resident page answers 503 with the message."""
    if request.endpoint in ("public.static", "public.set_language"):
        return None
    status = maintenance_status(db_session(), clock.now(),
                                current_app.config.get("MAINTENANCE_BANNER_DAYS", 14))
    if status.active is not None:
        return render_template("public/maintenance.html", window=status.active), 503
    request.maintenance = status
    return None


@bp.route("/")
def index():
    notices = current_notices(db_session(), AUDIENCE_RESIDENTS, clock.now())
    return render_template("public/index.html", notices=notices,
                           upcoming=request.maintenance.upcoming)


@bp.route("/lang/<code>")
def set_language(code: str):
    """Switch the residents' language; back to the page the resident was on."""
    if code in current_app.config["LANGUAGES"]:
        session["locale"] = code
    target = request.args.get("next", "")
    if not target.startswith("/reserve/"):
        target = url_for("public.index")
    return redirect(target)


from app.public import api  # noqa: E402,F401  (routes on this blueprint)
