"""Learning check: ~50 GRPO steps of scripts/train.py's pipeline on CPU with the tiny policy and tiny scorer
raise the mean reward over its starting value (fixed seed). Not a unit test: it takes a few minutes.

    uv run python benchmarks/grpo_learning_check.py                 # 50 steps, seed 0
    uv run python benchmarks/grpo_learning_check.py --steps 80 --out-dir /tmp/lc --max_log_ppl 6.0

Flags other than the ones below go to scripts/train.py's parser (TRL and environment options).

Settings: configs/trl/grpo_tiny_cpu.yaml (its comments explain the loosened guards). The held-out mean reward of
the policy is measured before and after training on the same prompts with the same sampling seed, in this process.
Writes <out-dir>/grpo_learning_curve.csv (per step: reward, reward_std, binoculars_score, kl, num_tokens) and
<out-dir>/grpo_learning_curve.png; exit 1 when the last 10 steps' mean reward does not beat the first 10 steps'.
"""

from __future__ import annotations

import argparse
import csv
import statistics
import sys
import tempfile
from pathlib import Path

from binoculars_env.data import SAMPLE_DATA_FILE
from trl import TrlParser

from binoculars.testing.tiny import build_tiny_pair
from binoculars_rl.evaluation import evaluate_texts
from binoculars_rl.trl_args import parser_types
from binoculars_rl.trl_training import build_training_run, held_out_completions

ROOT = Path(__file__).resolve().parent.parent
RECIPE = ROOT / "configs" / "trl" / "grpo_tiny_cpu.yaml"
COLUMNS = {
    "reward": "reward",
    "reward_std": "reward_std",
    "binoculars_score": "env/binoculars_score",
    "kl": "kl",
    "num_tokens": "env/num_tokens",
}
WINDOW = 10


def held_out_reward(run, grpo_config) -> float:
    texts = held_out_completions(run, grpo_config, "held-out")
    return evaluate_texts(texts, run.reward).summary()["mean_reward"]


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = [r["step"] for r in rows]
    rewards = [r["reward"] for r in rows]
    smooth = [statistics.fmean(rewards[max(0, i - 4) : i + 1]) for i in range(len(rewards))]
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot(steps, rewards, alpha=0.4, label="mean reward per step")
    ax.plot(steps, smooth, label="5-step moving mean")
    ax.set(xlabel="GRPO step", ylabel="reward", title="tiny policy + tiny scorer, CPU (grpo_tiny_cpu.yaml)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out-dir", type=Path, default=ROOT / "benchmarks" / "results")
    parser.add_argument("--work-dir", type=Path, help="tiny models and run directory (default: a temp dir)")
    args, train_flags = parser.parse_known_args(argv)  # anything else goes to scripts/train.py's parser
    work = args.work_dir or Path(tempfile.mkdtemp(prefix="grpo-learning-check-"))
    tiny = build_tiny_pair(work / "tiny")
    train_argv = [
        "--config", str(RECIPE),
        "--model_name_or_path", str(tiny.policy),
        "--observer_model", str(tiny.observer),
        "--performer_model", str(tiny.performer),
        "--data_files", str(SAMPLE_DATA_FILE),
        "--output_dir", str(work / "run"),
        "--max_steps", str(args.steps),
        "--seed", str(args.seed),
        "--sample_log_steps", "25",
        "--final_eval", "false",
        *train_flags,
    ]  # fmt: skip
    train_args, env_args, grpo_config, model_config = TrlParser(parser_types()).parse_args_and_config(
        train_argv
    )
    run = build_training_run(train_args, env_args, grpo_config, model_config)

    before = held_out_reward(run, grpo_config)
    run.trainer.train()
    after = held_out_reward(run, grpo_config)

    rows = [
        {"step": entry["step"], **{name: entry[key] for name, key in COLUMNS.items()}}
        for entry in run.trainer.state.log_history
        if "reward" in entry
    ]
    args.out_dir.mkdir(parents=True, exist_ok=True)
    with (args.out_dir / "grpo_learning_curve.csv").open("w", newline="") as out:
        writer = csv.DictWriter(out, fieldnames=["step", *COLUMNS])
        writer.writeheader()
        writer.writerows(rows)
    plot(rows, args.out_dir / "grpo_learning_curve.png")

    first = statistics.fmean(r["reward"] for r in rows[:WINDOW])
    last = statistics.fmean(r["reward"] for r in rows[-WINDOW:])
    print(f"steps {len(rows)}, seed {args.seed}")
    print(
        f"train reward, mean of first {WINDOW} steps: {first:+.3f}; last {WINDOW} steps: {last:+.3f} "
        f"(change {last - first:+.3f})"
    )
    print(
        f"held-out mean reward ({len(run.eval_prompts)} prompts): before {before:+.3f}, after {after:+.3f} "
        f"(change {after - before:+.3f})"
    )
    print(f"final KL to the initial policy: {rows[-1]['kl']:.3f}")
    print(f"curve: {args.out_dir / 'grpo_learning_curve.csv'}, {args.out_dir / 'grpo_learning_curve.png'}")
    learned = last > first
    print("LEARNING CHECK", "PASSED" if learned else "FAILED: the reward did not rise")
    return 0 if learned else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
