"""The exception types main.py turns into a clear message and a non-zero exit (never a traceback)."""


class SmokeError(Exception):
    """A user-facing failure: the message says what failed and what to do (exit code 1)."""

    exit_code = 1


class UsageError(SmokeError):
    """Bad usage (arguments, --output, --resume): nothing was started (exit code 2, as argparse's errors)."""

    exit_code = 2


class Interrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM stopped the run; `note` says what it left on disk and how to finish it."""

    def __init__(self, signum: int, note: str = "") -> None:
        super().__init__(signum, note)
        self.signum = signum
        self.note = note
