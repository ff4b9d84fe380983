"""Find every QR code on scanned pages (PNG, JPEG, TIFF with several pages, PDF).

One zbar pass misses codes on skewed, blurred or faint scans, so each page is read in
several passes (binarised, sharpened, plain, full resolution, upscaled) and the results
merged by payload.
"""
from __future__ import annotations

import io
from dataclasses import dataclass, field
from concurrent.futures import ThreadPoolExecutor
from typing import Iterable, Iterator

import pypdfium2
from PIL import Image, ImageFilter, ImageOps
from pyzbar.pyzbar import ZBarSymbol, decode

PASSES = ("binarised", "sharpened", "plain", "detail", "upscaled")
# Large scans are read at about 200 dpi (zbar's time grows with the pixels; QR modules
# stay 4 px or more). "detail" reads the full resolution binarised (a small scan: an
# upscaled binarised copy); "upscaled" the full resolution as it is (a small scan: twice
# its size; skipped for a large scan). Passes run two at a time.
WORK_WIDTH = 1700
_pool = ThreadPoolExecutor(max_workers=2)  # zbar and Pillow release the GIL


@dataclass
class PageResult:
    page: int
    payloads: list[bytes] = field(default_factory=list)


def _otsu(image: Image.Image) -> Image.Image:
    """Black and white at the threshold that best separates the page's two tones."""
    histogram = image.histogram()[:256]
    total = sum(histogram)
    sum_all = sum(i * h for i, h in enumerate(histogram))
    best, threshold, weight_bg, sum_bg = 0.0, 128, 0, 0.0
    for level, count in enumerate(histogram):
        weight_bg += count
        if weight_bg == 0 or weight_bg == total:
            continue
        sum_bg += level * count
        mean_bg = sum_bg / weight_bg
        mean_fg = (sum_all - sum_bg) / (total - weight_bg)
        between = weight_bg * (total - weight_bg) * (mean_bg - mean_fg) ** 2
        if between > best:
            best, threshold = between, level
    return image.point(lambda v: 255 if v > threshold else 0)


def _variant(gray: Image.Image, name: str) -> Image.Image | None:
    work = gray
    if gray.width > WORK_WIDTH:
        work = gray.resize((WORK_WIDTH, round(gray.height * WORK_WIDTH / gray.width)),
                           Image.BOX)
    if name == "plain":
        return work
    if name == "binarised":
        return _otsu(work)
    if name == "sharpened":
        return work.filter(ImageFilter.UnsharpMask(radius=2, percent=200, threshold=2))
    if name == "detail":
        if gray.width > WORK_WIDTH:
            return _otsu(gray)
        return _otsu(gray.resize((gray.width * 2, gray.height * 2), Image.LANCZOS))
    if name == "upscaled":
        if gray.width > WORK_WIDTH:
            return None  # a large scan gains nothing from it ("detail" reads it in full)
        return gray.resize((gray.width * 2, gray.height * 2), Image.LANCZOS)
    raise ValueError(name)


def _read(gray: Image.Image, name: str):
    variant = _variant(gray, name)
    if variant is None:
        return []
    scale = variant.width / gray.width
    return [(symbol.data, int(symbol.rect.top / scale), int(symbol.rect.left / scale))
            for symbol in decode(variant, symbols=[ZBarSymbol.QRCODE])]


def decode_image(image: Image.Image, passes: Iterable[str] = PASSES,
                 thorough: bool = True) -> list[bytes]:
    """Every distinct QR payload on one image, in reading order (top to bottom).

    Passes run in pairs. Unless ``thorough``, the later pairs are skipped when the first
    pair corroborates itself: one pass saw every code the pair found and the other saw at
    least nine in ten of them. Otherwise the page is hard, and every pass runs.
    """
    gray = ImageOps.grayscale(image)
    found: dict[bytes, tuple[int, int]] = {}
    passes = list(passes)
    for start in range(0, len(passes), 2):
        singles = []
        for symbols in _pool.map(lambda name: _read(gray, name), passes[start:start + 2]):
            singles.append(len({data for data, _, _ in symbols}))
            for data, top, left in symbols:
                found.setdefault(data, (top, left))
        if (not thorough and start == 0 and found and len(found) == max(singles)
                and min(singles) * 10 >= max(singles) * 9):
            break
    return [data for data, _ in sorted(found.items(), key=lambda kv: (kv[1][0] // 40, kv[1][1]))]


def pages_of(data: bytes, filename: str = "") -> Iterator[Image.Image]:
    """The pages of an uploaded file as images."""
    if data[:5] == b"%PDF-" or filename.lower().endswith(".pdf"):
        pdf = pypdfium2.PdfDocument(data)
        try:
            for index in range(len(pdf)):
                yield pdf[index].render(scale=300 / 72).to_pil()
        finally:
            pdf.close()
        return
    image = Image.open(io.BytesIO(data))
    for index in range(getattr(image, "n_frames", 1)):
        image.seek(index)
        yield image.convert("RGB")


def decode_file(data: bytes, filename: str = "", passes: Iterable[str] = PASSES,
                thorough: bool = True) -> list[PageResult]:
    return [PageResult(page=i + 1, payloads=decode_image(page, passes, thorough))
            for i, page in enumerate(pages_of(data, filename))]
