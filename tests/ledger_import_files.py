"""Files as a city's old card-progress system writes them, for the import tests and the
bench: CSV in CP932 / UTF-8 / UTF-8 with BOM, and XLSX."""
from __future__ import annotations

import csv
import io
from typing import Iterable

HEADER = ["申請書ＩＤ", "氏名", "カナ氏名", "生年月日", "郵便番号", "住所", "発送番号",
          "製造管理番号", "署名用電子証明書", "利用者証明用電子証明書", "交付状況", "保管場所",
          "通知書発送日", "交付日", "備考", ""]


def app_id(n: int) -> str:
    return f"{n:023d}"


def row(n: int, **overrides) -> list[str]:
    """One good row (a card in the office, notice sent)."""
    values = {
        "申請書ＩＤ": app_id(n), "氏名": "髙橋　﨑子", "カナ氏名": "ﾀｶﾊｼ ｻｷｺ",
        "生年月日": "S55.3.1", "郵便番号": "123-4567", "住所": "みどり市中央1-2-3",
        "発送番号": f"S{n:010d}", "製造管理番号": f"MN{n:014d}",
        "署名用電子証明書": "有", "利用者証明用電子証明書": "○", "交付状況": "通知済",
        "保管場所": "移行-棚01", "通知書発送日": "令和6年4月1日", "交付日": "", "備考": "",
        "": "",
    }
    values.update(overrides)
    return [values[h] for h in HEADER]


def csv_text(rows: Iterable[list[str]], header: list[str] | None = None) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(header or HEADER)
    writer.writerows(rows)
    return out.getvalue()


def write_csv(path, rows, encoding="cp932", header=None, trailing="\r\n\r\n") -> str:
    text = csv_text(rows, header) + trailing
    with open(path, "wb") as handle:
        if encoding == "utf-8-sig":
            handle.write(text.encode("utf-8-sig"))
        else:
            handle.write(text.encode(encoding))
    return str(path)


def write_xlsx(path, rows, header=None) -> str:
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    sheet.append(header or HEADER)
    for values in rows:
        sheet.append(values)
    book.save(path)
    return str(path)
