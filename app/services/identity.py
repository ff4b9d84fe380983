"""The identity checklist of the counter (DOMAIN.md "Identity at the counter"): one A-type
photo ID or two B-type documents; a legal representative with the proof of their
authority; a proxy only for an accepted reason, with the proof of the reason, of the
authority and their own ID. The hand-over (app/services/handover.py) and the application
intake (app/services/intake.py) tick the same list; only the hand-over asks for the PINs.
"""
from __future__ import annotations

import json

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

ID_ONE_A = "one_a"  # one document with a photo (A)
ID_TWO_B = "two_b"  # two documents without (B)
COLLECTORS = ("self", "legal_representative", "proxy")
PROXY_REASON_LABELS = [
    ("hospital", _l("In hospital")), ("care_facility", _l("In a care facility")),
    ("disability", _l("Disability")), ("age_75", _l("Aged 75 or over")),
    ("pregnancy", _l("Pregnancy")), ("small_child", _l("Caring for a small child")),
    ("posted_away", _l("Long posting away from home")),
]
PROXY_REASONS = tuple(code for code, _label in PROXY_REASON_LABELS)
CHECKLIST_FIELDS = ("identity", "collector", "proxy_reason", "authority_proof", "reason_proof",
                    "proxy_identity", "pin_set", "old_card_returned", "note")
# What an application's checklist keeps (no PINs, no returned card, no hand-over note).
APPLICATION_FIELDS = ("identity", "collector", "proxy_reason", "authority_proof",
                      "reason_proof", "proxy_identity")


def checklist_of(form, keys: tuple[str, ...] = CHECKLIST_FIELDS) -> dict:
    """The checklist as ticked on a screen (its filled fields only)."""
    return {key: form.get(key) for key in keys if form.get(key)}


def checklist_problems(check: dict, *, at_handover: bool = True) -> list[str]:
    """What the checklist still lacks; an application (``at_handover=False``) is not asked
    for the PINs."""
    problems = []
    if check.get("identity") not in (ID_ONE_A, ID_TWO_B):
        problems.append(_("Choose the identity documents seen (one A-type or two B-type)."))
    who = check.get("collector") or "self"
    if who not in COLLECTORS:
        problems.append(_("Choose who came to the counter."))
    if who == "legal_representative" and not check.get("authority_proof"):
        problems.append(_("Check the proof of legal representation."))
    if who == "proxy":
        if check.get("proxy_reason") not in PROXY_REASONS:
            problems.append(_("Choose the accepted reason for a proxy."))
        for key, message in (("reason_proof", _("Check the proof of the reason.")),
                             ("authority_proof", _("Check the letter of delegation.")),
                             ("proxy_identity", _("Check the proxy's identity documents."))):
            if not check.get(key):
                problems.append(message)
    if at_handover and not check.get("pin_set"):
        problems.append(_("Confirm that the resident set the PINs."))
    return problems


def as_json(check: dict) -> str:
    """The checklist as stored on a card or an intake."""
    return json.dumps(check, ensure_ascii=False, sort_keys=True)


def from_json(text: str | None) -> dict:
    """A stored checklist (an unreadable one as empty)."""
    try:
        value = json.loads(text) if text else {}
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def proxy_reason_label(code: str | None) -> str:
    return str(dict(PROXY_REASON_LABELS).get(code, code or ""))
