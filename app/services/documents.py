"""Scanned papers of an intake (F2.4, S2): accept, encrypt, show, rotate keys, purge.

Accepting a file: its type is read from its content (PDF, JPEG, PNG, TIFF by their first
bytes), never from its name or the browser's claim, and the file is then really opened
(Pillow decodes every frame of an image; pdfium opens the PDF and loads every page). An
empty file, another type, a damaged file, a PDF with JavaScript or a password, a file over
DOCUMENT_MAX_BYTES or DOCUMENT_MAX_PAGES is refused with a Japanese message per file;
several files of one upload are stored all together or none.

Encryption at rest (docs/documents.md): AES-256-GCM, a fresh 12-byte nonce per file, the
associated data ``intake_document:<id>:<key id>`` binding the ciphertext to its row and key.
The keys live outside the database and the repository: a key ring in the instance folder
(app/secrets.py, mode 0600, made on first use) or DOCUMENT_KEYS in the environment. Each row
keeps its key id; a missing or wrong key, a damaged ciphertext or a plaintext whose SHA-256
is not the row's raises :class:`DocumentKeyError` / :class:`DocumentIntegrityError`: never
garbage. ``rotate_key`` re-encrypts row by row (compare-and-set on the key id) while the
app serves; ``purge`` removes what the retention rule no longer allows to keep.

Who: 管理者 and 窓口職員 upload and read, only 管理者 delete (with a reason), 閲覧者 never
(docs/roles.md); every page shown, thumbnail and download is an audit event.
"""
from __future__ import annotations

import base64
import hashlib
import io
import os
import re
import threading
import unicodedata
import zlib
from dataclasses import dataclass, field
from datetime import datetime

import pypdfium2
import pypdfium2.raw as pdfium_c
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from dateutil.relativedelta import relativedelta
from flask import current_app
from flask_babel import gettext as _
from PIL import Image
from sqlalchemy import func, or_, select, update

from app import clock
from app import secrets as app_secrets
from app.models.card import Card
from app.models.document import CATEGORIES, CATEGORY_LABELS, DocumentBlob, IntakeDocument
from app.models.intake import Intake
from app.services import actors, audit, export_policy, unit
from app.services.errors import DomainError, InputError
from app.settings import parse_document_keys, settings

PDF, JPEG, PNG, TIFF = "application/pdf", "image/jpeg", "image/png", "image/tiff"
PIL_FORMATS = {JPEG: "JPEG", PNG: "PNG", TIFF: "TIFF"}
KEY_RING_FILE = "document_keys"
NONCE_BYTES = 12
SCREEN_DPI = 130  # the viewer's pages: sharp at 100 %, readable zoomed to 200 %
SCREEN_WIDTH = int(8.27 * SCREEN_DPI)  # an A4 width at that resolution (images scaled to it)
THUMBNAIL_SIZE = (180, 255)
# The longest side of a rendered page, whatever the page's size says (a 5 m square /MediaBox
# at 130 dpi would be a 26000-pixel bitmap of several GB): the viewer's pages and the
# thumbnails' first rendering.
PAGE_MAX_PIXELS = 3000
THUMBNAIL_MAX_PIXELS = 600
# A page larger than A0 (2384 x 3370 pt) with a margin is no scanned paper: refused.
PAGE_MAX_POINTS = 3500
OBJECT_STREAM_CAP = 16 * 1024 * 1024  # an object stream larger unpacked is refused
_PDFIUM = threading.Lock()  # pdfium is not thread-safe

# --- who may do what (docs/roles.md "Scanned papers") -------------------------------------
STAFF = ("ROLE_MANAGER", "ROLE_CLERK")
SUPERVISORS = ("ROLE_MANAGER",)


class DocumentsRefusedError(InputError):
    """Some files of an upload cannot be accepted; none was stored. ``failures`` lists
    (file name, why) for each."""

    def __init__(self, failures: list[tuple[str, str]]):
        super().__init__(_("Nothing was stored: %(n)d of the files cannot be accepted.",
                           n=len(failures)))
        self.failures = failures


class DocumentKeyError(DomainError):
    """The key a document was encrypted with is not available (or the ring is unreadable)."""


class DocumentIntegrityError(DomainError):
    """The stored bytes do not decrypt with the key, or not to the file that was stored."""


class DocumentRenderError(DomainError):
    """A page of a stored document could not be turned into an image (the file is kept)."""


# Who asks: the one actor of every service (app/services/actors.py).
DocumentActor = actors.CardActor
SYSTEM = actors.SYSTEM
actor_of = actors.actor_of
_name_of = actors.name_of


def may_read(actor: DocumentActor) -> bool:
    return actors.has_role(actor, STAFF)


def may_delete(actor: DocumentActor) -> bool:
    return actors.has_role(actor, SUPERVISORS)


def _require(actor: DocumentActor, keys: tuple[str, ...]) -> None:
    actors.check_roles(actor, keys, _("Your role does not allow this operation on scanned "
                                      "documents."))



# --- reading ------------------------------------------------------------------------------

def get_intake(session, intake_id: int | None) -> Intake | None:
    return session.get(Intake, intake_id) if intake_id else None


def get_document(session, document_id: int | None) -> IntakeDocument | None:
    return session.get(IntakeDocument, document_id) if document_id else None


