"""One helper makes every CSV and XLSX cell safe from formula injection (issue 10 §3)."""
import csv
import io
from datetime import date, datetime
from decimal import Decimal

import pytest

from app.services.spreadsheet import csv_writer, safe_cell, xlsx_write_row


@pytest.mark.parametrize("text", ['=HYPERLINK("http://x","y")', "+1+1", "-2+3", "@SUM(A1)",
                                  "\t=1", "\r=1"])
def test_text_starting_with_a_formula_character_gets_a_quote(text):
    assert safe_cell(text) == "'" + text


@pytest.mark.parametrize("value", ["山田　太郎", "090-1234-5678", "a=b", "", "'already"])
def test_ordinary_text_is_left_alone(value):
    assert safe_cell(value) == value


@pytest.mark.parametrize("value", [-3, 2.5, Decimal("-1.5"), True, date(2026, 12, 1),
                                   datetime(2026, 12, 1, 10, 0)])
def test_numbers_dates_and_booleans_are_untouched(value):
    assert safe_cell(value) is value


def test_none_is_an_empty_cell():
    assert safe_cell(None) == ""


def test_csv_writer_writes_safe_rows_with_crlf():
    buffer = io.StringIO()
    writer = csv_writer(buffer)
    writer.writerow(["=1+2", -5, None, "普通"])
    writer.writerows([["@x"]])
    assert buffer.getvalue() == "'=1+2,-5,,普通\r\n'@x\r\n"
    assert list(csv.reader(io.StringIO(buffer.getvalue())))[0][0] == "'=1+2"


def test_xlsx_text_is_never_a_formula():
    import xlsxwriter
    from openpyxl import load_workbook

    output = io.BytesIO()
    workbook = xlsxwriter.Workbook(output, {"in_memory": True})
    sheet = workbook.add_worksheet()
    xlsx_write_row(sheet, 0, ['=HYPERLINK("http://x","y")', -7, "名前", None,
                              date(2026, 12, 1), True],
                   date_format=workbook.add_format({"num_format": "yyyy/mm/dd"}))
    workbook.close()
    output.seek(0)
    cells = [c for c in next(load_workbook(output).active.iter_rows())]
    assert cells[0].data_type == "s" and cells[0].value == '\'=HYPERLINK("http://x","y")'
    assert cells[1].value == -7 and cells[1].data_type == "n"
    assert cells[2].value == "名前" and cells[3].value is None
    assert cells[4].value == datetime(2026, 12, 1) and cells[5].value is True
