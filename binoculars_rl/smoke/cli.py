"""`uv run main.py`: smoke rollouts of a policy against the Binoculars reward (see main.py for the commands)."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from pathlib import Path

from rich.console import Console
from rich.panel import Panel
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)

from binoculars_rl.smoke.errors import SmokeError

DEFAULT_POLICY = "Qwen/Qwen3-0.6B"
DEMO_WARNING = (
    "DEMO MODE: tiny models built on this machine (a ~100k-parameter policy, observer and performer) and the "
    "project-written sample stories. The scores and rewards below are MEANINGLESS; they only show that the "
    "whole pipeline (prompts -> policy server -> completions -> Binoculars reward -> table and JSONL) runs."
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="main.py",
        description="Smoke rollouts: sample story continuations from a policy and reward them with the "
        "binoculars-env reward (the one training uses); print a table and a summary, save every rollout as JSONL.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    policy = parser.add_argument_group("policy")
    policy.add_argument(
        "--base-url",
        help="OpenAI-compatible server to sample from (e.g. http://localhost:8000/v1 of `vllm serve`); "
        "default: start an embedded server for --policy and stop it afterwards",
    )
    policy.add_argument(
        "--policy",
        default=None,
        help=f"policy model: hub id or local directory (with --base-url: the name the server serves) "
        f"[default: {DEFAULT_POLICY}]",
    )
    policy.add_argument(
        "--policy-backend",
        choices=["auto", "vllm", "transformers"],
        default="auto",
        help="embedded server: auto = vllm when installed and a GPU is visible, else `transformers serve` (CPU ok)",
    )
    policy.add_argument("--policy-device", default=None, help="`transformers serve --device` (default: auto)")
    policy.add_argument(
        "--gpu-memory-utilization",
        type=float,
        default=0.5,
        help="embedded vllm's share of GPU memory (the scorer loads after the server stops)",
    )
    policy.add_argument("--max-model-len", type=int, default=4096, help="embedded vllm's context length")
    policy.add_argument(
        "--server-startup-timeout", type=float, default=900.0, help="seconds to wait for the embedded server"
    )

    sampling = parser.add_argument_group("rollouts")
    sampling.add_argument("-m", "--num-prompts", type=int, default=4, help="story prompts (M)")
    sampling.add_argument(
        "-n", "--rollouts-per-prompt", type=int, default=2, help="completions per prompt (N)"
    )
    sampling.add_argument(
        "--split",
        choices=["eval", "train"],
        default="eval",
        help="prompts from the env's eval or train split",
    )
    sampling.add_argument(
        "--max-tokens", type=int, default=None, help="completion token limit [default: 256; --demo: 48]"
    )
    sampling.add_argument("--temperature", type=float, default=0.7)
    sampling.add_argument("--top-p", type=float, default=0.8)
    sampling.add_argument(
        "--enable-thinking",
        action="store_true",
        help="let Qwen3 think (sent as chat_template_kwargs; think blocks are removed before scoring)",
    )
    sampling.add_argument("--concurrency", type=int, default=8, help="requests in flight")

    env = parser.add_argument_group("environment (same names as load_environment)")
    env.add_argument("--observer", default=None, help="Binoculars observer (env arg observer_model)")
    env.add_argument("--performer", default=None, help="Binoculars performer (env arg performer_model)")
    env.add_argument(
        "--env-arg",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="an env argument (repeatable; VALUE read as JSON when it parses), e.g. data_files=stories.jsonl, "
        "threshold=0.9, calibration_file=results/calibration_data.json, scorer_device=cuda:0, min_tokens=16",
    )
    env.add_argument("--env-args", default=None, metavar="JSON", help="env arguments as a JSON object")

    out = parser.add_argument_group("output")
    out.add_argument(
        "--output", type=Path, default=None, help="JSONL path [default: outputs/smoke-<time>.jsonl]"
    )
    out.add_argument(
        "--demo",
        action="store_true",
        help="offline demo: tiny models built here, the shipped sample stories, MEANINGLESS scores",
    )
    out.add_argument(
        "--demo-dir",
        type=Path,
        default=Path("outputs/demo-models"),
        help="where --demo keeps its tiny models",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    console = Console(highlight=False)
    try:
        run(args, console)
    except SmokeError as error:
        console.print(f"[bold red]error:[/] {error}", soft_wrap=True)
        return 1
    except KeyboardInterrupt:
        console.print("[bold red]interrupted[/]")
        return 130
    return 0


def run(args: argparse.Namespace, console: Console) -> None:
    # heavy imports after argument parsing, so --help is quick
    from binoculars_rl.smoke.env_args import env_configs, parse_env_args

    if min(args.num_prompts, args.rollouts_per_prompt, args.concurrency) < 1:
        raise SmokeError("--num-prompts, --rollouts-per-prompt and --concurrency must be at least 1")
    env_args = parse_env_args(args.env_arg, args.env_args)
    for flag, key in (("--observer", "observer_model"), ("--performer", "performer_model")):
        value = getattr(args, flag[2:])
        if value is not None:
            if key in env_args and env_args[key] != value:
                raise SmokeError(f"{flag} and env arg {key} disagree; give one")
            env_args[key] = value
    examples_key = "num_eval_examples" if args.split == "eval" else "num_train_examples"
    if examples_key in env_args:
        raise SmokeError(f"set the number of prompts with --num-prompts, not the env arg {examples_key}")
    env_args[examples_key] = args.num_prompts

    policy = args.policy or DEFAULT_POLICY
    backend, device = args.policy_backend, args.policy_device
    if args.demo:
        if args.base_url or args.policy or args.observer or args.performer:
            raise SmokeError(
                "--demo uses its own tiny models: leave out --base-url, --policy, --observer, --performer"
            )
        console.print(Panel(DEMO_WARNING, title="DEMO — SCORES ARE MEANINGLESS", style="bold yellow"))
        tiny = demo_models(args.demo_dir, console)
        from binoculars_env.data import SAMPLE_DATA_FILE

        policy = str(tiny.policy)
        env_args.update(observer_model=str(tiny.observer), performer_model=str(tiny.performer))
        env_args.setdefault("data_files", str(SAMPLE_DATA_FILE))
        env_args.setdefault("scorer_device", "cpu")
        backend, device = "transformers", device or "cpu"
    max_tokens = args.max_tokens or (48 if args.demo else 256)

    data_config, reward_config = env_configs(env_args)
    try:
        threshold = reward_config.resolved_threshold()
    except (OSError, KeyError, ValueError) as error:
        raise SmokeError(f"cannot read the threshold from calibration_file: {error}") from None

    prompts = preflight(args, data_config, reward_config, policy, console)

    from binoculars_rl.smoke.policy_server import embedded_server, external_server
    from binoculars_rl.smoke.rollouts import Sampling, generate, write_jsonl

    stamp = time.strftime("%Y%m%d-%H%M%S")
    output = args.output or Path("outputs") / f"smoke-{stamp}.jsonl"
    sampling = Sampling(
        max_tokens=max_tokens,
        temperature=args.temperature,
        top_p=args.top_p,
        enable_thinking=args.enable_thinking,
        concurrency=args.concurrency,
    )
    total = len(prompts) * args.rollouts_per_prompt
    with progress_bar(console) as progress:
        if args.base_url:
            server_cm = nullcontext(external_server(args.base_url, policy))
        else:
            server_cm = embedded_server(
                policy,
                backend=backend,
                log_path=output.with_name(output.stem + "-policy-server.log"),
                device=device,
                startup_timeout_s=args.server_startup_timeout,
                gpu_memory_utilization=args.gpu_memory_utilization,
                max_model_len=args.max_model_len,
            )
            progress.add_task(f"starting the embedded policy server for {policy}", total=None)
        with server_cm as server:
            _finish_all(progress)
            task = progress.add_task(f"sampling from {server.backend} ({server.base_url})", total=total)
            rollouts = asyncio.run(
                generate(server, prompts, args.rollouts_per_prompt, sampling, lambda: progress.advance(task))
            )
        # the policy server is stopped now: its memory is free for the scorer
        if reward_config.scorer_url is None:
            load = progress.add_task(
                f"loading the scorer ({reward_config.observer_model} / {reward_config.performer_model})",
                total=None,
            )
            load_scorer(reward_config)
            progress.update(load, total=1, completed=1)
        task = progress.add_task("scoring with the env's reward", total=total)
        score_rollouts(rollouts, reward_config, lambda n: progress.advance(task, n))

    write_jsonl(rollouts, output)
    from binoculars_rl.report import print_report

    print_report(console, rollouts, threshold)
    console.print(f"wrote {len(rollouts)} rollouts to {output}")
    if args.demo:
        console.print(
            Panel("The scores and rewards above are MEANINGLESS (tiny demo models).", style="bold yellow")
        )


def preflight(args, data_config, reward_config, policy: str, console: Console):
    """The prompts, once every model and the data are known to load; else one SmokeError that says what to do."""
    from binoculars_env.data import load_story_prompts

    from binoculars_rl.smoke.preflight import (
        Requirement,
        check_models,
        import_transformers_before_threads,
        raise_missing,
    )

    models = []
    if reward_config.scorer_url is None:  # else the scoring service holds the pair
        models.append(Requirement("--observer", "observer", reward_config.observer_model))
        models.append(Requirement("--performer", "performer", reward_config.performer_model))
    if not args.base_url:
        models.insert(0, Requirement("--policy", "policy", policy))
    given = {"--policy": policy, "--observer": reward_config.observer_model}
    given["--performer"] = reward_config.performer_model
    if data_config.data_files is not None and isinstance(data_config.data_files, str):
        given["--env-arg data_files="] = data_config.data_files
    import_transformers_before_threads()
    with (
        console.status("checking that the models and the story data can be loaded"),
        ThreadPoolExecutor(1) as pool,
    ):
        prompts_future = pool.submit(load_story_prompts, data_config, args.split)
        failures = check_models(models)
        try:
            prompts = prompts_future.result()
            data_failure = None
        except (ConnectionError, OSError) as error:
            data_failure = str(error).strip().splitlines()[0]
        except ValueError as error:
            raise SmokeError(f"bad story data: {error}") from None
    if data_failure is not None:
        source = data_config.data_files if data_config.data_files is not None else data_config.dataset_name
        failures.append((Requirement("--env-arg data_files=", "story data", str(source)), data_failure))
    if failures:
        raise_missing(failures, given)
    if not prompts:
        raise SmokeError("the story data gave no prompts (are all stories under min_story_words?)")
    return prompts


def load_scorer(reward_config) -> None:
    from binoculars_env.scorer_pool import get_scorer

    from binoculars import ModelLoadError

    try:
        get_scorer(reward_config.scorer_spec())
    except ModelLoadError as error:
        raise SmokeError(str(error)) from None


def score_rollouts(rollouts, reward_config, on_batch) -> None:
    from binoculars.client import ScoringServiceError
    from binoculars_rl.smoke.rollouts import score

    try:
        score(rollouts, reward_config, on_batch)
    except ScoringServiceError as error:
        raise SmokeError(f"the scoring service at {reward_config.scorer_url} failed: {error}") from None


def demo_models(directory: Path, console: Console):
    """The tiny policy/observer/performer under `directory`, built once (a few minutes on 2 CPU cores)."""
    from binoculars.testing.tiny import TinyPair, build_tiny_pair

    tiny = TinyPair(directory / "observer", directory / "performer", directory / "policy")
    if not all(
        (path / "config.json").exists() and (path / "model.safetensors").exists()
        for path in tiny.__dict__.values()
    ):
        staging = directory.with_name(directory.name + f".building-{os.getpid()}")
        with console.status(
            f"building tiny demo models in {directory} (once; a minute or a few on a laptop CPU)"
        ):
            build_tiny_pair(staging)
        if directory.exists():
            shutil.rmtree(directory)
        staging.rename(directory)
    # `transformers serve` keeps the model's do_sample (off for a fresh model): without it every rollout of a
    # prompt would be the same greedy text. Real policies (Qwen3) ship do_sample=true.
    generation_config = tiny.policy / "generation_config.json"
    settings = json.loads(generation_config.read_text())
    if not settings.get("do_sample"):
        generation_config.write_text(json.dumps({**settings, "do_sample": True}, indent=2))
    return tiny


def progress_bar(console: Console) -> Progress:
    return Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
    )


def _finish_all(progress: Progress) -> None:
    for task in progress.tasks:
        if not task.finished:
            progress.update(task.id, total=1, completed=1)
