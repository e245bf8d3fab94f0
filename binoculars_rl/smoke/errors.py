"""The one exception type main.py turns into a clear message and a non-zero exit (never a traceback)."""


class SmokeError(Exception):
    """A user-facing failure: the message says what failed and what to do."""
