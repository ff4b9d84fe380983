"""Texts residents read, in Japanese with an optional English version (issue 12, 6).

A record with a ``name`` shown to residents may have a ``name_en``; residents who chose
English read it, and read the Japanese when it is empty."""
from __future__ import annotations


class EnglishTexts:
    """Mixin for models whose resident-facing texts have optional ``<field>_en`` columns."""

    def text_for(self, locale, field: str) -> str | None:
        """``field`` in ``locale``: the English column when the locale is English and it
        has text, else the Japanese one."""
        japanese = getattr(self, field)
        if str(locale or "ja").lower().startswith("en"):
            english = getattr(self, f"{field}_en", None)
            if english and english.strip():
                return english
        return japanese
