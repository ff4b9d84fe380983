"""Domain errors. Each carries a translatable message for the screen that caused it."""
from flask_babel import lazy_gettext as _


class DomainError(Exception):
    message = _("The operation could not be completed.")

    def __init__(self, message=None):
        if message is not None:
            self.message = message
        super().__init__(str(self.message))


class PasswordPolicyError(DomainError):
    message = _("The password does not meet the policy.")


class UserExistsError(DomainError):
    message = _("This user ID is already in use.")


class UnknownRoleError(DomainError):
    message = _("Unknown role.")


class MaintenanceStateError(DomainError):
    message = _("The maintenance state cannot be changed this way.")
