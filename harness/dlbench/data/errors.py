"""The one exception the data layer raises: its message is the one-line error a user sees."""


class DataError(Exception):
    """Missing, truncated, corrupt or wrong-format data; the message names the file and the fix."""
