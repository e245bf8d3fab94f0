"""SIGTERM handled like Ctrl-C, so a long job killed by a scheduler keeps its work and says how to resume it."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator


class SignalInterrupt(KeyboardInterrupt):
    """SIGTERM delivered as a KeyboardInterrupt; `signum` says which signal it was."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


@contextlib.contextmanager
def sigterm_as_keyboard_interrupt() -> Iterator[None]:
    """While inside, SIGTERM raises `SignalInterrupt` (a KeyboardInterrupt), as Ctrl-C does. Only the main
    thread can install signal handlers; elsewhere this does nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum, frame):
        raise SignalInterrupt(signum)

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
