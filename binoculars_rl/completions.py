"""Completion texts from JSONL files: main.py's rollouts, training samples, or anything with a completion field.

Each line is a JSON object. The completion is read from the first of `COMPLETION_FIELDS` present:
- `completion`: a string, or a chat message list (the last assistant message's content is used; content may be a
  string or a list of `{"type": "text", "text": ...}` parts) — main.py's and scripts/train.py's format;
- `text`: a string.
`<think>…</think>` reasoning is removed, as the environment's reward does before scoring.
"""

from __future__ import annotations

import json
from pathlib import Path

from binoculars_env.reward import completion_text, strip_think

COMPLETION_FIELDS = ("completion", "text")


def read_completions(path: str | Path) -> list[str]:
    """Plain completion texts of a JSONL file, in file order (blank lines skipped; loud on anything else odd)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"completions file not found: {path}")
    texts = []
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as error:
                raise ValueError(f"{path}:{number}: not valid JSON ({error.msg})") from error
            texts.append(strip_think(completion_text(_completion_field(row, path, number))))
    if not texts:
        raise ValueError(f"{path} has no completions")
    return texts


def _completion_field(row: object, path: Path, number: int):
    if not isinstance(row, dict):
        raise ValueError(f"{path}:{number}: each line must be a JSON object, got {type(row).__name__}")
    for name in COMPLETION_FIELDS:
        if name in row:
            value = row[name]
            if not isinstance(value, str | list):
                raise ValueError(f"{path}:{number}: `{name}` must be a string or a message list")
            return value
    raise ValueError(
        f"{path}:{number}: no completion field (expected one of {COMPLETION_FIELDS}); it has {sorted(row)}"
    )
