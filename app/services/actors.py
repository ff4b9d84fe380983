"""Who asks for a change (docs/roles.md): the signed-in person with the names of their
roles, or the product itself. Every service checks its own rule with ``check_roles``
(config keys of the role names, so a city renaming a role keeps the rule). Below the
card ledger and the intake, which both use it; app/services/cards.py re-exports the names.
"""
from __future__ import annotations

from dataclasses import dataclass

from flask import current_app

from app.services import audit
from app.services.errors import NotPermittedError


@dataclass(frozen=True)
class CardActor:
    """Who asks for a change, with the names of their roles. ``SYSTEM`` is the product
    itself (booking engine, CLI, demo data, tests), which the role table does not limit."""

    username: str
    roles: frozenset = frozenset()
    system: bool = False


SYSTEM = CardActor("system", system=True)


def name_of(actor: CardActor) -> str:
    """The name written in a record: the person's; for the product itself, the name the
    audit trail gives it (``cli:<os user>`` for a command, else ``system``)."""
    return audit.current_actor().username if actor.system else actor.username


def actor_of(user) -> CardActor:
    """The actor for a signed-in user (screen session or JWT); anyone else has no role."""
    if user is None or not getattr(user, "is_authenticated", False):
        return CardActor("")  # nobody signed in: no role allows anything
    return CardActor(user.username, frozenset(role.name for role in (user.roles or [])))


def role_names(keys: tuple[str, ...]) -> list[str]:
    return [current_app.config[key] for key in keys]


def has_role(actor: CardActor, keys: tuple[str, ...]) -> bool:
    return actor.system or bool(actor.roles & set(role_names(keys)))


def check_roles(actor: CardActor, keys: tuple[str, ...], message) -> None:
    if not has_role(actor, keys):
        raise NotPermittedError(message)
