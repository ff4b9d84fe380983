from datetime import date

import pytest

from app.services import japanese as jp
from app.services.errors import InputError

TODAY = date(2026, 12, 1)


@pytest.mark.parametrize("text,expected", [
    ("1980-03-01", date(1980, 3, 1)), ("19800301", date(1980, 3, 1)),
    ("１９８０－０３－０１", date(1980, 3, 1)), ("1980/3/1", date(1980, 3, 1)),
    ("1980年3月1日", date(1980, 3, 1)), ("S55.3.1", date(1980, 3, 1)),
    ("s55.3.1", date(1980, 3, 1)), ("昭和55年3月1日", date(1980, 3, 1)),
    ("R1.5.1", date(2019, 5, 1)), ("令和元年5月1日", date(2019, 5, 1)),
    ("H31.4.30", date(2019, 4, 30)), ("平成元年1月8日", date(1989, 1, 8)),
    ("Ｓ５５．３．１", date(1980, 3, 1)), (" 昭和 55年 3月 1日 ", date(1980, 3, 1)),
])
def test_birth_dates_as_people_write_them(app, text, expected):
    with app.test_request_context():
        assert jp.parse_birth_date(text, TODAY) == expected


@pytest.mark.parametrize("text,fragment", [
    ("1980-02-30", "存在しない"), ("H31.5.1", "平成は終わっています"),
    ("R1.4.30", "元号の始まりより前"), ("2027-01-01", "未来"), ("", "入力してください"),
    ("昨日", "S55.3.1"),
])
def test_bad_dates_say_why_in_japanese(app, text, fragment):
    with app.test_request_context():
        with pytest.raises(InputError) as error:
            jp.parse_birth_date(text, TODAY)
        assert fragment in str(error.value.message)


def test_era_label_and_both_forms():
    assert jp.era_label(date(2019, 5, 1)) == "令和元年5月1日"
    assert jp.era_label(date(2019, 4, 30)) == "平成31年4月30日"
    assert jp.date_with_era(date(1980, 3, 1)) == "1980-03-01（昭和55年3月1日）"


def test_application_id_accepts_full_width_spaces_and_hyphens(app):
    with app.test_request_context():
        assert jp.parse_application_id("１２３４ ５６７８-9012 3456 7890 123") == "12345678901234567890123"
        with pytest.raises(InputError) as error:
            jp.parse_application_id("1234")
        assert "23桁" in str(error.value.message)


def test_kana_from_hiragana_and_half_width(app):
    with app.test_request_context():
        assert jp.parse_kana("やまだ たろう") == "ヤマダ　タロウ"
        assert jp.parse_kana("ﾔﾏﾀﾞ ﾀﾛｳ") == "ヤマダ　タロウ"
        with pytest.raises(InputError) as error:
            jp.parse_kana("山田")
        assert "カタカナ" in str(error.value.message)


def test_postal_code_and_codes(app):
    with app.test_request_context():
        assert jp.parse_postal_code("〒１２３－４５６７") == "123-4567"
        assert jp.parse_manufacture_number("ab12 cd34-ef56 gh78") == "AB12CD34EF56GH78"
        with pytest.raises(InputError):
            jp.parse_postal_code("12-345")
