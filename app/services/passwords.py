"""Password policy (S3): every path that sets a password calls check_password_policy;
generated passwords (the first administrator, demo users) meet it."""
import secrets
import string

from flask import current_app, g, request
from flask_babel import gettext as _
from wtforms import ValidationError

from app.services.errors import PasswordPolicyError

MIN_LENGTH = 12
GENERATED_LENGTH = 16


def generate_password() -> str:
    """A random password of letters and digits that meets the policy (shown once)."""
    alphabet = string.ascii_letters + string.digits
    while True:
        value = "".join(secrets.choice(alphabet) for _ in range(GENERATED_LENGTH))
        if any(c.isdigit() for c in value) and any(c.isalpha() for c in value):
            return value


def password_problems(password: str, username: str | None = None) -> list[str]:
    """The policy's complaints about a password (empty list: acceptable)."""
    problems = []
    password = password or ""
    if len(password) < MIN_LENGTH:
        problems.append(_("Use at least %(n)d characters.", n=MIN_LENGTH))
    if not any(c.isascii() and c.isalpha() for c in password):
        problems.append(_("Include at least one letter."))
    if not any(c.isdigit() for c in password):
        problems.append(_("Include at least one digit."))
    if username and username.strip() and username.strip().lower() in password.lower():
        problems.append(_("Do not include the user ID."))
    return problems


def check_password_policy(password: str, username: str | None = None) -> None:
    """Raise PasswordPolicyError naming every problem."""
    problems = password_problems(password, username)
    if problems:
        raise PasswordPolicyError(" ".join(problems))


def _username_of_form() -> str | None:
    """The user ID the form being validated is about, for the 'no user ID' rule."""
    if request.form.get("username"):
        return request.form["username"]
    payload = request.get_json(silent=True) if request.is_json else None
    if isinstance(payload, dict) and payload.get("username"):
        return str(payload["username"])
    sm = current_app.appbuilder.sm
    if request.args.get("pk"):
        user = sm.get_user_by_id(request.args["pk"])
        return user.username if user else None
    user = getattr(g, "user", None)
    if user is not None and getattr(user, "is_authenticated", False):
        return user.username
    return None


def fab_password_validator(password: str) -> None:
    """FAB_PASSWORD_COMPLEXITY_VALIDATOR: the policy on FAB's forms and user API."""
    username = None
    try:
        username = _username_of_form()
    except RuntimeError:  # outside a request
        username = None
    problems = password_problems(password, username)
    if problems:
        raise ValidationError(" ".join(problems))
