import pytest

from app.services import notice_numbers
from app.services.errors import InputError


def test_every_single_digit_typo_and_neighbour_swap_is_caught(app, db):
    from app.models.card import Card

    with app.test_request_context():
        for _ in range(30):
            number = notice_numbers.generate(db, Card.notice_number)
            assert notice_numbers.parse(number) == number
            for i, ch in enumerate(number):
                if ch.isdigit():
                    for other in "0123456789":
                        if other != ch:
                            typo = number[:i] + other + number[i + 1:]
                            with pytest.raises(InputError):
                                notice_numbers.parse(typo)
            for i in range(3, len(number) - 1):
                a, b = number[i], number[i + 1]
                if a != b:
                    swapped = number[:i] + b + a + number[i + 2:]
                    with pytest.raises(InputError):
                        notice_numbers.parse(swapped)


def test_numbers_are_random_not_sequential(app, db):
    from app.models.card import Card

    with app.test_request_context():
        numbers = [notice_numbers.generate(db, Card.notice_number) for _ in range(50)]
    assert len(set(numbers)) == 50
    assert len({n[:3] for n in numbers}) > 10


def test_typed_forms_are_accepted(app, db):
    from app.models.card import Card

    with app.test_request_context():
        number = notice_numbers.generate(db, Card.notice_number)
        shown = notice_numbers.display(number)
        assert shown[3] == "-"
        full_width = shown.lower().translate({c: c + 0xFEE0 for c in range(0x21, 0x7F)})
        assert notice_numbers.parse(full_width) == number
        assert notice_numbers.parse(" " + shown + " ") == number
