"""Keep the catalogues in step with the code: `python scripts/translations.py`.

Extracts our strings, adds the Flask-AppBuilder strings its own ja_JP catalogue lacks,
and updates translations/{ja,en}. New strings then need a Japanese msgstr.
"""
import os
import subprocess
import sys

from babel.messages.pofile import read_po, write_po

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
POT = os.path.join(ROOT, "translations", "messages.pot")
# Flask-AppBuilder msgids missing from its ja_JP catalogue (5.3): ours fills them.
FAB_GAPS = [
    "Database Error", "Not a valid choice", "Select Value",
    "Must have at least two capital letters, one special character, two digits, three lower "
    "case letters and a minimal length of 10.",
    "Contains (insensitive)", "Start with", "In", "Not In", "Either select a role or a group",
    "List Groups", "Edit User Information", "User information changed", "Groups",
    "The user's password for authentication", "User(s) exists in the role, cannot delete",
    "Show Group", "Add Group", "Edit Group", "User(s) exists in the group, cannot delete",
    "Invalid state signature", "Add", "Edit", "Show", "Delete",
    "Are you sure you want to delete this item?", "Detail", "Sign In with ",
]


def extract() -> None:
    subprocess.run([sys.executable, "-m", "babel.messages.frontend", "extract", "-F",
                    os.path.join(ROOT, "babel.cfg"), "-k", "lazy_gettext", "-k", "_l",
                    "--no-location", "--omit-header", "-o", POT, ROOT], check=True,
                   capture_output=True)
    with open(POT, "rb") as handle:
        catalog = read_po(handle)
    for msgid in FAB_GAPS:
        if msgid not in catalog:
            catalog.add(msgid)
    with open(POT, "wb") as handle:
        write_po(handle, catalog, omit_header=True, no_location=True)


def update() -> None:
    for lang in ("ja", "en"):
        po = os.path.join(ROOT, "translations", lang, "LC_MESSAGES", "messages.po")
        command = "update" if os.path.exists(po) else "init"
        args = [sys.executable, "-m", "babel.messages.frontend", command, "-i", POT,
                "-d", os.path.join(ROOT, "translations"), "-l", lang]
        if command == "update":
            args += ["--no-fuzzy-matching"]
        subprocess.run(args, check=True, capture_output=True)


if __name__ == "__main__":
    extract()
    update()
