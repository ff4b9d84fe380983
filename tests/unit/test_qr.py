"""Decoding drawn list pages: every code must be found, whatever the scan did to it."""
import pytest

from app.services.errors import InputError
from app.services.qr_decode import decode_file, decode_image
from app.services.qr_formats import parse_payload
from tests.qrpages import draw_page, multipage_tiff, payload, pdf_of


def _payloads(n, seed=0):
    return [payload(i, mode="KS"[i % 2], seed=seed) for i in range(n)]


@pytest.mark.parametrize("dpi,count,rotate,blur,jpeg", [
    (300, 40, 0, 0, None),
    (300, 40, 5, 0, None),
    (300, 40, -3, 1.2, 60),
    (150, 10, 0, 0, None),
    (150, 20, 2, 0.6, 75),
    (150, 40, 0, 0, 85),
    (300, 25, 4, 1.5, 50),
])
def test_every_code_on_a_page_is_found(dpi, count, rotate, blur, jpeg):
    expected = _payloads(count, seed=dpi + count)
    data = draw_page(expected, dpi=dpi, rotate=rotate, blur=blur, jpeg_quality=jpeg)
    pages = decode_file(data, "page.jpg" if jpeg else "page.png")
    assert len(pages) == 1
    found = {p.decode("utf-8") for p in pages[0].payloads}
    assert found == set(expected)


def test_shift_jis_payload_is_read(app):
    text = payload(1)
    data = draw_page([text.encode("cp932")], dpi=300)
    [page] = decode_file(data, "sjis.png")
    with app.test_request_context():
        parsed = parse_payload(page.payloads[0], __import__("datetime").date(2026, 12, 1))
    assert parsed.personal["name"].endswith("花子")


def test_multipage_tiff_and_pdf():
    first, second = _payloads(10, 1), _payloads(12, 2)
    pages = [draw_page(first, dpi=150), draw_page(second, dpi=150)]
    for data, name in ((multipage_tiff(pages), "list.tiff"), (pdf_of(pages), "list.pdf")):
        result = decode_file(data, name)
        assert [len(p.payloads) for p in result] == [10, 12]
        assert {x.decode() for x in result[1].payloads} == set(second)


def test_several_passes_find_what_one_pass_misses():
    from PIL import Image
    import io

    expected = _payloads(40, seed=9)
    data = draw_page(expected, dpi=150, rotate=2, jpeg_quality=80)
    image = Image.open(io.BytesIO(data))
    single = decode_image(image, passes=("plain",))
    several = decode_image(image, thorough=False)  # as an upload reads it
    assert len(single) < 40
    assert {p.decode() for p in several} == set(expected)


@pytest.mark.parametrize("text,fragment", [
    ("HELLO", "MNC1|"),
    ("MNC1|123|JL1|AB12CD34EF56GH78|K", "23桁"),
    ("MNC1|12345678901234567890123|JL1|AB12CD34EF56GH78|X", "K または S"),
    ("MNC1|12345678901234567890123|JL1|SHORT|K", "製造管理番号"),
    ("MNC1|12345678901234567890123|JL1|AB12CD34EF56GH78|K|山田|ヤマダ", "5 または 12"),
])
def test_bad_payloads_say_why(app, text, fragment):
    with app.test_request_context():
        with pytest.raises(InputError) as error:
            parse_payload(text, __import__("datetime").date(2026, 12, 1))
        assert fragment in str(error.value.message)
