"""Domain errors. Each carries a translatable message for the screen that caused it."""
from flask_babel import lazy_gettext as _

from app.clock import JST


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


class InputError(DomainError):
    """A value typed by a person is not acceptable; the message says why, in Japanese."""

    message = _("The value is not valid.")


class InvalidTransitionError(DomainError):
    message = _("This state change is not allowed.")


class BulkTransitionError(DomainError):
    """Some cards of a bulk action could not move; none moved. ``failures`` says which."""

    message = _("None of the cards was changed, because some cannot move.")

    def __init__(self, failures: list[tuple[str, str]]):
        super().__init__()
        self.failures = failures


class NotPermittedError(DomainError):
    """The user's role does not allow this change (checked in the service, whatever the
    screen or API it came from); nothing changed."""

    message = _("Your role does not allow this operation.")


class CardNotFoundError(DomainError):
    message = _("No card matches.")


class StorageFullError(DomainError):
    message = _("The storage place is full.")


# --- scanning (issue 4) ---

class BatchClosedError(DomainError):
    message = _("This batch is already registered or discarded.")


class RegistrationConflictError(DomainError):
    message = _("Nothing was registered: some rows are no longer valid.")


# --- bookings (issue 5) ---

class SlotFullError(DomainError):
    message = _("This time is full. Please choose another time.")


class BookingWindowError(DomainError):
    message = _("This time cannot be booked now (outside the booking period).")


class HoldExpiredError(DomainError):
    message = _("The time you chose was held for you for a limited time and has been released. "
                "Please choose a time again.")


class IdentityMismatchError(DomainError):
    """Same answer for an unknown postcard number and a wrong birth date (DOMAIN.md)."""

    message = _("The postcard number or the birth date does not match. Check the postcard.")


class CardAlreadyBookedError(DomainError):
    message = _("A visit to collect this card is already booked. Change or cancel that booking.")


class ReservationStateError(DomainError):
    message = _("This booking cannot be changed any more.")


class ConcurrentChangeError(DomainError):
    """Two changes of the same rows waited for each other; one is refused, nothing done."""

    message = _("Someone else changed the same booking at the same moment. Nothing was "
                "changed; please try again.")


class ThrottledError(DomainError):
    """Too many attempts from one address or on one number: wait until ``until``."""

    def __init__(self, until):
        self.until = until
        super().__init__(_("There were too many attempts. Please try again after %(time)s.",
                           time=until.astimezone(JST).strftime("%H:%M")))
