"""Files for the scanned-document tests and bench: pages drawn with Pillow (PDF, TIFF, PNG,
JPEG), and hand-written PDFs with JavaScript in the places it can hide."""
from __future__ import annotations

import io
import zlib

from PIL import Image, ImageDraw

A4_INCHES = (8.27, 11.69)


def page_image(number: int, dpi: int = 100, text: str = "APPLICATION FORM") -> Image.Image:
    """An A4 page with a frame, ruled lines, boxes and the page number."""
    width, height = int(A4_INCHES[0] * dpi), int(A4_INCHES[1] * dpi)
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    unit = dpi / 10
    draw.rectangle([unit * 5, unit * 5, width - unit * 5, height - unit * 5], outline="black",
                   width=max(1, dpi // 50))
    for row in range(12):
        y = unit * (12 + row * 8)
        draw.line([unit * 8, y, width - unit * 8, y], fill=(60, 60, 60), width=max(1, dpi // 100))
        draw.rectangle([unit * 8, y + unit, unit * 8 + (row + 3) * unit * 4, y + unit * 5],
                       outline=(0, 0, 120))
    draw.ellipse([width - unit * 30, unit * 8, width - unit * 10, unit * 28], outline="red",
                 width=max(1, dpi // 40))
    label = f"PAGE {number} {text}"
    for repeat in range(6):
        draw.text((unit * 10, unit * (14 + repeat * 16)), label, fill="black")
    return image


def make_pdf(pages: int = 3, dpi: int = 100) -> bytes:
    images = [page_image(n + 1, dpi) for n in range(pages)]
    out = io.BytesIO()
    images[0].save(out, "PDF", save_all=True, append_images=images[1:], resolution=dpi)
    return out.getvalue()


def make_tiff(frames: int = 3, dpi: int = 100) -> bytes:
    images = [page_image(n + 1, dpi) for n in range(frames)]
    out = io.BytesIO()
    images[0].save(out, "TIFF", save_all=True, append_images=images[1:], dpi=(dpi, dpi),
                   compression="tiff_deflate")
    return out.getvalue()


def make_png(dpi: int = 80) -> bytes:
    out = io.BytesIO()
    page_image(1, dpi).save(out, "PNG", dpi=(dpi, dpi))
    return out.getvalue()


def make_jpeg(dpi: int = 80) -> bytes:
    out = io.BytesIO()
    page_image(1, dpi).save(out, "JPEG", quality=80, dpi=(dpi, dpi))
    return out.getvalue()


def raw_pdf(objects: list[bytes], root: int = 1) -> bytes:
    """A PDF from object bodies (object n is objects[n-1]) with a correct xref table."""
    out = bytearray(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for offset in offsets:
        out += b"%010d 00000 n \n" % offset
    out += (b"trailer\n<< /Size %d /Root %d 0 R >>\nstartxref\n%d\n%%%%EOF\n"
            % (len(objects) + 1, root, xref))
    return bytes(out)


def _page_objects(extra_catalog: bytes = b"", extra_page: bytes = b"") -> list[bytes]:
    content = b"BT /F1 24 Tf 72 720 Td (Application form) Tj ET"
    return [
        b"<< /Type /Catalog /Pages 2 0 R " + extra_catalog + b">>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> " + extra_page + b">>",
        b"<< /Length %d >>\nstream\n" % len(content) + content + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]


def plain_pdf() -> bytes:
    return raw_pdf(_page_objects())


def js_open_action_pdf() -> bytes:
    """/OpenAction running JavaScript when the file opens."""
    objects = _page_objects(b"/OpenAction 6 0 R ")
    objects.append(b"<< /Type /Action /S /JavaScript /JS (app.alert\\('hi'\\);) >>")
    return raw_pdf(objects)


def js_escaped_names_pdf() -> bytes:
    """The same, with the names written in #-escapes (/J#61vaScript, /#4A#53)."""
    objects = _page_objects(b"/OpenAction 6 0 R ")
    objects.append(b"<< /Type /Action /S /J#61vaScript /#4A#53 (app.alert\\(1\\);) >>")
    return raw_pdf(objects)


def js_names_tree_pdf() -> bytes:
    """Document-level JavaScript in the Names tree (what pdfium counts)."""
    objects = _page_objects(b"/Names << /JavaScript 6 0 R >> ")
    objects.append(b"<< /Names [(hello) 7 0 R] >>")
    objects.append(b"<< /S /JavaScript /JS (app.alert\\(2\\);) >>")
    return raw_pdf(objects)


def js_page_aa_in_object_stream_pdf() -> bytes:
    """A page's additional action (/AA) whose JavaScript sits in a compressed object stream,
    invisible to a scan of the raw bytes."""
    hidden = b"<< /S /JavaScript /JS (app.alert\\(3\\);) >>"
    header = b"6 0 "
    packed = zlib.compress(header + hidden)
    objects = _page_objects(extra_page=b"/AA << /O 6 0 R >> ")
    objects.append(b"<< /Type /ObjStm /N 1 /First %d /Filter /FlateDecode /Length %d >>\nstream\n"
                   % (len(header), len(packed)) + packed + b"\nendstream")
    return raw_pdf(objects)


def encrypted_pdf() -> bytes:
    """A PDF whose trailer names an /Encrypt dictionary."""
    pdf = plain_pdf()
    return pdf.replace(b"/Root 1 0 R >>", b"/Root 1 0 R /Encrypt << /Filter /Standard /V 1 "
                       b"/R 2 /O (x) /U (y) /P -4 >> >>")


def renamed_exe() -> bytes:
    return b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00" + b"\x00" * 200


def corrupt_png() -> bytes:
    """A PNG cut off in the middle of its image data."""
    data = make_png()
    return data[: len(data) // 2]


def damaged_png() -> bytes:
    """A PNG with bytes of its image data overwritten (same length)."""
    data = bytearray(make_png())
    middle = len(data) // 2
    data[middle:middle + 64] = b"\x00" * 64
    return bytes(data)


def big_page_pdf(width: int = 14400, height: int = 14400) -> bytes:
    """A tiny file whose one page is ``width`` × ``height`` points (14400 pt is 5 m: at the
    viewer's 130 dpi that page alone would be a 26000-pixel square, several GB)."""
    objects = _page_objects()
    objects[2] = objects[2].replace(b"/MediaBox [0 0 595 842]",
                                    b"/MediaBox [0 0 %d %d]" % (width, height))
    return raw_pdf(objects)


def objstm_pdf(filters: str = "hex", where: str = "openaction", *, js: bool = True,
               filter_entry: bytes | None = None, padding: int = 0) -> bytes:
    """A PDF 1.5 with an xref stream whose object 6 (a JavaScript action when ``js``, else a
    harmless dictionary) lives in object stream 7, packed with ``filters``: "flate", "hex"
    (/ASCIIHexDecode), "hexflate" ([/ASCIIHexDecode /FlateDecode]), "a85", "rl" or "lzw"
    (the bytes are not really LZW: it must be refused unread). The action is the catalog's
    /OpenAction (``where="openaction"``) or the page's /AA open action (``"page"``).
    ``filter_entry`` replaces the /Filter value; ``padding`` adds harmless bytes to the
    packed objects (for the unpack cap). The reviewer's reproduction (issue 13, review)."""
    import base64
    import binascii

    content = b"BT /F1 24 Tf 72 720 Td (Application form) Tj ET"
    catalog_extra = b"/OpenAction 6 0 R " if where == "openaction" else b""
    page_extra = b"/AA << /O 6 0 R >> " if where == "page" else b""
    objects = {
        1: b"<< /Type /Catalog /Pages 2 0 R " + catalog_extra + b">>",
        2: b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        3: b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R "
           b"/Resources << /Font << /F1 5 0 R >> >> " + page_extra + b">>",
        4: b"<< /Length %d >>\nstream\n" % len(content) + content + b"\nendstream",
        5: b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    }
    hidden = (b"<< /Type /Action /S /JavaScript /JS (app.alert\\(1\\);) >>" if js
              else b"<< /Type /Action /S /GoTo /D [3 0 R /Fit] >>")
    header = b"6 0 "
    raw = header + hidden + b" " * padding
    if filters == "flate":
        packed, name = zlib.compress(raw), b"/FlateDecode"
    elif filters == "hex":
        packed, name = binascii.hexlify(raw) + b">", b"/ASCIIHexDecode"
    elif filters == "hexflate":
        packed, name = binascii.hexlify(zlib.compress(raw)) + b">", \
            b"[/ASCIIHexDecode /FlateDecode]"
    elif filters == "a85":
        packed, name = base64.a85encode(raw) + b"~>", b"/ASCII85Decode"
    elif filters == "rl":
        packed = b"".join(bytes([len(raw[i:i + 128]) - 1]) + raw[i:i + 128]
                          for i in range(0, len(raw), 128)) + b"\x80"
        name = b"/RunLengthDecode"
    else:
        packed, name = raw, b"/LZWDecode"
    objects[7] = (b"<< /Type /ObjStm /N 1 /First %d /Filter %s /Length %d >>\nstream\n"
                  % (len(header), filter_entry or name, len(packed)) + packed + b"\nendstream")
    out = bytearray(b"%PDF-1.5\n%\xe2\xe3\xcf\xd3\n")
    offsets = {}
    for number in sorted(objects):
        offsets[number] = len(out)
        out += b"%d 0 obj\n" % number + objects[number] + b"\nendobj\n"
    xref = len(out)
    rows = [(0, 0, 255)] + [(2, 7, 0) if n == 6 else (1, xref if n == 8 else offsets[n], 0)
                            for n in range(1, 9)]
    table = b"".join(bytes([t]) + f.to_bytes(4, "big") + bytes([g]) for t, f, g in rows)
    out += (b"8 0 obj\n<< /Type /XRef /Size 9 /W [1 4 1] /Root 1 0 R /Length %d >>\nstream\n"
            % len(table)) + table + b"\nendstream\nendobj\nstartxref\n%d\n%%%%EOF\n" % xref
    return bytes(out)
