"""Real learning check: GRPO with SmolLM2-135M-Instruct as the policy against the Binoculars reward with SmolLM2
as the detector (observer = performer), on CPU — `defended` (the environment's defaults: every guard, the
canonical form, the human profile) or `undefended` (every guard and normalisation off).

    uv run python benchmarks/real_auroc.py --output benchmarks/results/smollm2_calibration.json      # threshold + scale
    uv run python benchmarks/grpo_smollm2.py --condition defended --calibration-file benchmarks/results/smollm2_calibration.json
    uv run python benchmarks/grpo_smollm2.py --condition undefended --calibration-file benchmarks/results/smollm2_calibration.json

Settings: configs/trl/grpo_smollm2_cpu.yaml (flags not listed here go to scripts/train.py's parser). Before and
after training the policy writes one story per held-out prompt (same prompts, same sampling seed); both sets are
scored with the DEFENDED reward whatever the training condition, so the two runs are judged alike.

Writes to --out-dir: grpo_smollm2_<condition>.csv (per step: reward, its spread, Binoculars score, guard rate,
KL, tokens, obfuscation and the human-profile statistics, all means over the step's completions),
grpo_smollm2_<condition>.json (before/after: mean defended reward, guard counts, flagged-as-AI rate, attack
signatures, degeneracy report, two sample stories) and grpo_smollm2.png (both conditions' curves when both CSVs
are there).
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
import sys
import tempfile
from collections import Counter
from pathlib import Path

from binoculars_env.profile import STATISTICS
from trl import TrlParser

from binoculars_rl.evaluation import evaluate_texts
from binoculars_rl.real_model import smollm2_dir
from binoculars_rl.trl_args import parser_types, reward_config
from binoculars_rl.trl_reward import BinocularsReward
from binoculars_rl.trl_training import build_training_run, held_out_completions

ROOT = Path(__file__).resolve().parent.parent
RECIPE = ROOT / "configs" / "trl" / "grpo_smollm2_cpu.yaml"
CONDITIONS = ("defended", "undefended")
UNDEFENDED = {
    "canonical_steps": [],
    "max_obfuscation": None,
    "spelling_charge": 0.0,
    "profile_statistics": [],
    "max_log_ppl": None,
    "min_distinct_2": None,
    "min_tokens": 0,
}
"""Every guard and normalisation off (an empty completion still gets -2: there is nothing to score)."""
SIGNATURES = ("obfuscation", *STATISTICS)
COLUMNS = {
    "reward": "reward",
    "reward_std": "reward_std",
    "binoculars_score": "env/binoculars_score",
    "guard_rate": "env/guard_failed",
    "kl": "kl",
    "num_tokens": "env/num_tokens",
    **{name: f"env/{name}" for name in SIGNATURES},
}
WINDOW = 5


def held_out(run, grpo_config, reward: BinocularsReward, desc: str) -> dict:
    """One story per held-out prompt from the current policy, judged by `reward`."""
    texts = held_out_completions(run, grpo_config, desc)
    evaluation = evaluate_texts(texts, reward)
    results = evaluation.results
    return {
        **evaluation.summary(),
        "guards": dict(Counter(r.guard or "none" for r in results)),
        "flagged_as_ai": statistics.fmean(r.flagged_as_ai for r in results),
        "mean_score": statistics.fmean(r.metrics()["binoculars_score"] for r in results),
        "signatures": {name: statistics.fmean(r.metrics()[name] for r in results) for name in SIGNATURES},
        "samples": [
            {"text": text, "reward": r.reward, "guard": r.guard}
            for text, r in zip(texts[:2], results[:2], strict=True)
        ],
    }


def plot(out_dir: Path) -> Path | None:
    curves = {c: out_dir / f"grpo_smollm2_{c}.csv" for c in CONDITIONS}
    if not all(path.exists() for path in curves.values()):
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.5))
    for condition, path in curves.items():
        rows = list(csv.DictReader(path.open()))
        steps = [int(r["step"]) for r in rows]
        axes[0].plot(steps, [float(r["reward"]) for r in rows], label=f"{condition}: training reward")
        axes[1].plot(steps, [float(r["binoculars_score"]) for r in rows], label=f"{condition}")
    axes[0].set(xlabel="GRPO step", ylabel="mean reward (own condition)")
    axes[1].set(xlabel="GRPO step", ylabel="mean Binoculars score")
    for ax in axes:
        ax.legend()
    fig.suptitle("SmolLM2-135M policy vs SmolLM2 Binoculars, CPU (grpo_smollm2_cpu.yaml)")
    fig.tight_layout()
    path = out_dir / "grpo_smollm2.png"
    fig.savefig(path, dpi=100)
    return path


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--condition", choices=CONDITIONS, required=True, help="reward the policy trains on")
    parser.add_argument(
        "--calibration-file", required=True, help="calibration JSON for SmolLM2 (threshold and scale)"
    )
    parser.add_argument("--steps", type=int, default=25, help="GRPO steps (default 25)")
    parser.add_argument("--seed", type=int, default=0, help="training and sampling seed (default 0)")
    parser.add_argument(
        "--out-dir", type=Path, default=ROOT / "benchmarks" / "results", help="default benchmarks/results"
    )
    parser.add_argument("--work-dir", type=Path, help="run directory (default: a temp dir)")
    args, train_flags = parser.parse_known_args(argv)
    if not Path(args.calibration_file).is_file():
        parser.error(
            f"--calibration-file {args.calibration_file} does not exist (make it with real_auroc.py)"
        )
    model = str(smollm2_dir())
    work = args.work_dir or Path(tempfile.mkdtemp(prefix="grpo-smollm2-"))
    train_argv = [
        "--config", str(RECIPE),
        "--model_name_or_path", model,
        "--observer_model", model,
        "--performer_model", model,
        "--calibration_file", str(args.calibration_file),
        "--output_dir", str(work / args.condition),
        "--max_steps", str(args.steps),
        "--seed", str(args.seed),
        "--final_eval", "false",
        *train_flags,
    ]  # fmt: skip
    train_args, env_args, grpo_config, model_config = TrlParser(parser_types()).parse_args_and_config(
        train_argv
    )
    defended = BinocularsReward(reward_config(env_args))
    if args.condition == "undefended":
        for name, value in UNDEFENDED.items():
            setattr(env_args, name, value)
    run = build_training_run(train_args, env_args, grpo_config, model_config)

    before = held_out(run, grpo_config, defended, "held-out before")
    run.trainer.train()
    after = held_out(run, grpo_config, defended, "held-out after")

    rows = [
        {"step": entry["step"], **{name: entry.get(key, float("nan")) for name, key in COLUMNS.items()}}
        for entry in run.trainer.state.log_history
        if "reward" in entry
    ]
    args.out_dir.mkdir(parents=True, exist_ok=True)
    curve = args.out_dir / f"grpo_smollm2_{args.condition}.csv"
    with curve.open("w", newline="") as out:
        writer = csv.DictWriter(out, fieldnames=["step", *COLUMNS])
        writer.writeheader()
        writer.writerows(rows)
    first = statistics.fmean(r["reward"] for r in rows[:WINDOW])
    last = statistics.fmean(r["reward"] for r in rows[-WINDOW:])
    summary = {
        "condition": args.condition,
        "steps": len(rows),
        "seed": args.seed,
        "training_reward_first_steps": first,
        "training_reward_last_steps": last,
        "window": WINDOW,
        "final_kl": rows[-1]["kl"],
        "held_out_before": before,
        "held_out_after": after,
        "command": "uv run python benchmarks/grpo_smollm2.py " + " ".join(argv),
    }
    report = args.out_dir / f"grpo_smollm2_{args.condition}.json"
    report.write_text(json.dumps(summary, indent=2) + "\n")
    figure = plot(args.out_dir)
    print(
        f"{args.condition}: {len(rows)} steps; training reward first {WINDOW} steps {first:+.3f}, last {last:+.3f}"
    )
    for name, result in (("before", before), ("after", after)):
        print(
            f"held-out {name}: defended reward {result['mean_reward']:+.3f}, score {result['mean_score']:.3f}, "
            f"flagged as AI {result['flagged_as_ai']:.0%}, guards {result['guards']}"
        )
    print(f"wrote {curve}, {report}" + (f", {figure}" if figure else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