def documents_of(session, intake_id: int) -> list[IntakeDocument]:
    """The papers of an intake, oldest first (the encrypted bytes are not loaded)."""
    return list(session.execute(select(IntakeDocument).where(
        IntakeDocument.intake_id == intake_id).order_by(IntakeDocument.id)).scalars())


# --- checking a file by its content ---------------------------------------------------------

def sniff(data: bytes) -> str | None:
    """The type by the first bytes: PDF, JPEG, PNG or TIFF; anything else None."""
    if data.startswith(b"%PDF-"):
        return PDF
    if data.startswith(b"\xff\xd8\xff"):
        return JPEG
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return PNG
    if data.startswith(b"II*\x00") or data.startswith(b"MM\x00*"):
        return TIFF
    return None


@dataclass(frozen=True)
class Checked:
    media_type: str
    pages: int


_NAME = re.compile(rb"/([^\s/<>\[\]()\{\}%]+)")
_ESCAPE = re.compile(rb"#([0-9A-Fa-f]{2})")
ACTIVE_NAMES = {"JavaScript", "JS"}


def _names(data: bytes) -> set[str]:
    """Every PDF name in ``data``, with #-escapes decoded (``/J#61vaScript`` is JavaScript)."""
    found = set()
    for match in _NAME.finditer(data):
        raw = match.group(1)
        if b"#" in raw:
            raw = _ESCAPE.sub(lambda m: bytes([int(m.group(1), 16)]), raw)
        found.add(raw.decode("latin-1"))
    return found


class _Name(str):
    """A PDF name (``/FlateDecode``), #-escapes decoded."""


@dataclass(frozen=True)
class _Ref:
    number: int
    generation: int


_LEX = re.compile(rb"""
    (?P<space>[\x00\t\n\x0c\r ]+|%[^\r\n]*)
  | (?P<open><<|\[)
  | (?P<close>>>|\])
  | (?P<hex><[^>]*>)
  | (?P<string>\()
  | (?P<name>/[^\x00\t\n\x0c\r ()<>\[\]{}/%]*)
  | (?P<word>[^\x00\t\n\x0c\r ()<>\[\]{}/%]+)
  | (?P<other>.)
""", re.X | re.S)
_PARENS = re.compile(rb"[()\\]")
_MAX_NESTING = 256
_INT = re.compile(rb"[+-]?\d+")


def _string_end(data: bytes, position: int) -> int:
    """Where the literal string opened just before ``position`` ends (nested parentheses
    and backslash escapes); the end of the file when it never closes."""
    depth = 1
    while depth:
        match = _PARENS.search(data, position)
        if match is None:
            return len(data)
        position = match.end()
        if match.group() == b"\\":
            position += 1
        else:
            depth += 1 if match.group() == b"(" else -1
    return position


def _as_dict(items: list) -> dict:
    return {items[i]: items[i + 1] for i in range(0, len(items) - 1, 2)
            if isinstance(items[i], _Name)}


def _streams(data: bytes):
    """Each stream of the file as (its dictionary, its data), read the way a PDF reader
    reads them: a small tokenizer (strings, comments and nesting respected, so a fake
    ``obj`` or ``>>`` inside a string fools nothing), the data by a direct ``/Length`` when
    ``endstream`` follows it, else up to the next ``endstream`` (``_Ref`` lengths are
    resolved when the length object is a plain one in the file)."""
    stack: list[tuple[str, list]] = []
    last = None  # the last complete top-level object
    position, size = 0, len(data)
    while position < size:
        match = _LEX.match(data, position)
        kind, token, position = match.lastgroup, match.group(), match.end()
        value = None
        if kind == "space":
            continue
        if kind == "open":
            if len(stack) >= _MAX_NESTING:  # pdfium gives up far earlier
                _refuse(_("The PDF file is damaged or incomplete and cannot be opened."))
            stack.append((token, []))
            continue
        if kind == "close":
            if not stack or (stack[-1][0] == b"<<") != (token == b">>"):
                last = None  # unbalanced: no dictionary to pair with a stream
                continue
            opened, items = stack.pop()
            value = _as_dict(items) if opened == b"<<" else items
        elif kind == "string":
            position = _string_end(data, position)
            value = b""
        elif kind == "hex":
            value = b""
        elif kind == "name":
            value = _Name(_ESCAPE.sub(lambda m: bytes([int(m.group(1), 16)]),
                                      token[1:]).decode("latin-1"))
        elif kind == "word" and _INT.fullmatch(token):
            value = int(token)
        elif kind == "word" and token == b"R":
            items = stack[-1][1] if stack else None
            if items and len(items) >= 2 and all(type(v) is int for v in items[-2:]):
                value = _Ref(items[-2], items[-1])
                del items[-2:]
        elif kind == "word" and token == b"stream" and not stack and isinstance(last, dict):
            begin = position + (2 if data.startswith(b"\r\n", position) else
                                1 if data[position:position + 1] in (b"\n", b"\r") else 0)
            end = _stream_end(data, begin, last.get("Length"))
            yield last, data[begin:end]
            position, last = end, None
            continue
        else:
            value = token
        if stack:
            stack[-1][1].append(value)
        else:
            last = value


