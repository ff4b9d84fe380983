"""Every user-facing string goes through Babel and has Japanese."""
import os
import subprocess
import sys

from babel.messages.pofile import read_po

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _catalog(lang):
    with open(os.path.join(ROOT, "translations", lang, "LC_MESSAGES", "messages.po"), "rb") as f:
        return read_po(f)


def test_every_string_in_the_code_has_a_japanese_translation(tmp_path):
    pot = tmp_path / "messages.pot"
    subprocess.run([sys.executable, "-m", "babel.messages.frontend", "extract", "-F",
                    os.path.join(ROOT, "babel.cfg"), "-k", "lazy_gettext", "-k", "_l",
                    "-o", str(pot), ROOT], check=True, capture_output=True)
    with open(pot, "rb") as f:
        code_ids = {m.id for m in read_po(f) if m.id}
    ja = {m.id: m.string for m in _catalog("ja") if m.id}
    missing = sorted(i for i in code_ids if not ja.get(i))
    assert not missing, f"untranslated (run scripts/translations.py, then translate): {missing}"


def test_flask_appbuilder_gaps_are_filled():
    ja = {m.id: m.string for m in _catalog("ja") if m.id}
    for msgid in ("Add", "Edit", "Show", "Delete", "Are you sure you want to delete this item?"):
        assert ja.get(msgid), msgid


def test_catalogues_compile_and_are_not_fuzzy():
    for lang in ("ja", "en"):
        assert not _catalog(lang).fuzzy, f"{lang} catalogue is marked fuzzy: pybabel skips it"


# --- One word per thing (docs/glossary.md) -------------------------------------------------

import re  # noqa: E402
from html.parser import HTMLParser  # noqa: E402

import pytest  # noqa: E402

FAB_JA = os.path.join(os.path.dirname(os.path.dirname(
    os.path.abspath(__import__("flask_appbuilder").__file__))),
    "flask_appbuilder", "translations", "ja_JP", "LC_MESSAGES", "messages.po")


def glossary_forbidden() -> dict[str, str]:
    """{forbidden word: the glossary's word} from the table of docs/glossary.md."""
    with open(os.path.join(ROOT, "docs", "glossary.md"), encoding="utf-8") as f:
        rows = [line for line in f if line.startswith("|")]
    header = [cell.strip() for cell in rows[0].strip().strip("|").split("|")]
    word, avoid = header.index("日本語"), header.index("使わない")
    forbidden = {}
    for row in rows[2:]:
        cells = [cell.strip() for cell in row.strip().strip("|").split("|")]
        for bad in filter(None, (w.strip() for w in cells[avoid].split("、"))):
            forbidden[bad] = cells[word]
    return forbidden


def glossary_offences(text: str) -> list[str]:
    return [f"{bad} (→ {good})" for bad, good in glossary_forbidden().items() if bad in text]


def _strings(message) -> list[str]:
    return [s for s in ([message.string] if isinstance(message.string, str)
                        else list(message.string)) if s]


def _msgid(message) -> str:
    return message.id if isinstance(message.id, str) else message.id[0]


def _offences():
    """(msgid, offences) of every Japanese message a screen can show: ours, and
    Flask-AppBuilder's own where we do not override it (Flask-Babel merges the two
    catalogues, ours winning)."""
    ours = {_msgid(m): m for m in _catalog("ja") if m.id}
    with open(FAB_JA, "rb") as f:
        fab = {_msgid(m): m for m in read_po(f) if m.id}
    shown = {**fab, **ours}
    found = []
    for msgid, message in shown.items():
        bad = [o for s in _strings(message) for o in glossary_offences(s)]
        if bad:
            found.append((msgid, bad))
    return found


def test_the_glossary_table_is_read():
    forbidden = glossary_forbidden()
    assert forbidden["サインイン"] == "ログイン／ログアウト"
    assert forbidden["予約用番号"] == "交付通知書番号"
    assert len(forbidden) > 20
    assert glossary_offences("サインインしてください") == ["サインイン (→ ログイン／ログアウト)"]


def test_japanese_messages_use_the_glossary_words():
    offences = [(i, bad) for i, bad in _offences()]
    assert not offences, ("Japanese messages with a word docs/glossary.md says not to use "
                          f"(fix the msgstr, or append an entry for a FAB msgid): {offences}")


