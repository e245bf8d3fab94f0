"""Fit Binoculars thresholds for an observer/performer pair on labelled human vs AI text, with the evidence.

    uv run scripts/calibrate.py --max-samples=500 --batch-size=1 --output=results/calibration_data.json

writes results/calibration_data.json (thresholds, AUROC, TPR at target FPRs, every sample's score and label),
results/calibration_data.png (ROC curve and score histograms) and, for the detector panel (Fast-DetectGPT,
log-rank, log-likelihood, entropy: docs/panel.md), per-criterion thresholds, AUROC and scale in the JSON's
`criteria` with every criterion's ROC in results/calibration_data.criteria.png. Label sources (--source):
  hub     a hub dataset; default Ghostbuster's creative-writing domain (jionghong94/GhostBuster_v3, columns
          texts/labels/domains; --domain all for every domain)
  file    a local .json/.jsonl/.csv/.parquet with text + label columns (--data-file; implied by it)
  policy  your human text (--human-file, or --human-source=fortunes) vs a policy's continuations of the env's
          story prompts, generated through an OpenAI-compatible server: --source=policy --human-file=human.txt
          --base-url=http://localhost:8000/v1   (TinyStories is AI-written: it only supplies the openings)
Scores are checkpointed as they are computed in results/calibration_data.scores.jsonl: an interrupted run
(Ctrl-C, SIGTERM, a crash) keeps them, and the same command with --resume scores only the rest (the checkpoint
is deleted once the report is written). Output paths, models and data are checked before anything slow starts.
Point the environment's `calibration_file` (or `Binoculars(thresholds=...)`) at the JSON; it reads
`thresholds["accuracy"]` and `thresholds["low-fpr"]` (the latter only when the sample supports --low-fpr-target).
With at least 20 human texts the JSON also holds `profile_bands`, the human-profile bands (binoculars_env.profile)
fitted on the human class, which the reward then uses instead of the shipped ones.
"""

from __future__ import annotations

import argparse
import functools
import os
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from binoculars import DEFAULT_OBSERVER, DEFAULT_PERFORMER, FALCON_7B_THRESHOLDS, Binoculars, ModelLoadError
from binoculars.calibration import (
    DEFAULT_LOW_FPR_TARGET,
    DEFAULT_TARGET_FPRS,
    HUMAN_CLASS,
    CheckpointError,
    LabelledText,
    ScoreCheckpoint,
    balanced_sample,
    build_report,
    checkpoint_path_for,
    plot_path_for,
    score_samples,
    write_report,
)
from binoculars.panel_calibration import criteria_plot_path_for, criteria_report, plot_criteria_roc
from binoculars_rl.calibration_sources import (
    ALL_DOMAINS,
    DEFAULT_AI_VALUES,
    DEFAULT_HUMAN_VALUES,
    GHOSTBUSTER_CREATIVE_DOMAIN,
    GHOSTBUSTER_DATASET,
    GHOSTBUSTER_DOMAIN_COLUMN,
    GHOSTBUSTER_LABEL_COLUMN,
    GHOSTBUSTER_TEXT_COLUMN,
    STORY_PROMPTS_DATASET,
    CalibrationDataError,
    DataUnavailableError,
    chat_continuations,
    load_labelled_file,
    load_labelled_hub,
    load_story_texts,
    policy_vs_human,
)
from binoculars_rl.human_text import HumanTextError, fortune_passages, read_human_file
from binoculars_rl.interrupts import sigterm_as_keyboard_interrupt
from binoculars_rl.paths import UnwritableOutputError, ensure_writable
from binoculars_rl.smoke.preflight import (
    PLACEHOLDERS,
    Requirement,
    check_models,
    failure_lines,
    import_transformers_before_threads,
    local_command,
    work_offline_if_hub_unreachable,
)