def _stream_end(data: bytes, begin: int, length) -> int:
    if isinstance(length, _Ref):
        found = re.search(rb"(?<![0-9])%d\s+%d\s+obj\s*(\d+)\s*endobj" %
                          (length.number, length.generation), data)
        length = int(found.group(1)) if found else None
    if type(length) is int and length >= 0 and re.match(
            rb"\s*endstream", data[begin + length:begin + length + 64]):
        return begin + length
    found = data.find(b"endstream", begin)
    return found if found >= 0 else len(data)


class _Unreadable(Exception):
    """An object stream this check cannot unpack (``reason`` says which filter)."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class _TooLarge(Exception):
    """An object stream larger than OBJECT_STREAM_CAP once unpacked."""


def _capped(out: bytes) -> bytes:
    if len(out) > OBJECT_STREAM_CAP:
        raise _TooLarge()
    return out


def _inflate(data: bytes) -> bytes:
    try:
        return _capped(zlib.decompressobj().decompress(data, OBJECT_STREAM_CAP + 1))
    except zlib.error:
        raise _Unreadable("FlateDecode") from None


def _unhex(data: bytes) -> bytes:
    """As pdfium: blanks and other characters skipped, ``>`` ends it, an odd digit is x0."""
    digits = re.sub(rb"[^0-9A-Fa-f]", b"", data.split(b">", 1)[0])
    if len(digits) > 2 * OBJECT_STREAM_CAP:
        raise _TooLarge()
    return bytes.fromhex((digits + b"0" * (len(digits) % 2)).decode("ascii"))


def _un85(data: bytes) -> bytes:
    text = re.sub(rb"[^!-uz]", b"", data.split(b"~", 1)[0])
    if len(text) > OBJECT_STREAM_CAP + OBJECT_STREAM_CAP // 4 + 5:
        raise _TooLarge()
    try:
        return _capped(base64.a85decode(text))
    except ValueError:
        raise _Unreadable("ASCII85Decode") from None


def _unrun(data: bytes) -> bytes:
    out, position = bytearray(), 0
    while position < len(data):
        code = data[position]
        if code == 128:
            break
        if code < 128:
            out += data[position + 1:position + 2 + code]
            position += 2 + code
        else:
            out += data[position + 1:position + 2] * (257 - code)
            position += 2
        if len(out) > OBJECT_STREAM_CAP:
            raise _TooLarge()
    return bytes(out)


# The filters an object stream may use here (with pdfium's short names); any other (LZW,
# Crypt, an image codec, a filter named through a reference) makes the file unreadable to
# this check, so it is refused rather than let through unread.
_FILTERS = {"FlateDecode": _inflate, "Fl": _inflate, "ASCIIHexDecode": _unhex, "AHx": _unhex,
            "ASCII85Decode": _un85, "A85": _un85, "RunLengthDecode": _unrun, "RL": _unrun}


def _unpack(dictionary: dict, data: bytes) -> bytes:
    filters = dictionary.get("Filter")
    params = dictionary.get("DecodeParms", dictionary.get("DP"))
    filters = [] if filters is None else filters if isinstance(filters, list) else [filters]
    params = params if isinstance(params, list) else [params] * len(filters)
    for index, name in enumerate(filters):
        decoder = _FILTERS.get(name) if isinstance(name, _Name) else None
        if decoder is None:
            raise _Unreadable(str(name) if isinstance(name, _Name) else "?")
        parameter = params[index] if index < len(params) else None
        if parameter is not None and not (isinstance(parameter, dict) and parameter.get(
                "Predictor", 1) in (1, None)):
            raise _Unreadable(f"{name} Predictor")  # predicted bytes: not scanned here
        data = decoder(data)
    return _capped(data)


def _is_object_stream(dictionary: dict) -> bool:
    kind = dictionary.get("Type")
    return kind == "ObjStm" or isinstance(kind, _Ref) or "First" in dictionary


def pdf_names(data: bytes) -> set[str]:
    """The names of the file and of its object streams (where a JavaScript action can hide
    from a plain scan of the bytes), unpacked whatever their filters; an object stream this
    check cannot unpack, or one over OBJECT_STREAM_CAP unpacked, refuses the file."""
    found = _names(data)
    for dictionary, stream in _streams(data):
        if not _is_object_stream(dictionary):
            continue
        try:
            found |= _names(_unpack(dictionary, stream))
        except _Unreadable as error:
            _refuse(_("The PDF file stores its contents in a compressed form this system "
                      "cannot check (%(filter)s), so it cannot be stored. Save it again as "
                      "a plain PDF, for example from the scanner's software.",
                      filter=error.reason))
        except _TooLarge:
            _refuse(_("A part of the PDF file is larger than %(mb)s MB once unpacked, so it "
                      "cannot be checked and is not stored.",
                      mb=_megabytes(OBJECT_STREAM_CAP)))
    return found


def _refuse(message: str) -> None:
    raise InputError(message)


def _check_pdf(data: bytes) -> int:
    damaged = _("The PDF file is damaged or incomplete and cannot be opened.")
    if b"%%EOF" not in data[-2048:]:
        _refuse(damaged)  # cut off (an interrupted transfer or scan)
    names = pdf_names(data)
    if names & ACTIVE_NAMES:
        _refuse(_("The PDF file contains JavaScript (a program), so it cannot be stored. "
                  "Scan the paper again or save it as a plain PDF."))
    if "Encrypt" in names:
        _refuse(_("The PDF file is protected by a password or encrypted, so it cannot be "
                  "stored. Save it without protection."))
    with _PDFIUM:
        try:
            pdf = pypdfium2.PdfDocument(data)
        except pypdfium2.PdfiumError as error:
            if getattr(error, "err_code", None) == pdfium_c.FPDF_ERR_PASSWORD:
                _refuse(_("The PDF file is protected by a password or encrypted, so it "
                          "cannot be stored. Save it without protection."))
            _refuse(damaged)
        try:
            if pdfium_c.FPDF_GetSecurityHandlerRevision(pdf.raw) != -1:
                _refuse(_("The PDF file is protected by a password or encrypted, so it "
                          "cannot be stored. Save it without protection."))
            if pdfium_c.FPDFDoc_GetJavaScriptActionCount(pdf.raw) > 0:
                _refuse(_("The PDF file contains JavaScript (a program), so it cannot be "
                          "stored. Scan the paper again or save it as a plain PDF."))
            pages = len(pdf)
            if pages < 1:
                _refuse(damaged)
            if pages > settings().document_max_pages:
                return pages
            for index in range(pages):
                page = pdf[index]
                width, height = page.get_size()
                actions = [pdfium_c.FPDF_GetPageAAction(page.raw, event) for event in
                           (pdfium_c.FPDFPAGE_AACTION_OPEN, pdfium_c.FPDFPAGE_AACTION_CLOSE)]
                page.close()
                if any(actions):  # no scanned paper runs anything when a page opens
                    _refuse(_("The PDF file contains actions that run by themselves when a "
                              "page is opened or closed, so it cannot be stored. Scan the "
                              "paper again or save it as a plain PDF."))
                if width <= 0 or height <= 0:
                    _refuse(damaged)
                if max(width, height) > PAGE_MAX_POINTS:
                    _refuse(_("Page %(page)d of the PDF file is %(width)d × %(height)d mm, "
                              "larger than any paper scanned here (at most A0). Save the "
                              "scan at the paper's real size.", page=index + 1,
                              width=round(width * 25.4 / 72), height=round(height * 25.4 / 72)))
        except pypdfium2.PdfiumError:
            _refuse(damaged)
        finally:
            pdf.close()
    return pages


def _over_pixel_limit(size: tuple[int, int]) -> bool:
    """More pixels than Pillow's decompression-bomb limit (read each time, never changed)."""
    limit = Image.MAX_IMAGE_PIXELS
    return bool(limit) and size[0] * size[1] > limit


