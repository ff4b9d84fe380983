"""Draw pages of a card issuance list (カード発行一覧表) for tests and the bench:
A4 at a given dpi, a grid of QR codes (segno make_qr) with a caption each, optionally
rotated, blurred and JPEG-compressed like a real office scan."""
from __future__ import annotations

import io
import random

import segno
from PIL import Image, ImageDraw, ImageFilter

A4_MM = (210, 297)


def payload(n: int, mode: str = "K", short: bool = False, seed: int = 0) -> str:
    rng = random.Random(n * 7919 + seed)
    app_id = f"{rng.randint(10**22, 10**23 - 1)}"
    manufacture = f"{rng.randint(10**15, 10**16 - 1)}"
    head = f"MNC1|{app_id}|JL2026{n % 100:04d}|{manufacture}|{mode}"
    if short:
        return head
    family = rng.choice(["佐藤", "鈴木", "髙橋", "田中", "渡邉"])
    kana = {"佐藤": "サトウ", "鈴木": "スズキ", "髙橋": "タカハシ", "田中": "タナカ",
            "渡邉": "ワタナベ"}[family]
    return (f"{head}|{family}　花子|{kana}　ハナコ|19{rng.randint(40, 99)}0{rng.randint(1, 9)}1"
            f"{rng.randint(0, 9)}|123-{rng.randint(0, 9999):04d}|みどり市中央{rng.randint(1, 9)}-"
            f"{rng.randint(1, 30)}-{rng.randint(1, 20)}|1|1")


def draw_page(payloads: list[str | bytes], dpi: int = 300, rotate: float = 0.0,
              blur: float = 0.0, jpeg_quality: int | None = None, columns: int = 5) -> bytes:
    """One A4 page as PNG (or JPEG) bytes with the payloads in a grid."""
    width, height = (round(mm / 25.4 * dpi) for mm in A4_MM)
    page = Image.new("L", (width, height), 255)
    draw = ImageDraw.Draw(page)
    margin = int(dpi * 0.5)
    rows = max(1, -(-len(payloads) // columns))
    cell_w = (width - 2 * margin) // columns
    cell_h = (height - 2 * margin) // max(rows, 8)
    for index, data in enumerate(payloads):
        code = segno.make_qr(data, error="m")
        modules = code.symbol_size(scale=1, border=4)[0]
        scale = max(1, min(cell_w, cell_h - dpi // 10) * 9 // 10 // modules)
        buffer = io.BytesIO()
        code.save(buffer, kind="png", scale=scale, border=4)
        image = Image.open(buffer).convert("L")
        x = margin + (index % columns) * cell_w
        y = margin + (index // columns) * cell_h
        page.paste(image, (x, y))
        draw.text((x + 4, y + image.height), f"No.{index + 1}", fill=0)
    if rotate:
        page = page.rotate(rotate, resample=Image.BICUBIC, expand=False, fillcolor=255)
    if blur:
        page = page.filter(ImageFilter.GaussianBlur(blur))
    out = io.BytesIO()
    if jpeg_quality:
        page.save(out, format="JPEG", quality=jpeg_quality, dpi=(dpi, dpi))
    else:
        page.save(out, format="PNG", dpi=(dpi, dpi))
    return out.getvalue()


def multipage_tiff(pages: list[bytes]) -> bytes:
    images = [Image.open(io.BytesIO(p)).convert("L") for p in pages]
    out = io.BytesIO()
    images[0].save(out, format="TIFF", save_all=True, append_images=images[1:],
                   compression="tiff_deflate")
    return out.getvalue()


def pdf_of(pages: list[bytes]) -> bytes:
    images = [Image.open(io.BytesIO(p)).convert("RGB") for p in pages]
    out = io.BytesIO()
    images[0].save(out, format="PDF", save_all=True, append_images=images[1:], resolution=300)
    return out.getvalue()
