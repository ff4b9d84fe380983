"""Which screens the signed-in user may open, for links: a page offers a link only when
the permission FAB's ``@has_access`` checks on its target is there (docs/roles.md)."""
from __future__ import annotations

from flask import current_app
from flask_appbuilder.const import PERMISSION_PREFIX


def can_open(endpoint: str) -> bool:
    """``can_open("HandoverView.index")``: the user holds the permission of that view's
    method (its ``method_permission_name`` or its own name). An unknown endpoint: no."""
    view_name, _, method = endpoint.partition(".")
    view = current_app.extensions.get("views_by_name", {}).get(view_name)
    function = getattr(view, method, None) if view is not None else None
    if function is None:
        return False
    name = ((view.method_permission_name or {}).get(method)
            or getattr(function, "_permission_name", None))
    if name is None:
        return True  # a route FAB does not protect
    permission = PERMISSION_PREFIX + name
    return (permission in (view.base_permissions or [])
            and current_app.appbuilder.sm.has_access(permission, view.class_permission_name))