def _check_image(data: bytes, media_type: str) -> int:
    """Decode every frame. The size of each frame is compared with the pixel limit before
    it is decoded, here: Pillow's own check only warns below twice the limit, and turning
    its warning into an error (warnings.catch_warnings) would change the filters of every
    thread of the process."""
    too_large = _("The image is too large (too many pixels) to be shown safely.")
    try:
        with Image.open(io.BytesIO(data), formats=[PIL_FORMATS[media_type]]) as image:
            frames = getattr(image, "n_frames", 1)
            if frames > settings().document_max_pages:
                return frames
            for index in range(frames):
                image.seek(index)
                if _over_pixel_limit(image.size):
                    _refuse(too_large)
                image.load()
    except InputError:
        raise
    except (Image.DecompressionBombWarning, Image.DecompressionBombError):
        _refuse(too_large)  # over twice the limit (or warnings are errors in this process)
    except Exception:  # noqa: BLE001 - any decoding failure of a file from outside
        _refuse(_("The image file is damaged or incomplete and cannot be opened."))
    return frames


def inspect_file(data: bytes) -> Checked:
    """What the file is, by its content, after opening it; InputError says why not."""
    limit = settings().document_max_bytes
    if not data:
        _refuse(_("The file is empty."))
    if len(data) > limit:
        _refuse(_("The file is larger than %(mb)s MB, the limit for one file.",
                  mb=_megabytes(limit)))
    media_type = sniff(data)
    if media_type is None:
        _refuse(_("This is not a PDF, JPEG, PNG or TIFF file (checked by its content, not "
                  "its name). Only scanned papers in these formats can be stored."))
    pages = _check_pdf(data) if media_type == PDF else _check_image(data, media_type)
    if pages > settings().document_max_pages:
        _refuse(_("The file has %(pages)d pages; at most %(max)d pages per file.",
                  pages=pages, max=settings().document_max_pages))
    return Checked(media_type, pages)


def _megabytes(size: int) -> str:
    return f"{size / 1024 / 1024:g}"


def clean_filename(name: str | None) -> str:
    """The name as uploaded, without folders or control characters, at most 255."""
    name = str(name or "").replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in unicodedata.normalize("NFC", name)
                   if unicodedata.category(ch) not in ("Cc", "Cf", "Cs")).strip()
    if len(name) > 255:
        stem, dot, extension = name.rpartition(".")
        name = (stem[:250 - len(extension)] + dot + extension) if dot else name[:255]
    return name or "scan"