SOURCES = ("hub", "file", "policy")
TINYSTORIES_GONE = (
    "--source tinystories is gone: TinyStories was written by GPT-3.5/GPT-4, so its endings are AI text and "
    "must not be the human class; use --source policy with --human-file FILE (or --human-source fortunes) to "
    "pair human text with your policy's stories, or the default Ghostbuster creative-writing data"
)
HUMAN_SOURCES = {"fortunes": fortune_passages}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )

    def source_name(value: str) -> str:
        """--source's type: the removed source is one error line saying why and what to use instead."""
        if value == "tinystories":
            parser.exit(2, f"calibrate.py: error: {TINYSTORIES_GONE}\n")
        return value

    models = parser.add_argument_group("scorer")
    models.add_argument("--observer", default=DEFAULT_OBSERVER, help="observer model (hub id or local dir)")
    models.add_argument("--performer", default=DEFAULT_PERFORMER, help="performer model (hub id or dir)")
    models.add_argument(
        "--max-tokens", type=int, default=512, help="tokens scored per text (max_token_observed)"
    )
    models.add_argument("--batch-size", type=int, default=8, help="texts per scoring call")
    models.add_argument(
        "--dtype", default=None, help="model dtype, e.g. float32/bfloat16; None: bf16 on GPU, fp32 on CPU"
    )
    models.add_argument(
        "--device", default=None, help="device for both models; None: cuda:0 if present, else cpu"
    )

    out = parser.add_argument_group("sampling and output")
    out.add_argument("--max-samples", type=int, default=500, help="texts in all, half AI and half human")
    out.add_argument(
        "--seed", type=int, default=0, help="seed of the balanced sampling (and policy prompts, human texts)"
    )
    out.add_argument(
        "--output", default="results/calibration_data.json", help="JSON path; the PNG goes beside it"
    )
    out.add_argument(
        "--resume",
        action="store_true",
        help="continue an interrupted run from the scores checkpointed beside --output (NAME.scores.jsonl): "
        "only texts not yet scored are scored; same models, --max-tokens, data, --max-samples and --seed",
    )
    out.add_argument(
        "--target-fpr",
        type=float,
        nargs="+",
        default=list(DEFAULT_TARGET_FPRS),
        help="false-positive rates to report",
    )
    out.add_argument(
        "--low-fpr-target",
        type=float,
        default=DEFAULT_LOW_FPR_TARGET,
        help='FPR whose threshold becomes thresholds["low-fpr"] (needs >= 1/FPR human texts)',
    )

    data = parser.add_argument_group("labelled data")
    data.add_argument(
        "--source",
        type=source_name,
        choices=SOURCES,
        default=None,
        help="None: file if --data-file is given, else hub",
    )
    data.add_argument(
        "--data-file", default=None, help="local .json/.jsonl/.csv/.parquet with text and label columns"
    )
    data.add_argument("--dataset", default=GHOSTBUSTER_DATASET, help="hub dataset id for --source=hub")
    data.add_argument("--dataset-config", default=None, help="hub dataset config name")
    data.add_argument("--split", default="train", help="hub dataset split")
    data.add_argument(
        "--text-column",
        default=None,
        help=f"text column; None: {GHOSTBUSTER_TEXT_COLUMN!r} for the Ghostbuster default, else 'text'",
    )
    data.add_argument(
        "--label-column",
        default=None,
        help=f"label column; None: {GHOSTBUSTER_LABEL_COLUMN!r} for the Ghostbuster default, else 'label'",
    )
    data.add_argument(
        "--domain",
        default=None,
        help=f"keep only rows whose --domain-column equals this ({ALL_DOMAINS!r}: every row); None: "
        f"{GHOSTBUSTER_CREATIVE_DOMAIN!r} (creative writing) for the Ghostbuster default, else every row",
    )
    data.add_argument(
        "--domain-column", default=GHOSTBUSTER_DOMAIN_COLUMN, help="column --domain is matched against"
    )
    data.add_argument(
        "--ai-label",
        action="append",
        default=None,
        help=f"label value meaning AI-generated, repeatable; None: {', '.join(DEFAULT_AI_VALUES)}",
    )
    data.add_argument(
        "--human-label",
        action="append",
        default=None,
        help=f"label value meaning human-written, repeatable; None: {', '.join(DEFAULT_HUMAN_VALUES)}",
    )

    gen = parser.add_argument_group("policy source (your human text vs the policy's stories)")
    human = gen.add_mutually_exclusive_group()
    human.add_argument(
        "--human-file", default=None, help="human texts: .txt (one per line) or .jsonl (a 'text' field)"
    )
    human.add_argument(
        "--human-source",
        choices=sorted(HUMAN_SOURCES),
        default=None,
        help="built-in human text: Debian fortunes prose passages (apt-get install fortunes fortunes-min)",
    )
    gen.add_argument(
        "--base-url", default=None, help="OpenAI-compatible endpoint, e.g. http://localhost:8000/v1"
    )
    gen.add_argument(
        "--policy-model", default=None, help="model name on the server; None: the one model it serves"
    )
    gen.add_argument("--api-key", default=None, help="API key; None: $OPENAI_API_KEY, else 'EMPTY'")
    gen.add_argument(
        "--stories-dataset",
        default=STORY_PROMPTS_DATASET,
        help="hub dataset the story openings are cut from (only openings are used: TinyStories is AI-written)",
    )
    gen.add_argument("--stories-split", default="validation", help="split of --stories-dataset")
    gen.add_argument(
        "--stories-file", default=None, help="local file with a 'text' column instead of the hub"
    )
    gen.add_argument(
        "--opening-sentences", type=int, default=2, help="sentences of each story given as the opening"
    )
    gen.add_argument(
        "--prompt-template", default=None, help="chat prompt with {opening}; None: the env's own prompt"
    )
    gen.add_argument("--gen-max-tokens", type=int, default=256, help="max tokens per policy completion")
    gen.add_argument("--temperature", type=float, default=0.7, help="sampling temperature of the policy")
    gen.add_argument("--concurrency", type=int, default=8, help="parallel requests to the server")
    gen.add_argument(
        "--keep-thinking",
        action="store_true",
        help="do not send chat_template_kwargs={'enable_thinking': False} (servers that reject it)",
    )
    args = parser.parse_args(argv)
    args.api_key = args.api_key or os.environ.get("OPENAI_API_KEY", "EMPTY")
    for fpr in [*args.target_fpr, args.low_fpr_target]:
        if not 0 < fpr < 1:
            parser.error(f"false-positive rates must lie strictly between 0 and 1, got {fpr}")
    if args.batch_size < 1:
        parser.error(f"--batch-size must be at least 1, got {args.batch_size}")
    if args.source is None:
        args.source = "file" if args.data_file else "hub"
    return args


