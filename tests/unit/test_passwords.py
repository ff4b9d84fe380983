import pytest

from app.services.errors import PasswordPolicyError
from app.services.passwords import check_password_policy, generate_password, password_problems


@pytest.mark.parametrize("password", ["Abcdefgh1234", "9876543210zz", "長いパスワード文字列ですabc1"])
def test_good_passwords_pass(app, password):
    with app.test_request_context():
        assert password_problems(password, "tanaka") == []


@pytest.mark.parametrize("password,fragment", [
    ("Abc123", "12"),                 # too short
    ("abcdefghijklmn", "数字"),        # no digit
    ("123456789012345", "英字"),       # no letter
    ("tanaka2026pass", "ユーザーID"),   # contains the user ID
    ("TANAKA2026pass", "ユーザーID"),   # case does not hide it
])
def test_bad_passwords_are_refused_with_a_japanese_reason(app, password, fragment):
    with app.test_request_context():
        with pytest.raises(PasswordPolicyError) as error:
            check_password_policy(password, "tanaka")
        assert fragment in str(error.value.message)


def test_generated_passwords_meet_the_policy_and_differ(app):
    with app.test_request_context():
        made = {generate_password() for _ in range(20)}
        assert len(made) == 20
        assert all(password_problems(p, "admin") == [] for p in made)