EXTENSIONS = {PDF: ".pdf", JPEG: ".jpg", PNG: ".png", TIFF: ".tif"}


def download_name(document: IntakeDocument) -> str:
    """The name to download the original under: the uploaded name's stem with the extension
    of the type read from the content (a PDF uploaded as ``x.exe`` is ``x.pdf``), so the
    name never makes the file open as something else."""
    name = clean_filename(document.filename)
    stem, dot, _extension = name.rpartition(".")
    stem = (stem if dot else name).strip(" .") or "scan"
    return stem + EXTENSIONS.get(document.media_type, ".bin")


# --- keys ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class KeyRing:
    current: str
    keys: dict[str, bytes]
    source: str  # "environment" or the ring file's path

    @property
    def from_environment(self) -> bool:
        return self.source == "environment"


_RING_CACHE: dict[str, tuple[float, tuple[str, dict[str, bytes]]]] = {}


def ring_path() -> str:
    return os.path.join(current_app.instance_path, KEY_RING_FILE)


def key_ring() -> KeyRing:
    """The keys: DOCUMENT_KEYS from the environment, else the ring file (read again when
    it changed, so a rotation by the CLI reaches every running worker at once). Nothing is
    created here: the first ring is made by an upload while no document exists
    (``_ring_for_writing``)."""
    config = settings()
    if config.document_keys:
        return KeyRing(config.document_key_current, parse_document_keys(config.document_keys),
                       "environment")
    path = ring_path()
    try:
        mtime = os.stat(path).st_mtime_ns
    except FileNotFoundError:
        raise DocumentKeyError(_("The document key ring is missing, so no scanned document "
                                 "can be opened. Ask the system administrator.")) from None
    cached = _RING_CACHE.get(path)
    if cached is None or cached[0] != mtime:
        try:
            ring = app_secrets.read_key_ring(path)
        except (ValueError, KeyError, TypeError) as error:
            current_app.logger.error("document key ring %s unreadable: %s", path, error)
            raise DocumentKeyError(_("The document key ring cannot be read, so no scanned "
                                     "document can be opened. Ask the system "
                                     "administrator.")) from None
        if ring is None:
            raise DocumentKeyError(_("The document key ring is missing, so no scanned "
                                     "document can be opened. Ask the system "
                                     "administrator."))
        cached = _RING_CACHE[path] = (mtime, ring)
    return KeyRing(cached[1][0], cached[1][1], path)


def missing_keys(session, ring: KeyRing) -> dict[str, int]:
    """The key ids rows are encrypted with that ``ring`` lacks, with how many rows each."""
    return {key_id: count for key_id, count in session.execute(
        select(IntakeDocument.key_id, func.count()).group_by(IntakeDocument.key_id))
        if key_id not in ring.keys}


_COMPARED: set[tuple] = set()  # (database, ring) pairs already compared


def _log_missing(ring: KeyRing, missing: dict[str, int]) -> None:
    current_app.logger.error(
        "document key ring %s lacks the key(s) %s used by %d document(s): they cannot be "
        "opened; restore instance/document_keys from the backup or set DOCUMENT_KEYS",
        ring.source, ", ".join(sorted(missing)), sum(missing.values()))


def _ring_for_reading(session) -> KeyRing:
    """The ring for reading; on its first use in this process (and after every change of
    it) the key ids of the rows are compared with it, and any missing is logged loudly."""
    ring = key_ring()
    signature = (str(session.get_bind().url), ring.source, ring.current,
                 hash(tuple(sorted(ring.keys.items()))))
    if signature not in _COMPARED:
        missing = missing_keys(session, ring)
        if missing:
            _log_missing(ring, missing)
        _COMPARED.add(signature)
    return ring


def _ring_for_writing(session) -> KeyRing:
    """The ring to encrypt with (an upload, a rotation). The first ring is made only while
    no document exists: a ring made when the old one is lost would encrypt new documents
    with a key the restored original lacks. A ring lacking a key some row uses is refused
    for the same reason."""
    if not settings().document_keys and not os.path.exists(ring_path()):
        stored = session.execute(select(func.count()).select_from(IntakeDocument)).scalar_one()
        if stored:
            current_app.logger.error("document key ring %s is missing while %d document(s) "
                                     "exist: no new ring is made", ring_path(), stored)
            raise DocumentKeyError(_(
                "The document key ring (instance/document_keys) is missing, but %(n)d stored "
                "documents are encrypted with its keys. No new key ring is made, since "
                "documents stored under it would no longer open once the original is "
                "restored: restore instance/document_keys from the backup, or set "
                "DOCUMENT_KEYS. Ask the system administrator.", n=stored))
        app_secrets.ensure_key_ring(ring_path(), app_secrets.new_key_id(clock.now()))
    ring = key_ring()
    missing = missing_keys(session, ring)
    if missing:
        _log_missing(ring, missing)
        raise DocumentKeyError(_(
            "The keys %(keys)s, with which %(n)d stored documents are encrypted, are not in "
            "the document key ring, so nothing new is encrypted with it. Restore "
            "instance/document_keys from the backup, or set DOCUMENT_KEYS with these keys. "
            "Ask the system administrator.", keys=", ".join(sorted(missing)),
            n=sum(missing.values())))
    return ring