def test_one_word_per_thing_where_english_shares_a_word():
    ja = {_msgid(m): m.string for m in _catalog("ja") if m.id}
    assert ja["By phone"] == "電話"  # 受付経路 (channel)
    assert ja["Phone"] == ja["Phone number"] == "電話番号"  # the field
    assert ja["Name of the item"] == "名称"  # 用件, 会場, ロール ...
    assert ja["Name"] == "氏名"  # a person
    assert ja["Taken by"] == "受付経路"
    for msgid in ("Sign In", "Login", "Signed in"):
        assert ja[msgid] == "ログイン", msgid


# --- Templates: no visible English outside {{ _() }} --------------------------------------

TEMPLATE_DIRS = [os.path.join(ROOT, "app", "templates"),
                 os.path.join(ROOT, "app", "public", "templates")]
# Words that are the same in Japanese text: names, formats and abbreviations.
ALLOWED_WORDS = {"Web", "QR", "ID", "PDF", "CSV", "Excel", "English", "My", "Number", "PNG",
                 "JPEG", "TIFF", "Shift_JIS", "JIS", "API", "URL", "OK", "No"}
_JINJA = re.compile(r"\{#.*?#\}|\{%.*?%\}|\{\{.*?\}\}", re.S)
_EXPRESSION = re.compile(r"\{\{(.*?)\}\}", re.S)
_GETTEXT_CALL = re.compile(r"""\b(?:_|_l|gettext|ngettext)\(\s*(?:"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')""")
_LITERAL = re.compile(r""""((?:[^"\\]|\\.)*)"|'((?:[^'\\]|\\.)*)'""")
_WORD = re.compile(r"[A-Za-z][A-Za-z'’]+")
_PROSE = re.compile(r"[A-Za-z]{2,}\s+[A-Za-z]{2,}|^[A-Z][a-z]{2,}[.!?]?$")


class _TemplateText(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.hidden = 0
        self.parts: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag in ("script", "style"):
            self.hidden += 1
        values = dict(attrs)
        for name in ("title", "alt", "placeholder", "aria-label"):
            if values.get(name):
                self.parts.append(values[name])
        if tag == "input" and values.get("type") in ("submit", "button") and values.get("value"):
            self.parts.append(values["value"])

    def handle_endtag(self, tag):
        if tag in ("script", "style") and self.hidden:
            self.hidden -= 1

    def handle_data(self, data):
        if not self.hidden:
            self.parts.append(data)


def english_in_template(source: str) -> list[str]:
    """English a person would read in a template that is not passed through _():
    words in text nodes and labelling attributes (Jinja tags removed), and English
    string literals printed by {{ }} expressions."""
    parser = _TemplateText()
    parser.feed(_JINJA.sub(" ", source))
    found = [w for part in parser.parts for w in _WORD.findall(part) if w not in ALLOWED_WORDS]
    for expression in _EXPRESSION.findall(source):
        for double, single in _LITERAL.findall(_GETTEXT_CALL.sub("_(", expression)):
            literal = double or single
            if _PROSE.search(literal):
                found.append(literal)
    return found


def _templates():
    for base in TEMPLATE_DIRS:
        for folder, _dirs, files in os.walk(base):
            for name in sorted(files):
                if name.endswith((".html", ".txt")):
                    yield os.path.relpath(os.path.join(folder, name), ROOT)


def test_the_template_check_finds_english():
    assert english_in_template('<p>{{ _("Booking") }} Search</p>') == ["Search"]
    assert english_in_template('<a title="Next page">{{ _("Next") }}</a>') == ["Next", "page"]
    assert english_in_template('<td>{{ value or "Not set" }}</td>') == ["Not set"]
    assert english_in_template('<script>var x = "Hello there";</script>{# Note #}'
                               '<b>{{ _("Hello there") }}</b> QR PDF') == []


def test_templates_have_no_english_outside_gettext():
    templates = list(_templates())
    assert len(templates) > 40
    offences = {}
    for path in templates:
        with open(os.path.join(ROOT, path), encoding="utf-8") as f:
            found = english_in_template(f.read())
        if found:
            offences[path] = found
    assert not offences, f"English text in templates, not passed through _(): {offences}"