class Unavailable(Exception):
    """Models or data that cannot be had (offline, not downloaded, no such path): exit code 1."""


def output_paths(args: argparse.Namespace) -> tuple[Path, Path, Path]:
    """(JSON, PNG, score checkpoint), each checked writable before anything loads; the checkpoint must exist
    with --resume and must not without it (an earlier run's scores are never overwritten)."""
    report = Path(args.output)
    if report.suffix.lower() == ".png":
        raise CalibrationDataError(f"--output {report} is the report's JSON path; the PNG goes beside it")
    paths = report, plot_path_for(report), checkpoint_path_for(report)
    for path in paths:
        ensure_writable(path, "--output")
    checkpoint = paths[2]
    if args.resume and not checkpoint.is_file():
        raise CalibrationDataError(
            f"--resume: no checkpoint {checkpoint} to resume (it sits beside --output)"
        )
    if not args.resume and checkpoint.exists():
        raise CalibrationDataError(
            f"{checkpoint} holds the scores of an unfinished run: add --resume to continue it, or move it "
            "away to start over"
        )
    return paths


def needs_hub(args: argparse.Namespace) -> bool:
    """Whether a model or the data would come from the hub (not a local path)."""
    local_data = args.source == "file" or (args.source == "policy" and args.stories_file)
    models_local = all(Path(m).expanduser().exists() for m in (args.observer, args.performer))
    return not (local_data and models_local)


def data_requirement(args: argparse.Namespace) -> Requirement:
    """The data as a preflight requirement; its flag is the one that points at a local copy."""
    if args.source == "file":
        return Requirement("--data-file", "data file (--data-file)", str(args.data_file))
    if args.source == "hub":
        return Requirement("--data-file", "dataset (--dataset)", args.dataset)
    if args.stories_file:
        return Requirement("--stories-file", "stories (--stories-file)", args.stories_file)
    return Requirement("--stories-file", "stories (--stories-dataset)", args.stories_dataset)


