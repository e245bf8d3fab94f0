"""Devices, dtypes, text cleaning, tokenizer consistency and threshold files for the Binoculars scorer."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

import torch

# Thresholds from the reference implementation (ahans30/Binoculars). They were fit for the
# Falcon-7B / Falcon-7B-instruct pair and do NOT carry over to other pairs: calibrate yours
# (scripts/calibrate.py) and load the result with `load_thresholds`.
FALCON_7B_ACCURACY_THRESHOLD = 0.9015310749276843
FALCON_7B_LOW_FPR_THRESHOLD = 0.8536432310785527
FALCON_7B_THRESHOLDS = {"accuracy": FALCON_7B_ACCURACY_THRESHOLD, "low-fpr": FALCON_7B_LOW_FPR_THRESHOLD}
MODES = ("accuracy", "low-fpr")
# Code points a str can hold but UTF-8 cannot encode (no tokenizer accepts them): lone surrogates.
_SURROGATE = re.compile("[\ud800-\udfff]")
REPLACEMENT_CHARACTER = "\ufffd"


def default_device() -> torch.device:
    """One GPU if present, else the CPU."""
    return torch.device("cuda:0" if torch.cuda.is_available() else "cpu")


def parse_device(device: str | torch.device) -> torch.device:
    """`device` as a torch.device, or a ValueError naming it and the accepted forms (`cpu`, `cuda`, `cuda:N`)."""
    try:
        return torch.device(device)
    except (RuntimeError, TypeError) as error:
        raise ValueError(
            f"{device!r} is not a device ({error}); use e.g. 'cpu', 'cuda' or 'cuda:1' (index >= 0, no sign)"
        ) from None


def resolve_device(device: str | torch.device | None) -> torch.device:
    resolved = default_device() if device is None else parse_device(device)
    if resolved.type == "cuda":
        if not torch.cuda.is_available():
            raise RuntimeError(f"device {resolved} requested but CUDA is not available")
        if resolved.index is None:
            resolved = torch.device("cuda", torch.cuda.current_device())
        if resolved.index >= torch.cuda.device_count():
            raise RuntimeError(
                f"device {resolved} requested but only {torch.cuda.device_count()} GPU(s) visible"
            )
    return resolved


def resolve_dtype(dtype: str | torch.dtype | None, device: torch.device, use_bfloat16: bool) -> torch.dtype:
    """bf16 on GPU (unless use_bfloat16=False), fp32 on CPU, unless a dtype is given."""
    if dtype is not None:
        if isinstance(dtype, str):
            resolved = getattr(torch, dtype.removeprefix("torch."), None)
            if not isinstance(resolved, torch.dtype):
                raise ValueError(f"unknown dtype {dtype!r} (use e.g. 'float32', 'bfloat16', 'float16')")
            return resolved
        return dtype
    return torch.bfloat16 if device.type == "cuda" and use_bfloat16 else torch.float32


def clean_text(text: str) -> str:
    """`text` with every code point UTF-8 cannot encode (lone surrogates such as "\\ud800") replaced by U+FFFD,
    one character for one, so character offsets into the cleaned text are offsets into `text`."""
    return _SURROGATE.sub(REPLACEMENT_CHARACTER, text)


def max_token_chars(tokenizer: Any) -> int:
    """An upper bound on the characters of text one token covers: the longest entry of the vocabulary (special
    tokens included). A byte-level BPE entry spells one symbol per byte and a character is at least one byte;
    SentencePiece's `▁` and WordPiece's `##` only make entries longer than the text they cover."""
    return max(len(token) for token in tokenizer.get_vocab())


# Text that exercises byte-level fallbacks, special tokens, digits and whitespace.
_PROBE_TEXT = "Hello world! 1234 ünïcödé 你好 🙂\n\t<|endoftext|> <|im_start|>assistant"


def check_tokenizers_consistent(observer_tokenizer: Any, performer_tokenizer: Any) -> None:
    """Raise ValueError unless both tokenizers map text to the same ids (Binoculars compares
    the two models position by position, so a single differing id corrupts every score)."""
    if observer_tokenizer.get_vocab() != performer_tokenizer.get_vocab():
        raise ValueError(
            "observer and performer tokenizers have different vocabularies; Binoculars needs two models "
            "that share one tokenizer (e.g. a base model and its instruct fine-tune)"
        )
    observer_ids = observer_tokenizer(_PROBE_TEXT, add_special_tokens=False)["input_ids"]
    performer_ids = performer_tokenizer(_PROBE_TEXT, add_special_tokens=False)["input_ids"]
    if observer_ids != performer_ids:
        raise ValueError(
            "observer and performer tokenizers encode the same text differently "
            f"({observer_ids[:12]}... vs {performer_ids[:12]}...); Binoculars needs identical tokenization"
        )


def save_thresholds(path: str | Path, thresholds: dict[str, float], **metadata: Any) -> None:
    """Write `{"thresholds": {...}, **metadata}` as JSON (the format `load_thresholds` reads). A `scale` (the
    reward scale, see `load_scale`) or `max_log_ppl` (the fluency ceiling) in `metadata` must be a positive finite
    number."""
    for name in ("scale", "max_log_ppl"):
        if name in metadata:
            metadata[name] = _validated_positive(metadata[name], name, source=str(path))
    payload = {"thresholds": _validated_thresholds(thresholds, source=str(path)), **metadata}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2) + "\n")


def load_thresholds(path: str | Path) -> dict[str, float]:
    """Read the `thresholds` mapping (mode -> float) of a calibration JSON."""
    return _validated_thresholds(_read_calibration(path)["thresholds"], source=str(path))


def load_scale(path: str | Path) -> float | None:
    """Read the `scale` of a calibration JSON (the pooled within-class standard deviation of the scores, written
    by `binoculars.calibration.build_report`); None for a file without one (written before it existed).
    A `scale` that is not a positive finite number is a ValueError."""
    return _load_positive(path, "scale")


def load_max_log_ppl(path: str | Path) -> float | None:
    """Read the `max_log_ppl` of a calibration JSON (the fluency ceiling fitted on its human texts, see
    `binoculars.calibration.fluency_ceiling`); None for a file without one (written before it existed).
    A value that is not a positive finite number is a ValueError."""
    return _load_positive(path, "max_log_ppl")


def _load_positive(path: str | Path, name: str) -> float | None:
    """The positive finite number `name` of a calibration JSON; None when the file has no `name`."""
    payload = _read_calibration(path)
    if name not in payload:
        return None
    return _validated_positive(payload[name], name, source=str(path))


def _read_calibration(path: str | Path) -> dict[str, Any]:
    """The JSON object of a calibration file, which must hold a `thresholds` object."""
    path = Path(path)
    try:
        payload = json.loads(path.read_text())
    except FileNotFoundError:
        raise FileNotFoundError(f"threshold file not found: {path}") from None
    except json.JSONDecodeError as error:
        raise ValueError(f"threshold file {path} is not valid JSON: {error}") from None
    if not isinstance(payload, dict) or not isinstance(payload.get("thresholds"), dict):
        raise ValueError(
            f'threshold file {path} has no "thresholds" object (expected {{"thresholds": {{...}}}})'
        )
    return payload


def _validated_positive(value: Any, name: str, source: str) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or value <= 0
    ):
        raise ValueError(f"{name} in {source} must be a positive finite number, got {value!r}")
    return float(value)


def _validated_thresholds(thresholds: dict[str, Any], source: str) -> dict[str, float]:
    if not thresholds:
        raise ValueError(f"no thresholds in {source}")
    validated = {}
    for name, value in thresholds.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ValueError(f"threshold {name!r} in {source} must be a finite number, got {value!r}")
        validated[str(name)] = float(value)
    return validated
