"""Human-written text for calibration, tests and benchmarks, read at run time (never committed).

- `fortune_passages()`: prose passages from Debian's `fortunes` + `fortunes-min` packages
  (`apt-get install fortunes fortunes-min`; files under /usr/share/games/fortunes, passages separated by lines
  holding only `%`). Verse, dialogue, lists and ASCII art are dropped; attribution lines (`-- Mark Twain`) are
  cut; hard-wrapped lines are joined into paragraphs.
- `read_human_file(path)`: a user's own texts, one per line (.txt) or a `text` field per line (.jsonl).
"""

from __future__ import annotations

import itertools
import json
import re
from pathlib import Path

FORTUNES_DIR = "/usr/share/games/fortunes"
# A prose line of the hard-wrapped fortune files holds ~60-75 characters; verse and lists hold far fewer.
_MIN_MEDIAN_LINE_CHARS = 45
# A line starting with a speaker tag: "Q:", "A:", "Bob:", "JOHN:", "Mrs. Smith:".
_SPEAKER = re.compile(r"^\s*[A-Z][\w.' ]{0,20}:(\s|$)")
# An attribution line: "-- Mark Twain", "        - Confucius", "~ Anonymous".
_ATTRIBUTION = re.compile(r"^\s*(--|-|~)\s*\S")
# Verse capitalises lines that continue a sentence; hard-wrapped prose does so only for names and "I".
_ENDS = tuple(".!?:;\"')")
_MAX_CAPITAL_RUN_ON = 0.5
# Letters among the non-space characters below this share: ASCII art, tables, code.
_MIN_LETTER_SHARE = 0.75


class HumanTextError(OSError):
    """Human text could not be read; the message says what to install or fix."""


def fortune_passages(
    min_words: int = 60, max_words: int = 250, directory: str | Path = FORTUNES_DIR
) -> list[str]:
    """Prose passages of `min_words`..`max_words` words from the fortune files in `directory`, in file-name
    then file order (deterministic)."""
    if min_words < 1 or max_words < min_words:
        raise ValueError(f"need 1 <= min_words <= max_words, got {min_words}, {max_words}")
    directory = Path(directory)
    if not directory.is_dir():
        raise HumanTextError(
            f"no fortune files at {directory}: install them (sudo apt-get install fortunes fortunes-min) "
            "or pass your own human text file"
        )
    files = sorted(p for p in directory.iterdir() if p.is_file() and not p.is_symlink() and not p.suffix)
    passages = []
    for path in files:
        text = _without_overstrikes(path.read_text(encoding="utf-8", errors="replace"))
        for raw in re.split(r"^%[ \t]*$", text, flags=re.MULTILINE):
            passage = _prose(raw)
            if passage is not None and min_words <= len(passage.split()) <= max_words:
                passages.append(passage)
    if not passages:
        raise HumanTextError(
            f"no prose passages of {min_words}-{max_words} words in {directory} (files: {len(files)}); "
            "install fortunes fortunes-min (sudo apt-get install fortunes fortunes-min)"
        )
    return passages


def _without_overstrikes(text: str) -> str:
    """Some passages underline or embolden by overstriking (`___\b\b\bnew`): keep the final letters only."""
    while (struck := re.sub(r"[^\x08\n]\x08", "", text, count=0)) != text:
        text = struck
    return text.replace("\x08", "")


def _prose(raw: str) -> str | None:
    """The passage as paragraphs of joined lines, or None when it is not prose."""
    lines = [line.rstrip() for line in raw.strip("\n").splitlines()]
    while lines and (not lines[-1].strip() or _ATTRIBUTION.match(lines[-1])):
        lines.pop()
    body = [line for line in lines if line.strip()]
    if not body:
        return None
    if sum(bool(_SPEAKER.match(line)) for line in body) >= 2:
        return None  # dialogue, Q&A
    run_on = [
        line.strip() for previous, line in itertools.pairwise(body) if not previous.rstrip().endswith(_ENDS)
    ]
    if len(run_on) >= 2 and sum(line[0].isupper() for line in run_on) > _MAX_CAPITAL_RUN_ON * len(run_on):
        return None  # verse: a line that continues a sentence still starts with a capital
    lengths = sorted(len(line.strip()) for line in body)
    if lengths[len(lengths) // 2] < _MIN_MEDIAN_LINE_CHARS:
        return None  # verse, lists, one-liners
    visible = [c for c in "".join(body) if not c.isspace()]
    if sum(c.isalpha() for c in visible) < _MIN_LETTER_SHARE * len(visible):
        return None  # ASCII art, tables, code
    paragraphs = re.split(r"\n\s*\n", "\n".join(lines))
    return "\n\n".join(" ".join(p.split()) for p in paragraphs if p.strip())


def read_human_file(path: str | Path) -> list[str]:
    """Texts of a .txt file (one per non-empty line) or a .jsonl file (a string `text` field per line)."""
    path = Path(path)
    if not path.is_file():
        raise HumanTextError(f"human text file {path} does not exist")
    lines = path.read_text(encoding="utf-8").splitlines()
    if path.suffix == ".jsonl":
        texts = []
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as error:
                raise HumanTextError(f"{path}:{number}: not JSON ({error.msg})") from None
            if not isinstance(record, dict) or not isinstance(record.get("text"), str):
                raise HumanTextError(f"{path}:{number}: expected an object with a string 'text' field")
            texts.append(record["text"])
    elif path.suffix == ".txt":
        texts = [line for line in lines if line.strip()]
    else:
        raise HumanTextError(f"human text file {path}: expected .txt (one text per line) or .jsonl ('text')")
    texts = [text for text in texts if text.strip()]
    if not texts:
        raise HumanTextError(f"human text file {path} holds no texts")
    return texts