def preflight(args: argparse.Namespace):
    """The data (labelled texts; human texts and stories for --source=policy) once both models and the data are known to
    load; else one Unavailable naming every missing piece. With the hub unreachable, work offline at once."""
    if needs_hub(args):
        offline_because = work_offline_if_hub_unreachable()
        if offline_because:
            print(
                f"calibrate.py: the Hugging Face hub is unreachable ({offline_because}); working offline "
                "(HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1): local paths and the hub cache only",
                file=sys.stderr,
            )
    models = [
        Requirement("--observer", "observer (--observer)", args.observer),
        Requirement("--performer", "performer (--performer)", args.performer),
    ]
    import_transformers_before_threads()
    with ThreadPoolExecutor(1) as pool:
        data_future = pool.submit(load_data, args)
        failures = check_models(models)
        try:
            data, data_error = data_future.result(), None
        except CalibrationDataError as error:
            data, data_error = None, error
    if data_error is not None and (failures or isinstance(data_error, DataUnavailableError)):
        failures.append((data_requirement(args), str(data_error)))
    elif data_error is not None:
        raise data_error
    if failures:
        raise Unavailable(missing_message(args, failures))
    return data


def missing_message(args: argparse.Namespace, failures) -> str:
    given = {"--observer": args.observer, "--performer": args.performer}
    given |= {"--data-file": args.data_file, "--stories-file": args.stories_file}
    placeholders = {flag: PLACEHOLDERS[flag] for flag in ("--observer", "--performer")}
    placeholders |= {"--data-file": "/path/to/labelled.jsonl", "--stories-file": "/path/to/stories.jsonl"}
    command = "HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 uv run scripts/calibrate.py"
    lines = ["calibration cannot start: these could not be loaded (offline, or not downloaded yet?)"]
    lines += failure_lines(failures)
    lines += [
        "Offline, set HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 and use local copies (model directories saved with "
        "save_pretrained or `hf download <id> --local-dir DIR`; data as json/jsonl/csv/parquet):",
        "  " + local_command(command, placeholders, failures, given),
    ]
    return "\n".join(lines)


def load_data(args: argparse.Namespace) -> list[LabelledText] | tuple[list[str], list[str]]:
    """The labelled texts of --source=file/hub, or (human texts, stories to cut openings from) for
    --source=policy."""
    if args.source == "file":
        if not args.data_file:
            raise CalibrationDataError("--source=file needs --data-file")
        return load_labelled_file(args.data_file, **columns(args), **label_values(args), **domain(args))
    if args.source == "hub":
        return load_labelled_hub(
            args.dataset,
            args.split,
            **columns(args),
            **label_values(args),
            config_name=args.dataset_config,
            **domain(args),
        )
    if not args.base_url:
        raise CalibrationDataError("--source=policy needs --base-url of an OpenAI-compatible server")
    if not (args.human_file or args.human_source):
        raise CalibrationDataError(
            "--source=policy needs human text: --human-file FILE (.txt or .jsonl) or --human-source fortunes"
        )
    try:
        human = read_human_file(args.human_file) if args.human_file else HUMAN_SOURCES[args.human_source]()
    except HumanTextError as error:
        raise CalibrationDataError(str(error)) from None
    return human, load_story_texts(args.stories_dataset, args.stories_split, args.stories_file)


def domain(args: argparse.Namespace) -> dict[str, str | None]:
    """--domain as load_labelled_* take it: Ghostbuster's creative writing unless told otherwise."""
    ghostbuster_default = args.source == "hub" and args.dataset == GHOSTBUSTER_DATASET
    value = args.domain or (GHOSTBUSTER_CREATIVE_DOMAIN if ghostbuster_default else ALL_DOMAINS)
    return {"domain": value, "domain_column": args.domain_column}


def columns(args: argparse.Namespace) -> dict[str, str]:
    ghostbuster_default = args.source == "hub" and args.dataset == GHOSTBUSTER_DATASET
    return {
        "text_column": args.text_column or (GHOSTBUSTER_TEXT_COLUMN if ghostbuster_default else "text"),
        "label_column": args.label_column or (GHOSTBUSTER_LABEL_COLUMN if ghostbuster_default else "label"),
    }


