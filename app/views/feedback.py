"""How a screen reports a refused operation: roll back, say why, list each refusal."""
from flask import flash

from app.extensions import session
from app.services.errors import DomainError


def flash_refusal(error: DomainError) -> None:
    session().rollback()
    flash(str(error.message), "danger")
    for who, why in getattr(error, "failures", []):
        flash(f"{who}: {why}", "warning")