def associated_data(document_id: int, key_id: str) -> bytes:
    """What the ciphertext is bound to: its row and its key (a blob copied onto another
    row, or a row's key id changed, no longer decrypts)."""
    return f"intake_document:{document_id}:{key_id}".encode("ascii")


def _seal(ring: KeyRing, document_id: int, plaintext: bytes) -> tuple[str, bytes, bytes]:
    nonce = os.urandom(NONCE_BYTES)
    key_id = ring.current
    ciphertext = AESGCM(ring.keys[key_id]).encrypt(nonce, plaintext,
                                                     associated_data(document_id, key_id))
    return key_id, nonce, ciphertext


def _unseal(ring: KeyRing, document_id: int, key_id: str, nonce: bytes, ciphertext: bytes,
            sha256: str) -> bytes:
    key = ring.keys.get(key_id)
    if key is None:
        raise DocumentKeyError(_("The key %(key)s this document was encrypted with is not "
                                 "available on this server, so it cannot be opened. Ask the "
                                 "system administrator.", key=key_id))
    try:
        plaintext = AESGCM(key).decrypt(nonce, ciphertext, associated_data(document_id, key_id))
    except (InvalidTag, ValueError):
        raise DocumentIntegrityError(_("This document could not be decrypted: the key does "
                                       "not fit or the stored data is damaged. Nothing is "
                                       "shown; ask the system administrator.")) from None
    if hashlib.sha256(plaintext).hexdigest() != sha256:
        raise DocumentIntegrityError(_("This document does not match the file that was "
                                       "stored (its checksum differs). Nothing is shown; ask "
                                       "the system administrator."))
    return plaintext


def _stored(session, document_id: int):
    """The row's key id, hash and its encrypted bytes, read in one statement (so a
    rotation committing in between cannot pair an old key id with a new ciphertext)."""
    return session.execute(
        select(IntakeDocument.key_id, IntakeDocument.sha256, DocumentBlob.nonce,
               DocumentBlob.ciphertext)
        .join(DocumentBlob, DocumentBlob.document_id == IntakeDocument.id)
        .where(IntakeDocument.id == document_id)).one_or_none()


def plaintext_of(session, document: IntakeDocument) -> bytes:
    """The document's file, decrypted and checked against its SHA-256."""
    row = _stored(session, document.id)
    if row is None:
        raise DocumentIntegrityError(_("The stored data of this document is missing."))
    return _unseal(_ring_for_reading(session), document.id, row.key_id, row.nonce,
                   row.ciphertext, row.sha256)


# --- uploading ----------------------------------------------------------------------------

@unit.operation
def upload(session, intake_id: int, category: str, files: list[tuple[str, bytes]], *,
           actor: DocumentActor = SYSTEM) -> list[IntakeDocument]:
    """Store the files of one upload under the intake, encrypted; all or none."""
    _require(actor, STAFF)
    intake = get_intake(session, intake_id)
    if intake is None:
        raise InputError(_("This application does not exist."))
    if category not in CATEGORIES:
        raise InputError(_("Choose what kind of papers these are."))
    if not files:
        raise InputError(_("Choose one or more scanned files."))
    if len(files) > settings().document_max_files:
        raise InputError(_("At most %(n)d files at a time.", n=settings().document_max_files))
    accepted, failures = [], []
    for name, data in files:
        filename = clean_filename(name)
        try:
            accepted.append((filename, data, inspect_file(data)))
        except InputError as error:
            failures.append((filename, str(error.message)))
    if failures:
        raise DocumentsRefusedError(failures)
    ring = _ring_for_writing(session)
    now, uploader = clock.now(), _name_of(actor)
    stored = []
    for filename, data, checked in accepted:
        document = IntakeDocument(
            intake_id=intake.id, category=category, filename=filename,
            media_type=checked.media_type, size=len(data), pages=checked.pages,
            sha256=hashlib.sha256(data).hexdigest(), key_id=ring.current,
            uploaded_at=now, uploaded_by=uploader)
        session.add(document)
        session.flush()  # its id goes into the associated data
        key_id, nonce, ciphertext = _seal(ring, document.id, data)
        session.add(DocumentBlob(document_id=document.id, nonce=nonce, ciphertext=ciphertext))
        stored.append(document)
    session.flush()
    return stored


# --- showing ------------------------------------------------------------------------------

def _pil_page(data: bytes, media_type: str, page: int, dpi: int,
              max_pixels: int) -> Image.Image:
    """The page at ``dpi``, but never with a side longer than ``max_pixels``."""
    if media_type == PDF:
        with _PDFIUM:
            pdf = pypdfium2.PdfDocument(data)
            try:
                pdf_page = pdf[page - 1]
                longest = max(pdf_page.get_size())
                scale = min(dpi / 72, max_pixels / longest) if longest > 0 else dpi / 72
                rendered = pdf_page.render(scale=scale).to_pil()
            finally:
                pdf.close()
        return rendered
    image = Image.open(io.BytesIO(data), formats=[PIL_FORMATS[media_type]])
    image.seek(page - 1)
    image.load()
    resolution = image.info.get("dpi", (300, 300))[0] or 300
    width = min(int(image.width * dpi / resolution), int(8.27 * dpi * 1.5))
    width = min(width, int(max_pixels * image.width / max(image.width, image.height)))
    frame = image.convert("L" if image.mode in ("1", "L", "I;16") else "RGB")
    if frame.width > width > 0:
        frame = frame.resize((width, max(1, round(frame.height * width / frame.width))),
                             Image.Resampling.LANCZOS)
    return frame