def label_values(args: argparse.Namespace) -> dict[str, tuple[str, ...]]:
    return {
        "ai_values": tuple(args.ai_label or DEFAULT_AI_VALUES),
        "human_values": tuple(args.human_label or DEFAULT_HUMAN_VALUES),
    }


def labelled_samples(args: argparse.Namespace, data):
    """(labelled texts, description of the source) from what `load_data` gave (policy continuations generated
    now for --source=policy)."""
    if args.source == "file":
        return data, {"kind": "file", "path": args.data_file, **columns(args), **domain(args)}
    if args.source == "hub":
        source = {
            "kind": "hub",
            "dataset": args.dataset,
            "split": args.split,
            **columns(args),
            **domain(args),
        }
        return data, source
    model = args.policy_model or served_model(args.base_url, args.api_key)
    generate = functools.partial(
        chat_continuations,
        base_url=args.base_url,
        model=model,
        api_key=args.api_key,
        max_tokens=args.gen_max_tokens,
        temperature=args.temperature,
        concurrency=args.concurrency,
        disable_thinking=not args.keep_thinking,
    )
    human, stories = data
    samples = policy_vs_human(
        human,
        stories,
        generate,
        args.max_samples // 2,
        args.seed,
        args.opening_sentences,
        args.prompt_template,
    )
    source = {
        "kind": "policy-vs-human",
        "human": args.human_file or args.human_source,
        "story_openings": args.stories_file or f"{args.stories_dataset}[{args.stories_split}]",
        "base_url": args.base_url,
        "policy_model": model,
        "temperature": args.temperature,
        "gen_max_tokens": args.gen_max_tokens,
        "opening_sentences": args.opening_sentences,
        "prompt_template": args.prompt_template or "the env's prompt",
    }
    return samples, source


def served_model(base_url: str, api_key: str) -> str:
    """The one model an OpenAI-compatible server serves (ask for --policy-model when there are several)."""
    from openai import OpenAI, OpenAIError

    try:
        names = [m.id for m in OpenAI(base_url=base_url, api_key=api_key).models.list()]
    except OpenAIError as error:
        raise CalibrationDataError(
            f"cannot list the models of {base_url}: {type(error).__name__}: {error}"
        ) from None
    if len(names) != 1:
        raise CalibrationDataError(
            f"{base_url} serves {len(names)} models {names}; choose one with --policy-model"
        )
    return names[0]


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        if args.max_samples < 2:
            raise CalibrationDataError(f"--max-samples must be at least 2, got {args.max_samples}")
        json_path, _, checkpoint_path = output_paths(args)
        ensure_writable(criteria_plot_path_for(json_path), "--output")
        samples, source = labelled_samples(args, preflight(args))
        chosen = balanced_sample(samples, args.max_samples, args.seed)
        checkpoint = ScoreCheckpoint(checkpoint_path, chosen)
        settings = {
            "observer": args.observer,
            "performer": args.performer,
            "max_token_observed": args.max_tokens,
        }
        done = checkpoint.resume(settings) if args.resume else {}
    except (CalibrationDataError, CheckpointError, UnwritableOutputError) as error:
        return fail(error)
    except Unavailable as error:
        return fail(error, exit_code=1)
    available = {"ai": sum(s.label for s in samples), "human": sum(1 - s.label for s in samples)}
    print(
        f"{len(chosen)} texts ({len(chosen) // 2} AI + {len(chosen) // 2} human) from {available}", flush=True
    )
    if args.resume:
        print(f"resuming {checkpoint_path}: {len(done)} of {len(chosen)} texts already scored", flush=True)
    try:
        bino = Binoculars(
            args.observer,
            args.performer,
            max_token_observed=args.max_tokens,
            device=args.device,
            dtype=args.dtype,
            batch_size=args.batch_size,
            thresholds=FALCON_7B_THRESHOLDS,  # unused here; passed to silence the "uncalibrated" warning
        )
        dtype = {"dtype": str(bino.observer_model.dtype).removeprefix("torch.")}
        if args.resume:
            checkpoint.check_settings(dtype)
        else:
            checkpoint.start(settings | dtype | {"batch_size": args.batch_size})
    except (ModelLoadError, ValueError, RuntimeError) as error:
        # a bad path or an offline hub, an unknown dtype, mismatched tokenizers, a missing GPU; a checkpoint
        # made in another dtype (CheckpointError is a ValueError)
        return fail(error)
    try:
        with sigterm_as_keyboard_interrupt():
            scores = score_samples(
                bino, [s.text for s in chosen], args.batch_size, done=done, on_scored=checkpoint.append
            )
    except KeyboardInterrupt:
        print(f"\ninterrupted: {unfinished(checkpoint, len(chosen))}", file=sys.stderr)
        return 130
    except BaseException:
        print(f"calibrate.py: scoring failed: {unfinished(checkpoint, len(chosen))}", file=sys.stderr)
        raise
    model_info = {
        "observer": args.observer,
        "performer": args.performer,
        **dtype,
        "max_token_observed": args.max_tokens,
        "observer_device": str(bino.observer_device),
        "performer_device": str(bino.performer_device),
        "batch_size": args.batch_size,
    }
    source |= {"seed": args.seed, "max_samples": args.max_samples, "available": available}
    try:
        report = build_report(chosen, scores, model_info, args.target_fpr, args.low_fpr_target, source)
        report["criteria"] = criteria_report(chosen, scores, args.target_fpr, args.low_fpr_target)
    except CalibrationDataError as error:  # e.g. every text of one class scored NaN
        return fail(error)
    from binoculars_env.profile import profile_bands_entry

    report |= profile_bands_entry([s.text for s in chosen if s.label == HUMAN_CLASS])
    json_path, png_path = write_report(report, json_path)
    criteria_png = criteria_plot_path_for(json_path)
    plot_criteria_roc(report, criteria_png)
    checkpoint_path.unlink()  # every score is in the report now
    print_summary(report)
    print_criteria(report)
    print(f"wrote {json_path}, {png_path} and {criteria_png}")
    return 0


