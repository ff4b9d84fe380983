"""How a staff screen reports a refused operation (issue 11 §3: one error boundary).

The service's unit of work has already rolled back (app/services/unit.py); the screen only
says why, lists each refusal of a bulk action, and goes back to where the person was.
"""
from __future__ import annotations

from functools import wraps
from typing import Callable

from flask import flash, redirect, request, url_for

from app.services.errors import DomainError


def flash_refusal(error: DomainError) -> None:
    flash(str(error.message), "danger")
    for who, why in getattr(error, "failures", []):
        flash(f"{who}: {why}", "warning")


def _same_site_referrer() -> str | None:
    target = request.referrer or ""
    if target.startswith(request.host_url):
        return target
    return None


def refusals_flashed(back: str | Callable[..., str] | None = None):
    """Decorator for a FAB view method: a :class:`DomainError` from the operation becomes
    the screen's flash message and a redirect. ``back`` is an endpoint (``".index"``), or a
    callable taking the view method's arguments and returning a URL; without it the person
    goes back to the page they came from (on this site), else to the view's index."""

    def wrap(method):
        @wraps(method)
        def run(self, *args, **kwargs):
            try:
                return method(self, *args, **kwargs)
            except DomainError as error:
                flash_refusal(error)
                if callable(back):
                    return redirect(back(self, *args, **kwargs))
                if back:
                    return redirect(url_for(back))
                return redirect(_same_site_referrer() or url_for(".index"))

        return run

    return wrap
