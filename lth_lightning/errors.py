"""User-facing errors: raised for bad input, printed as one line by the CLI (no traceback wall)."""


class UserError(Exception):
    """Bad configuration, missing data or a bad artifact: something the user can fix."""


class ConfigError(UserError):
    """A config value is out of range or names something that does not exist."""


class DataError(UserError):
    """A dataset is missing or cannot be downloaded."""


class TicketError(UserError):
    """A ticket file is unreadable, truncated, or belongs to another architecture."""


def first_line(err: BaseException, limit: int = 120) -> str:
    """An exception's first message line, or its type name when the message is empty."""
    text = str(err).strip()
    return text.splitlines()[0][:limit] if text else type(err).__name__
