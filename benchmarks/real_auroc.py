"""How well Binoculars separates human text from a real model's stories: SmolLM2 as observer = performer.

    uv run python benchmarks/real_auroc.py                          # 400 fortunes vs 40 SmolLM2 stories, seed 0
    uv run python benchmarks/real_auroc.py --human-file mine.txt --output results/real_auroc.json

Human class: prose passages of Debian's `fortunes` (`binoculars_rl.human_text.fortune_passages`), or your own
`--human-file` (.txt, one text per line; .jsonl, a `text` field). AI class: SmolLM2-135M-Instruct's continuations
of the environment's own story prompts (the held-out prompts of the shipped sample stories, seeded sampling).
SmolLM2 (from PyPI, `binoculars_rl.real_model.smollm2_dir`) both writes the stories and scores every text: one
model, one pass per text, score = log-ppl / entropy. CPU, 2 cores: a few minutes.

Prints the AUROC, each class's mean and standard deviation, and the accuracy-optimal threshold (best balanced
accuracy); `--output` also writes the calibration-format JSON (with the fluency ceiling `max_log_ppl` and the
human-profile bands fitted on the human sample; the fortunes' texts left out, each sample keeps its `key`, a hash
of its text) and PNG. The two classes differ in topic as well as
in author (quotations vs children's stories), so the AUROC is an upper bound on what the detector does on
same-topic text.
"""

from __future__ import annotations

import argparse
import random
import sys

from binoculars_env.data import SAMPLE_DATA_FILE, DataConfig
from binoculars_env.profile import profile_bands_entry

from binoculars import Binoculars
from binoculars.calibration import (
    AI_CLASS,
    HUMAN_CLASS,
    LabelledText,
    build_report,
    score_samples,
    write_report,
)
from binoculars_rl.evaluation import checkpoint_completions, eval_prompts
from binoculars_rl.human_text import HumanTextError, fortune_passages, read_human_file
from binoculars_rl.real_model import RealModelError, smollm2_dir


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    parser.add_argument(
        "--num-human", type=int, default=400, help="human passages (a seeded sample; the rest stay held out)"
    )
    parser.add_argument("--num-ai", type=int, default=40, help="SmolLM2 stories (one per held-out prompt)")
    parser.add_argument("--human-file", default=None, help="your human texts instead of the fortunes")
    parser.add_argument(
        "--ai-file",
        default=None,
        help="AI texts (.txt one per line, .jsonl 'text') instead of generating SmolLM2 stories, e.g. "
        "benchmarks/attacks.py's attacks_ai_stories.jsonl",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the human sample, prompts and sampling")
    parser.add_argument("--max-new-tokens", type=int, default=160, help="tokens per SmolLM2 story")
    parser.add_argument("--temperature", type=float, default=0.7, help="SmolLM2 sampling temperature")
    parser.add_argument("--max-tokens", type=int, default=512, help="tokens scored per text")
    parser.add_argument("--batch-size", type=int, default=8, help="texts per generation and scoring call")
    parser.add_argument("--output", default=None, help="also write the calibration-format JSON (+ PNG) here")
    args = parser.parse_args(argv)
    for name in ("num_human", "num_ai", "max_new_tokens", "max_tokens", "batch_size"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1, got {getattr(args, name)}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        human = read_human_file(args.human_file) if args.human_file else fortune_passages()
        model = smollm2_dir()
    except (HumanTextError, RealModelError) as error:
        print(f"real_auroc.py: error: {error}", file=sys.stderr)
        return 1
    if len(human) < args.num_human:
        print(f"real_auroc.py: error: {len(human)} human texts, {args.num_human} asked", file=sys.stderr)
        return 1
    human = random.Random(args.seed).sample(human, args.num_human)
    prompts = eval_prompts(
        DataConfig(data_files=str(SAMPLE_DATA_FILE), num_eval_examples=args.num_ai, seed=args.seed)
    )
    if len(prompts) < args.num_ai:
        print(f"real_auroc.py: error: {len(prompts)} held-out prompts, {args.num_ai} asked", file=sys.stderr)
        return 1
    if args.ai_file:
        stories = read_human_file(args.ai_file)[
            : args.num_ai
        ]  # the same .txt/.jsonl reader, whoever wrote them
    else:
        stories = checkpoint_completions(
            model,
            prompts,
            args.max_new_tokens,
            args.temperature,
            args.batch_size,
            None,
            args.seed,
            device="cpu",
        )
    samples = [LabelledText(t, HUMAN_CLASS) for t in human] + [LabelledText(t, AI_CLASS) for t in stories]
    bino = Binoculars(
        str(model),
        str(model),
        max_token_observed=args.max_tokens,
        device="cpu",
        batch_size=args.batch_size,
        thresholds={"accuracy": 1.0, "low-fpr": 1.0},  # unused: the threshold is what this script measures
    )
    scores = score_samples(bino, [s.text for s in samples], args.batch_size)
    model_info = {
        "observer": "SmolLM2-135M-Instruct",
        "performer": "SmolLM2-135M-Instruct",
        "dtype": "float32",
    }
    source = {
        "kind": "real-auroc",
        "human": args.human_file or "Debian fortunes (fortune_passages)",
        "ai": args.ai_file
        or "SmolLM2-135M-Instruct continuations of the env's held-out sample-story prompts",
        "seed": args.seed,
        "max_new_tokens": args.max_new_tokens,
        "temperature": args.temperature,
    }
    report = build_report(samples, scores, model_info, source_info=source) | profile_bands_entry(human)
    if not args.human_file:
        # fortunes are read at run time, never committed: keep their keys, not their texts
        for sample in report["samples"]:
            if sample["label"] == HUMAN_CLASS:
                del sample["text"]
    stats, best = report["score_stats"], report["best_accuracy"]
    print(
        f"{report['counts']['human']} human vs {report['counts']['ai']} AI texts (SmolLM2 observer = performer)"
    )
    print(f"AUROC {report['auroc']:.4f}")
    for name in ("human", "ai"):
        print(f"{name:>5}: score mean {stats[name]['mean']:.4f}, std {stats[name]['std']:.4f}")
    print(
        f"accuracy-optimal threshold {best['threshold']:.4f}: accuracy {best['accuracy']:.4f} "
        f"(balanced {best['balanced_accuracy']:.4f}), TPR {best['tpr']:.4f}, FPR {best['fpr']:.4f}"
    )
    if args.output:
        json_path, png_path = write_report(report, args.output)
        print(f"wrote {json_path} and {png_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
