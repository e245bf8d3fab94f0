"""main.py's JSONL file, written as rollouts finish so an interrupted run loses nothing; read back by --resume.

Every line is one JSON object about one rollout (`prompt_index`, `rollout_index`), holding the run's `settings`:
- a **sample** (no `reward` key): prompt and completion, appended as soon as the policy server answers;
- a **scored record**: the same plus `score`, `reward`, `guard`, `flagged_as_ai`, `metrics`, appended as soon as
  its scorer batch is done. It supersedes the rollout's sample line.
Each line is appended in one write and flushed. When every rollout is scored, the file is replaced (atomically)
by one scored record per rollout in (prompt_index, rollout_index) order: the format main.py always wrote.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import IO, Any

from binoculars_rl.paths import UnwritableOutputError, ensure_writable
from binoculars_rl.smoke.errors import SmokeError, UsageError
from binoculars_rl.smoke.rollouts import Rollout

Key = tuple[int, int]


def check_new_output(path: Path) -> None:
    """`path` does not exist yet and can be written: before anything slow starts."""
    if path.exists() and not path.is_dir():
        raise UsageError(
            f"--output {path} already exists; finish it with --resume {path}, or choose another --output"
        )
    try:
        ensure_writable(path)
    except UnwritableOutputError as error:
        raise UsageError(str(error)) from None


def check_resumable(path: Path) -> None:
    """`path` is a file this process can read and append to."""
    if not path.is_file():
        raise UsageError(f"--resume {path}: no such file")
    try:
        path.open("r+").close()
    except OSError as error:
        raise UsageError(f"--resume {path} cannot be read and written: {error.strerror or error}") from None


class RolloutFile:
    """The JSONL file of one run: samples and scored records appended as they finish, compacted at the end."""

    def __init__(self, path: Path, settings: dict[str, Any], rollouts: dict[Key, Rollout] | None = None):
        self.path = path
        self.settings = _plain(settings)
        self.rollouts: dict[Key, Rollout] = dict(rollouts or {})
        """Every rollout on disk, by (prompt_index, rollout_index): sampled, and scored when it has a result."""
        self._out: IO[str] | None = None
        self._resumed = rollouts is not None

    @classmethod
    def resume(cls, path: Path, settings: dict[str, Any]) -> RolloutFile:
        """The rollouts already in `path`, which must have been written with these `settings`."""
        settings = _plain(settings)
        rollouts: dict[Key, Rollout] = {}
        for number, record in _read_records(path):
            if record.get("settings") != settings:
                raise UsageError(_settings_mismatch(path, number, record.get("settings"), settings))
            rollout = Rollout.from_record(record)
            previous = rollouts.get(rollout.key)
            if previous is None or previous.result is None:  # a scored record supersedes a sample
                rollouts[rollout.key] = rollout
        return cls(path, settings, rollouts)

    def check_prompts(self, prompts: list) -> None:
        """Each rollout on disk was sampled for the prompt these arguments give at its index."""
        for (prompt_index, _), rollout in sorted(self.rollouts.items()):
            if prompt_index >= len(prompts) or rollout.story != prompts[prompt_index]:
                raise UsageError(
                    f"--resume {self.path}: prompt {prompt_index} in the file is not the prompt these arguments "
                    "give (did the story data change?); resume with the same data, or start a new --output"
                )

    def add_sample(self, rollout: Rollout) -> None:
        self._append(rollout.sample_record(), rollout)

    def add_scored(self, rollouts: list[Rollout]) -> None:
        for rollout in rollouts:
            self._append(rollout.record(), rollout)

    def scored(self) -> list[Rollout]:
        return [r for r in self.rollouts.values() if r.result is not None]

    def unscored(self) -> list[Rollout]:
        return sorted((r for r in self.rollouts.values() if r.result is None), key=lambda r: r.key)

    def finish(self) -> list[Rollout]:
        """Replace the file by one scored record per rollout, in order (every rollout must be scored)."""
        self.close()
        rollouts = sorted(self.rollouts.values(), key=lambda r: r.key)
        staging = self.path.with_name(self.path.name + f".finishing-{os.getpid()}")
        with staging.open("w", encoding="utf-8") as out:
            out.writelines(self._line(r.record()) for r in rollouts)
            out.flush()
            os.fsync(out.fileno())
        os.replace(staging, self.path)
        return rollouts

    def close(self) -> None:
        if self._out is not None:
            self._out.close()
            self._out = None

    def _append(self, record: dict[str, Any], rollout: Rollout) -> None:
        try:
            if self._out is None:  # opened on first use: a run that stops before sampling leaves no file
                self._out = self.path.open("a" if self._resumed else "x", encoding="utf-8")
            self._out.write(self._line(record))
            self._out.flush()
        except OSError as error:
            raise SmokeError(f"cannot write {self.path}: {error.strerror or error}") from None
        self.rollouts[rollout.key] = rollout

    def _line(self, record: dict[str, Any]) -> str:
        return json.dumps({**record, "settings": self.settings}, ensure_ascii=False, allow_nan=False) + "\n"


def _read_records(path: Path) -> list[tuple[int, dict[str, Any]]]:
    """(line number, record) of every line. A last line cut off mid-write (the process was killed while writing
    it) is removed from the file, with a note; every other bad line is an error."""
    text = path.read_text(encoding="utf-8")
    lines = text.split(
        "\n"
    )  # the last item is what follows the last newline: "" unless a write was cut short
    records = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            if number == len(lines):
                _cut_partial_last_line(path, text, line, number)
                continue
            raise UsageError(f"--resume {path}:{number}: not a JSON line ({error.msg})") from None
        if not isinstance(record, dict) or "completion" not in record:
            raise UsageError(f"--resume {path}:{number}: not a main.py rollout record")
        records.append((number, record))
    if lines[-1].strip() and records and records[-1][0] == len(lines):  # whole, but its newline was cut off
        with path.open("a", encoding="utf-8") as out:
            out.write("\n")
    return records


def _cut_partial_last_line(path: Path, text: str, line: str, number: int) -> None:
    print(f"note: {path}:{number} was cut short when the run stopped; removing it (that rollout is redone)")
    with path.open("w", encoding="utf-8") as out:
        out.write(text[: len(text) - len(line)])


def _settings_mismatch(path: Path, number: int, found: Any, wanted: dict[str, Any]) -> str:
    if not isinstance(found, dict):
        return f"--resume {path}:{number} has no main.py settings; it cannot be resumed"
    differences = "; ".join(_differences(found, wanted)) or "(none)"
    return (
        f"--resume {path} was made with other settings ({differences}); "
        "resume it with the arguments of the run that made it, or start a new --output"
    )


def _differences(found: dict[str, Any], wanted: dict[str, Any], prefix: str = "") -> list[str]:
    """`name: file X, now Y` for each setting that differs (nested settings as `env.threshold`)."""
    out = []
    for name in sorted(set(found) | set(wanted)):
        a, b = found.get(name), wanted.get(name)
        if isinstance(a, dict) and isinstance(b, dict):
            out += _differences(a, b, f"{prefix}{name}.")
        elif a != b:
            out.append(f"{prefix}{name}: file {json.dumps(a)}, now {json.dumps(b)}")
    return out


def _plain(settings: dict[str, Any]) -> dict[str, Any]:
    """As it reads back from JSON (tuples become lists), so settings compare equal to what the file holds."""
    return json.loads(json.dumps(settings, allow_nan=False))
