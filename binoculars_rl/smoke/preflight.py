"""Check, before anything slow starts, that every model and the story data can be loaded; explain what to do if not.

A hub id that is neither in the local cache nor reachable (offline machine, no hub access) fails here with one
message that lists each missing piece and the exact flags that point main.py at local copies instead. When the hub
does not answer at all, one quick check finds out and the process works offline from then on (HF_HUB_OFFLINE=1),
so the hub clients do not print dozens of retry warnings first.
"""

from __future__ import annotations

import os
import shlex
import sys
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from binoculars_rl.smoke.errors import SmokeError

# what each flag takes, for the message
PLACEHOLDERS = {
    "--policy": "/path/to/Qwen3-0.6B",
    "--observer": "/path/to/Qwen2.5-0.5B",
    "--performer": "/path/to/Qwen2.5-0.5B-Instruct",
    "--env-arg data_files=": "/path/to/stories.jsonl",
}
HUB_CHECK_TIMEOUT_S = 2.0


@dataclass(frozen=True)
class Requirement:
    flag: str
    """The flag that sets it (`--policy`, `--observer`, `--performer`, `--env-arg data_files=`)."""
    role: str
    value: str


def is_hub_id(name_or_path: str) -> bool:
    """True unless `name_or_path` exists locally or is written as a path (absolute, ./, ~, or a/b/c)."""
    path = Path(name_or_path).expanduser()
    written_as_path = path.is_absolute() or name_or_path.startswith((".", "~")) or name_or_path.count("/") > 1
    return not (path.exists() or written_as_path)


def model_problem(name_or_path: str) -> str | None:
    """None when `name_or_path` is a model directory or a hub id whose config can be had, else why not."""
    path = Path(name_or_path).expanduser()
    if path.is_dir():
        return None if (path / "config.json").exists() else f"directory {path} has no config.json"
    if not is_hub_id(name_or_path):
        return f"no such directory: {path}"
    from transformers import AutoConfig

    try:
        AutoConfig.from_pretrained(name_or_path)
    except (OSError, ValueError) as error:
        return _first_line(error)
    return None


def go_offline_if_hub_unreachable(hub_ids: list[str], timeout_s: float = HUB_CHECK_TIMEOUT_S) -> str | None:
    """When `hub_ids` need the hub and HF_HUB_OFFLINE is not set: one request (at most `timeout_s`) to see whether
    the hub answers. If not, set HF_HUB_OFFLINE=1 and HF_DATASETS_OFFLINE=1 for this process (the hub clients
    then read their local cache at once instead of retrying every file) and return a note saying so.
    Call it before anything imports huggingface_hub: it reads these variables once, at import."""
    if not hub_ids or os.environ.get("HF_HUB_OFFLINE", "").upper() in {"1", "ON", "YES", "TRUE"}:
        return None
    if "huggingface_hub" in sys.modules:
        raise RuntimeError("go_offline_if_hub_unreachable must run before huggingface_hub is imported")
    endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co").rstrip("/")
    if hub_answers(endpoint, timeout_s):
        return None
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    return (
        f"the Hugging Face hub ({endpoint}) does not answer, so this run uses only local files and the hub "
        "cache. Offline, set HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 (no check then) and pass local paths."
    )


def hub_answers(endpoint: str, timeout_s: float) -> bool:
    """Whether a HEAD request to `endpoint` gets any HTTP answer within `timeout_s` (proxy variables apply)."""
    try:
        with urllib.request.urlopen(urllib.request.Request(endpoint, method="HEAD"), timeout=timeout_s):
            return True
    except urllib.error.HTTPError:
        return True  # an HTTP error status is still an answer
    except (urllib.error.URLError, OSError, ValueError):
        return False


def import_transformers_before_threads() -> None:
    """transformers resolves its attributes lazily, and that is not thread-safe: a thread that touches
    `transformers.X` while another is importing it fails (datasets' hashing does, when it sees transformers in
    sys.modules). Resolve what the concurrent checks use before any thread starts."""
    import transformers
    import transformers.models.auto  # noqa: F401

    _ = transformers.PreTrainedTokenizerBase, transformers.AutoConfig


def check_models(models: list[Requirement]) -> list[tuple[Requirement, str]]:
    """(requirement, why) for each model that cannot be loaded; the checks run concurrently (call
    `import_transformers_before_threads` first)."""
    with ThreadPoolExecutor(max_workers=max(1, len(models))) as pool:
        problems = list(pool.map(lambda r: model_problem(r.value), models))
    return [(r, why) for r, why in zip(models, problems, strict=True) if why is not None]


def raise_missing(failures: list[tuple[Requirement, str]], given: dict[str, str]) -> None:
    """One SmokeError naming every failure and a ready-to-edit command using local paths for them."""
    lines = ["smoke rollouts cannot start: these could not be loaded (offline, or not downloaded yet?)"]
    lines += [f"  - {r.role} {r.value!r}: {why}" for r, why in failures]
    failed_flags = {r.flag for r, _ in failures}
    parts = ["uv run main.py"]
    for flag, placeholder in PLACEHOLDERS.items():
        value = placeholder if flag in failed_flags else given.get(flag)
        if value is None:
            continue
        parts.append(f"{flag}{shlex.quote(value)}" if flag.endswith("=") else f"{flag} {shlex.quote(value)}")
    lines += [
        "Use local copies (model directories saved with save_pretrained or `hf download <id> --local-dir DIR`;",
        "stories as json/jsonl/parquet with a `text` column):",
        "  " + " ".join(parts),
        "or see the pipeline run offline on tiny models (its scores are meaningless):",
        "  uv run main.py --demo",
    ]
    raise SmokeError("\n".join(lines))


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    line = text[0] if text else type(error).__name__
    return line if len(line) <= 240 else line[:237] + "..."
