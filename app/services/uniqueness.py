"""Whether a value is taken already (the staff forms' "this name already exists" check).
A read, so that form validators in app/views never query the database themselves."""
from __future__ import annotations

from sqlalchemy import select


def value_taken(session, column, value, except_id: int | None = None) -> bool:
    """True when another row of ``column``'s table (not ``except_id``, the row being
    edited) holds ``value``."""
    model = column.class_
    query = select(model.id).where(column == value)
    if except_id is not None:
        query = query.where(model.id != except_id)
    return session.execute(query).first() is not None