def render_png(data: bytes, media_type: str, page: int, *, dpi: int = SCREEN_DPI,
               box: tuple[int, int] | None = None) -> bytes:
    """Page ``page`` (1-based) as PNG, for any browser: PDF pages by pdfium, TIFF frames
    and images by Pillow; ``box`` fits it into a thumbnail. The longest side is at most
    PAGE_MAX_PIXELS (THUMBNAIL_MAX_PIXELS before the thumbnail is made) whatever the page
    claims; any failure is a :class:`DocumentRenderError`, never a crash."""
    try:
        image = _pil_page(data, media_type, page, dpi,
                          THUMBNAIL_MAX_PIXELS if box else PAGE_MAX_PIXELS)
        if box:
            image.thumbnail(box, Image.Resampling.LANCZOS)
        out = io.BytesIO()
        image.save(out, "PNG", compress_level=3)
    except Exception as error:  # noqa: BLE001 - pdfium, Pillow, memory: the page is not shown
        current_app.logger.warning("page %d of a %s document not rendered: %r", page,
                                   media_type, error)
        raise DocumentRenderError(_("This page could not be displayed. The stored file is "
                                    "kept: download the original to see it, or ask the "
                                    "system administrator.")) from None
    return out.getvalue()


def _audit_read(action: str, document: IntakeDocument, **detail) -> None:
    audit.record_event(action, "intake_document", document.id,
                       {"intake": document.intake_id, "filename": document.filename, **detail})


def page_png(session, document: IntakeDocument, page: int, *,
             actor: DocumentActor = SYSTEM) -> bytes:
    """A page for the viewer (audited: who saw which page of which paper)."""
    _require(actor, STAFF)
    if not 1 <= page <= document.pages:
        raise InputError(_("This page does not exist."))
    png = render_png(plaintext_of(session, document), document.media_type, page)
    _audit_read(audit.ACTION_VIEW, document, page=page)
    return png


def thumbnail_png(session, document: IntakeDocument, *,
                  actor: DocumentActor = SYSTEM) -> bytes:
    """The first page, small (audited as a view of page 1)."""
    _require(actor, STAFF)
    png = render_png(plaintext_of(session, document), document.media_type, 1, dpi=40,
                     box=THUMBNAIL_SIZE)
    _audit_read(audit.ACTION_VIEW, document, page=1, thumbnail=True)
    return png


def original(session, document: IntakeDocument, *, actor: DocumentActor = SYSTEM,
             encrypted: bool = False) -> bytes:
    """The file as it was uploaded (audited download, with whether it leaves as an
    encrypted ZIP: ``encrypted``, the caller wraps it; a plain download is refused while
    the office requires encryption of personal data)."""
    _require(actor, STAFF)
    export_policy.require(session, "document_original", encrypted)
    data = plaintext_of(session, document)
    _audit_read(audit.ACTION_DOWNLOAD, document, encrypted=encrypted)
    return data


# --- deleting -----------------------------------------------------------------------------

@unit.operation
def delete(session, document_id: int, reason: str | None, *,
           actor: DocumentActor = SYSTEM) -> IntakeDocument:
    """A supervisor removes a document (a wrong upload), saying why (in the audit trail)."""
    _require(actor, SUPERVISORS)
    reason = " ".join(str(reason or "").split())
    if not reason:
        raise InputError(_("Write the reason for deleting this document."))
    if len(reason) > 200:
        raise InputError(_("Enter at most %(n)d characters (you entered %(given)d).",
                           n=200, given=len(reason)))
    document = get_document(session, document_id)
    if document is None:
        raise InputError(_("This document no longer exists."))
    audit.record_in_transaction(session, audit.ACTION_DELETE, "intake_document", document.id,
                                {"reason": reason, "intake": document.intake_id,
                                 "filename": document.filename})
    session.delete(document)
    session.flush()
    return document


# --- key rotation ---------------------------------------------------------------------------

@dataclass
class RotationReport:
    current: str
    added: bool
    reencrypted: int = 0
    skipped: int = 0  # changed by someone else meanwhile (deleted, or rotated by another run)
    failed: list[tuple[int, str]] = field(default_factory=list)
    unused_keys: list[str] = field(default_factory=list)


def rotate_key(session, *, add_key: bool = True) -> RotationReport:
    """Make a new key current (ring file) and re-encrypt every document under it, one row
    per short transaction, while the app keeps serving. With DOCUMENT_KEYS the operator
    puts the new key into the environment first; this re-encrypts under its current key."""
    ring = _ring_for_writing(session)
    added = False
    if add_key and not ring.from_environment:
        app_secrets.add_ring_key(ring.source, app_secrets.new_key_id(clock.now()))
        ring, added = key_ring(), True
    report = RotationReport(ring.current, added)
    for _pass in range(3):  # uploads made meanwhile with the previous key: caught up again
        ids = list(session.execute(select(IntakeDocument.id).where(
            IntakeDocument.key_id != ring.current).order_by(IntakeDocument.id)).scalars())
        if not ids:
            break
        for document_id in ids:
            _reencrypt_one(session, ring, document_id, report)
    used = set(session.execute(select(IntakeDocument.key_id).distinct()).scalars())
    report.unused_keys = sorted(k for k in ring.keys if k != ring.current and k not in used)
    return report


