"""Ctrl-C / SIGTERM during training: finish the current step, save a checkpoint, stop cleanly.

A week-long run must not lose its last hours to one signal. The first SIGINT or SIGTERM asks the trainer to save
and stop at the end of the current optimizer step (a checkpoint-N directory `--resume` continues from); a second
one interrupts at once, as usual.
"""

from __future__ import annotations

import signal
from types import FrameType

from transformers import TrainerCallback

HANDLED_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class SaveOnSignalCallback(TrainerCallback):
    def __init__(self) -> None:
        self.received: int | None = None
        self._previous: dict[int, object] = {}

    def install(self) -> SaveOnSignalCallback:
        for number in HANDLED_SIGNALS:
            self._previous[number] = signal.signal(number, self._on_signal)
        return self

    def uninstall(self) -> None:
        for number, handler in self._previous.items():
            signal.signal(number, handler)
        self._previous.clear()

    def _on_signal(self, number: int, frame: FrameType | None) -> None:
        self.received = number
        self.uninstall()  # a second signal takes the default path (KeyboardInterrupt / termination)
        print(
            f"\n{signal.Signals(number).name}: saving a checkpoint at the end of this step, then stopping "
            "(send it again to stop at once)",
            flush=True,
        )

    def on_step_end(self, args, state, control, **kwargs):
        if self.received is not None:
            control.should_save = True
            control.should_training_stop = True
        return control
