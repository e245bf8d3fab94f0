"""Fit Binoculars thresholds for an observer/performer pair on labelled human vs AI text, with the evidence.

    uv run scripts/calibrate.py --max-samples=500 --batch-size=1 --output=results/calibration_data.json

writes results/calibration_data.json (thresholds, AUROC, TPR at target FPRs, every sample's score and label) and
results/calibration_data.png (ROC curve and score histograms). Label sources (--source):
  hub          a hub dataset; default Ghostbuster (jionghong94/GhostBuster_v3, columns texts/labels)
  file         a local .json/.jsonl/.csv/.parquet with text + label columns (--data-file; implied by it)
  tinystories  human TinyStories endings vs a policy's endings for the same openings, generated through an
               OpenAI-compatible server: --source=tinystories --base-url=http://localhost:8000/v1
Point the environment's `calibration_file` (or `Binoculars(thresholds=...)`) at the JSON; it reads
`thresholds["accuracy"]` and `thresholds["low-fpr"]` (the latter only when the sample supports --low-fpr-target).
"""

from __future__ import annotations

import argparse
import functools
import os
import sys

from binoculars import DEFAULT_OBSERVER, DEFAULT_PERFORMER, FALCON_7B_THRESHOLDS, Binoculars, ModelLoadError
from binoculars.calibration import (
    DEFAULT_LOW_FPR_TARGET,
    DEFAULT_TARGET_FPRS,
    balanced_sample,
    build_report,
    score_samples,
    write_report,
)
from binoculars_rl.calibration_sources import (
    DEFAULT_AI_VALUES,
    DEFAULT_CONTINUATION_PROMPT,
    DEFAULT_HUMAN_VALUES,
    GHOSTBUSTER_DATASET,
    GHOSTBUSTER_LABEL_COLUMN,
    GHOSTBUSTER_TEXT_COLUMN,
    TINYSTORIES_DATASET,
    CalibrationDataError,
    chat_continuations,
    load_labelled_file,
    load_labelled_hub,
    load_story_texts,
    tinystories_vs_policy,
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
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
        "--seed", type=int, default=0, help="seed of the balanced sampling (and generation prompts)"
    )
    out.add_argument(
        "--output", default="results/calibration_data.json", help="JSON path; the PNG goes beside it"
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
        choices=["hub", "file", "tinystories"],
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

    gen = parser.add_argument_group("tinystories source (policy generations)")
    gen.add_argument(
        "--base-url", default=None, help="OpenAI-compatible endpoint, e.g. http://localhost:8000/v1"
    )
    gen.add_argument(
        "--policy-model", default=None, help="model name on the server; None: the one model it serves"
    )
    gen.add_argument("--api-key", default=None, help="API key; None: $OPENAI_API_KEY, else 'EMPTY'")
    gen.add_argument("--stories-dataset", default=TINYSTORIES_DATASET, help="hub dataset of human stories")
    gen.add_argument("--stories-split", default="validation", help="split of --stories-dataset")
    gen.add_argument(
        "--stories-file", default=None, help="local file with a 'text' column instead of the hub"
    )
    gen.add_argument(
        "--opening-sentences", type=int, default=2, help="sentences of each story given as the opening"
    )
    gen.add_argument(
        "--prompt-template", default=DEFAULT_CONTINUATION_PROMPT, help="chat prompt with {opening}"
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


def load_samples(args: argparse.Namespace):
    """(labelled texts, description of the source) for the chosen --source."""
    ghostbuster_default = args.source == "hub" and args.dataset == GHOSTBUSTER_DATASET
    text_column = args.text_column or (GHOSTBUSTER_TEXT_COLUMN if ghostbuster_default else "text")
    label_column = args.label_column or (GHOSTBUSTER_LABEL_COLUMN if ghostbuster_default else "label")
    labels = {
        "ai_values": tuple(args.ai_label or DEFAULT_AI_VALUES),
        "human_values": tuple(args.human_label or DEFAULT_HUMAN_VALUES),
    }
    columns = {"text_column": text_column, "label_column": label_column}
    if args.source == "file":
        if not args.data_file:
            raise CalibrationDataError("--source=file needs --data-file")
        samples = load_labelled_file(args.data_file, **columns, **labels)
        return samples, {"kind": "file", "path": args.data_file, **columns}
    if args.source == "hub":
        samples = load_labelled_hub(
            args.dataset, args.split, **columns, **labels, config_name=args.dataset_config
        )
        return samples, {"kind": "hub", "dataset": args.dataset, "split": args.split, **columns}
    if not args.base_url:
        raise CalibrationDataError("--source=tinystories needs --base-url of an OpenAI-compatible server")
    stories = load_story_texts(args.stories_dataset, args.stories_split, args.stories_file)
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
    samples = tinystories_vs_policy(
        stories, generate, args.max_samples // 2, args.seed, args.opening_sentences, args.prompt_template
    )
    source = {
        "kind": "tinystories-vs-policy",
        "stories": args.stories_file or f"{args.stories_dataset}[{args.stories_split}]",
        "base_url": args.base_url,
        "policy_model": model,
        "temperature": args.temperature,
        "gen_max_tokens": args.gen_max_tokens,
        "opening_sentences": args.opening_sentences,
        "prompt_template": args.prompt_template,
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
        samples, source = load_samples(args)
        chosen = balanced_sample(samples, args.max_samples, args.seed)
    except CalibrationDataError as error:
        return fail(error)
    available = {"ai": sum(s.label for s in samples), "human": sum(1 - s.label for s in samples)}
    print(
        f"{len(chosen)} texts ({len(chosen) // 2} AI + {len(chosen) // 2} human) from {available}", flush=True
    )
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
    except (ModelLoadError, ValueError, RuntimeError) as error:
        # a bad path or an offline hub, an unknown dtype, mismatched tokenizers, a missing GPU
        return fail(error)
    scores = score_samples(bino, [s.text for s in chosen], args.batch_size)
    model_info = {
        "observer": args.observer,
        "performer": args.performer,
        "dtype": str(bino.observer_model.dtype).removeprefix("torch."),
        "max_token_observed": args.max_tokens,
        "observer_device": str(bino.observer_device),
        "performer_device": str(bino.performer_device),
        "batch_size": args.batch_size,
    }
    source |= {"seed": args.seed, "max_samples": args.max_samples, "available": available}
    try:
        report = build_report(chosen, scores, model_info, args.target_fpr, args.low_fpr_target, source)
    except CalibrationDataError as error:  # e.g. every text of one class scored NaN
        return fail(error)
    json_path, png_path = write_report(report, args.output)
    print_summary(report)
    print(f"wrote {json_path} and {png_path}")
    return 0


def fail(error: Exception) -> int:
    print(f"calibrate.py: error: {error}", file=sys.stderr)
    return 2


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


if __name__ == "__main__":
    sys.exit(main())