def _reencrypt_one(session, ring: KeyRing, document_id: int, report: RotationReport) -> None:
    try:
        with unit.transaction(session):
            row = _stored(session, document_id)
            if row is None or row.key_id == ring.current:
                report.skipped += 1
                return
            plaintext = _unseal(ring, document_id, row.key_id, row.nonce, row.ciphertext,
                                row.sha256)
            key_id, nonce, ciphertext = _seal(ring, document_id, plaintext)
            changed = session.execute(
                update(IntakeDocument).where(IntakeDocument.id == document_id,
                                             IntakeDocument.key_id == row.key_id)
                .values(key_id=key_id)).rowcount
            if changed != 1:  # someone else got there first: leave it to them
                report.skipped += 1
                raise _Skip()  # rolls this row's unit back
            session.execute(update(DocumentBlob).where(DocumentBlob.document_id == document_id)
                            .values(nonce=nonce, ciphertext=ciphertext))
            audit.record_in_transaction(session, audit.ACTION_UPDATE, "intake_document",
                                        document_id, {"key_id": [row.key_id, key_id]})
        report.reencrypted += 1
    except _Skip:
        pass
    except DomainError as error:
        report.failed.append((document_id, str(error.message)))


class _Skip(Exception):
    """Leave this row (rolled back): another process changed it first."""


def drop_unused_keys(report: RotationReport) -> list[str]:
    """Remove from the ring file the old keys no document uses any more."""
    ring = key_ring()
    if ring.from_environment or not report.unused_keys:
        return []
    app_secrets.drop_ring_keys(ring.source, set(report.unused_keys))
    return report.unused_keys


# --- checking everything ----------------------------------------------------------------------

@dataclass
class VerifyReport:
    checked: int = 0
    failed: list[tuple[int, str]] = field(default_factory=list)


def verify_all(session) -> VerifyReport:
    """Decrypt every document and compare its SHA-256 (nothing is written)."""
    report = VerifyReport()
    ring = _ring_for_reading(session)
    ids = list(session.execute(select(IntakeDocument.id).order_by(IntakeDocument.id)).scalars())
    for document_id in ids:
        row = _stored(session, document_id)
        report.checked += 1
        try:
            if row is None:
                raise DocumentIntegrityError(_("The stored data of this document is missing."))
            _unseal(ring, document_id, row.key_id, row.nonce, row.ciphertext, row.sha256)
        except DomainError as error:
            report.failed.append((document_id, str(error.message)))
    return report


# --- retention ------------------------------------------------------------------------------

@dataclass(frozen=True)
class PurgeItem:
    document_id: int
    intake_id: int
    application_id: str
    filename: str
    uploaded_at: datetime
    ended_at: datetime  # hand-over, discard of the card, or withdrawal
    ended_by: str  # "handed_over", "discarded" or "withdrawn"


def purge_candidates(session, now: datetime | None = None) -> list[PurgeItem]:
    """Documents whose intake ended (its card handed over or discarded, or the application
    withdrawn) more than DOCUMENT_RETENTION_YEARS ago."""
    now = now or clock.now()
    cutoff = now - relativedelta(years=settings().document_retention_years)
    handed = func.coalesce(Card.handed_over_at, Intake.handed_over_at)
    rows = session.execute(
        select(IntakeDocument.id, IntakeDocument.intake_id, Intake.application_id,
               IntakeDocument.filename, IntakeDocument.uploaded_at, handed.label("handed"),
               Card.discarded_at, Intake.withdrawn_at)
        .join(Intake, Intake.id == IntakeDocument.intake_id)
        .outerjoin(Card, Card.application_id == Intake.application_id)
        .where(or_(handed < cutoff, Card.discarded_at < cutoff, Intake.withdrawn_at < cutoff))
        .order_by(IntakeDocument.id))
    items = []
    for row in rows:
        ended_by, ended_at = next(
            (kind, when) for kind, when in (("handed_over", row.handed),
                                            ("discarded", row.discarded_at),
                                            ("withdrawn", row.withdrawn_at))
            if when is not None and when < cutoff)
        items.append(PurgeItem(row.id, row.intake_id, row.application_id, row.filename,
                               row.uploaded_at, ended_at, ended_by))
    return items


@unit.operation
def purge(session, items: list[PurgeItem]) -> int:
    """Remove the listed documents (and their encrypted bytes); audited as deletes."""
    removed = 0
    for item in items:
        document = session.get(IntakeDocument, item.document_id)
        if document is None:
            continue
        audit.record_in_transaction(session, audit.ACTION_DELETE, "intake_document",
                                    document.id, {"reason": "retention", "intake":
                                                  document.intake_id,
                                                  "filename": document.filename})
        session.delete(document)
        removed += 1
    session.flush()
    return removed


def category_choices() -> list[tuple[str, str]]:
    return [(code, str(label)) for code, label in CATEGORY_LABELS.items()]