def unfinished(checkpoint: ScoreCheckpoint, total: int) -> str:
    return (
        f"{checkpoint.saved} of {total} scores are saved in {checkpoint.path}; run the same command with "
        "--resume to score only the rest"
    )


def fail(error: Exception, exit_code: int = 2) -> int:
    print(f"calibrate.py: error: {error}", file=sys.stderr)
    return exit_code


def print_summary(report: dict) -> None:
    counts = report["counts"]
    print(f"AUROC {report['auroc']:.4f} on {counts['ai']} AI + {counts['human']} human texts", end="")
    print(f" ({counts['excluded_nan']} excluded: < 2 tokens)" if counts["excluded_nan"] else "")
    best = report["best_accuracy"]
    print(
        f"accuracy threshold {best['threshold']:.6f}: accuracy {best['accuracy']:.4f}, "
        f"TPR {best['tpr']:.4f}, FPR {best['fpr']:.4f}"
    )
    for entry in report["target_fprs"]:
        if entry["supported"]:
            print(
                f"FPR <= {entry['target_fpr']:g}: threshold {entry['threshold']:.6f}, "
                f"TPR {entry['tpr']:.4f} (observed FPR {entry['fpr']:.4f})"
            )
        else:
            print(f"FPR <= {entry['target_fpr']:g}: {entry['note']}")
    if "low-fpr" not in report["thresholds"]:
        print(
            f'warning: no "low-fpr" threshold written: target FPR {report["low_fpr_target"]:g} needs more human '
            "texts than the sample has (raise --max-samples or --low-fpr-target)",
            file=sys.stderr,
        )


def print_criteria(report: dict) -> None:
    """One line per criterion of the detector panel: AUROC, decision rule and thresholds."""
    print("detector panel (docs/panel.md):")
    for name, entry in report["criteria"].items():
        rule = "<" if entry["direction"] == "low" else ">"
        cuts = ", ".join(f"{key} {value:.6g}" for key, value in entry["thresholds"].items())
        print(f"  {name:15} AUROC {entry['auroc']:.4f}  AI when value {rule} threshold: {cuts}")


if __name__ == "__main__":
    sys.exit(main())
