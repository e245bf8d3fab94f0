"""Degeneracy report for a policy checkpoint or a JSONL of completions: unique-sample fraction, mean pairwise
Jaccard, distinct-1/2, mean length, Binoculars score distribution, flagged-as-AI rate, likely template collapse.

    uv run scripts/eval_degeneracy.py --completions outputs/rollouts.jsonl
    uv run scripts/eval_degeneracy.py --checkpoint runs/<run>/ --num-prompts 200 --max-new-tokens 256
    uv run scripts/eval_degeneracy.py --completions outputs/after.jsonl --baseline-completions outputs/before.jsonl

JSONL input: one object per line with the completion in `completion` (a string or a chat message list, e.g.
main.py's rollouts and train.py's samples/eval files) or `text`. A checkpoint (full model or LoRA adapter dir)
gets one sampled completion per held-out prompt of the environment (its eval split, or the seeded hold-out of
--data-files), thinking off; they are written to <checkpoint>/degeneracy_completions.jsonl.
Collapse criteria (binoculars_rl.degeneracy): unique fraction < --min-unique-fraction or mean pairwise Jaccard
>= --max-mean-jaccard. Prints a table and writes the JSON report to --output; exit 1 with --fail-on-collapse.
Scored texts also get the detector panel's per-criterion flag rates (thresholds from --calibration-file's
per-criterion calibration, docs/panel.md); with --baseline-completions (e.g. the untrained policy's), before and
after side by side: trained against Binoculars, how often do the other detectors still catch it?
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from binoculars_env.data import DEFAULT_DATASET, DataConfig
from binoculars_env.reward import RewardConfig
from rich.console import Console

from binoculars_rl.completions import COMPLETION_FIELDS, read_completions
from binoculars_rl.degeneracy import CollapseCriteria
from binoculars_rl.evaluation import checkpoint_completions, eval_prompts, evaluate_texts, write_completions
from binoculars_rl.panel_report import panel_table
from binoculars_rl.paths import ensure_writable
from binoculars_rl.report import report_table
from binoculars_rl.trl_reward import BinocularsReward


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Defaults beside each option, and the description's example lines kept as written."""


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=HelpFormatter)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--completions", type=Path, help=f"JSONL with a completion field ({'/'.join(COMPLETION_FIELDS)})"
    )
    source.add_argument(
        "--checkpoint", type=Path, help="model or LoRA adapter directory to sample completions from"
    )
    parser.add_argument("--output", type=Path, help="JSON report path (default: next to the input)")
    parser.add_argument(
        "--baseline-completions",
        type=Path,
        help="JSONL of the run to compare with (e.g. before training): its panel flag rates beside these",
    )
    parser.add_argument(
        "--fail-on-collapse", action="store_true", help="exit 1 when template collapse is likely"
    )
    crit = parser.add_argument_group("collapse criteria")
    crit.add_argument("--min-unique-fraction", type=float, default=CollapseCriteria.min_unique_fraction)
    crit.add_argument("--max-mean-jaccard", type=float, default=CollapseCriteria.max_mean_jaccard)
    gen = parser.add_argument_group("checkpoint sampling (environment prompts)")
    gen.add_argument("--dataset-name", default=DEFAULT_DATASET)
    gen.add_argument("--data-files", nargs="+", help="local json/jsonl/parquet stories (`text` column)")
    gen.add_argument("--num-prompts", type=int, default=200, help="held-out prompts (one completion each)")
    gen.add_argument(
        "--seed", type=int, default=0, help="prompt shuffle and sampling seed (match training's)"
    )
    gen.add_argument("--max-new-tokens", type=int, default=256)
    gen.add_argument("--temperature", type=float, default=1.0, help="0 for greedy")
    gen.add_argument("--batch-size", type=int, default=16)
    gen.add_argument("--device", help="policy device (default: cuda if available, else cpu)")
    score = parser.add_argument_group("scoring (the environment's reward)")
    score.add_argument("--no-score", action="store_true", help="diversity metrics only (no scorer models)")
    score.add_argument("--observer-model", default=RewardConfig.model_fields["observer_model"].default)
    score.add_argument("--performer-model", default=RewardConfig.model_fields["performer_model"].default)
    score.add_argument("--scorer-device", help="default: cuda:0 if available, else cpu")
    score.add_argument(
        "--threshold", type=float, help="detector threshold (default: calibration file, else 1.0)"
    )
    score.add_argument("--calibration-file", help="scripts/calibrate.py JSON to read the threshold from")
    return parser.parse_args(argv)


def report_path(args: argparse.Namespace) -> Path:
    if args.output is not None:
        return args.output
    if args.completions is not None:
        return args.completions.with_suffix(".degeneracy.json")
    return args.checkpoint / "degeneracy_report.json"


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    console = Console()
    reward = None
    try:
        output = ensure_writable(report_path(args))
        if not args.no_score:
            reward = BinocularsReward(
                RewardConfig(
                    observer_model=args.observer_model,
                    performer_model=args.performer_model,
                    scorer_device=args.scorer_device,
                    threshold=args.threshold,
                    calibration_file=args.calibration_file,
                )
            )
        criteria = CollapseCriteria(args.min_unique_fraction, args.max_mean_jaccard)
        if args.completions is not None:
            texts, prompts = read_completions(args.completions), None
        else:
            prompts = eval_prompts(
                DataConfig(
                    dataset_name=args.dataset_name,
                    data_files=args.data_files,
                    num_eval_examples=args.num_prompts,
                    seed=args.seed,
                )
            )
            texts = checkpoint_completions(
                args.checkpoint,
                prompts,
                args.max_new_tokens,
                args.temperature,
                args.batch_size,
                {"enable_thinking": False},
                args.seed,
                args.device,
            )
        evaluation = evaluate_texts(texts, reward, criteria)
        baseline = None
        if args.baseline_completions is not None:
            if reward is None:
                raise ValueError("--baseline-completions compares detector flag rates: drop --no-score")
            baseline = evaluate_texts(read_completions(args.baseline_completions), reward, criteria)
    except (ValueError, OSError) as error:  # bad input file, missing model/data, too few texts
        console.print(f"[red]error:[/] {error}")
        return 2
    if prompts is not None:
        write_completions(
            args.checkpoint / "degeneracy_completions.jsonl", prompts, texts, evaluation.results
        )
    summary = evaluation.summary()
    if baseline is not None:
        summary["baseline"] = {"completions": str(args.baseline_completions), **baseline.summary()}
    output.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    console.print(report_table(evaluation.report))
    if evaluation.panel is not None:
        runs = {"baseline": baseline.panel} if baseline is not None else {}
        console.print(panel_table(runs | {"this run" if baseline is None else "after": evaluation.panel}))
    console.print(f"report: {output}")
    return 1 if args.fail_on_collapse and evaluation.report.likely_template_collapse else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
