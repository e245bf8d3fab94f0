"""Attack benchmark: does any cheap surface edit of an AI text earn reward from the Binoculars reward?

    uv run python benchmarks/attacks.py                     # SmolLM2-135M-Instruct (observer = performer) + fortunes
    uv run python benchmarks/attacks.py --observer DIR --performer DIR --ai-file ai.jsonl --human-file human.jsonl
    uv run python benchmarks/attacks.py --calibration-file benchmarks/results/smollm2_calibration.json

Every attack of `binoculars_rl.attacks.ATTACKS` is applied to every AI text (one seeded RNG per attack and text);
clean AI texts, clean human texts and every attacked set are scored through `binoculars_env.reward.
score_completions` with the environment's default `RewardConfig` except the scorer pair, device and threshold.
The threshold, unless given, is the accuracy-optimal one (max TPR - FPR, as scripts/calibrate.py) fitted on the
clean AI and clean human scores of the same run. With --calibration-file the reward reads threshold, scale,
fluency ceiling and profile bands from that file (as the environment's `calibration_file`), and the texts the
calibration saw (human and AI) are left out, so guard rates and AUROC are measured on held-out text.

AI texts: --ai-file (JSON/JSONL/CSV/Parquet with a `text` column), else stories the performer model (or
--policy) writes from the environment's story prompts (sampled, seeded; written to <out-dir>/attacks_ai_stories.jsonl).
Human texts: --human-file, else Debian's fortunes (`binoculars_rl.human_text.fortune_passages`).

Writes to --out-dir: attacks.csv and attacks.md (one row per condition), attacks.json (models, threshold and how
it was chosen, counts, seed), attacks_per_text.csv (every scored text: condition, index, reward, score, log-ppl,
guard) and attacks.png (reward distributions).
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import math
import random
import statistics
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT_DIR = ROOT / "benchmarks" / "results"
CLEAN_AI, CLEAN_HUMAN = "clean_ai", "clean_human"
RISE = 0.25
"""A text counts as `rose` when its attacked reward exceeds its clean reward by more than this."""
COLUMNS = (
    "condition",
    "n",
    "mean_score",
    "mean_log_ppl",
    "mean_reward",
    "gain",
    "judged_human",
    "guarded",
    "guards",
    "rose",
)


@dataclass(frozen=True)
class Scored:
    condition: str
    index: int
    text: str
    reward: float
    score: float
    log_ppl: float
    guard: str | None
    num_tokens: int
    corrected_share: float


# --- data --------------------------------------------------------------------------------------------------


def read_texts(path: str | Path) -> list[str]:
    """The non-empty `text` column of a JSON/JSONL/CSV/Parquet file."""
    from binoculars_rl.calibration_sources import read_records

    records = read_records(path)
    if "text" not in records[0]:
        raise SystemExit(f"error: {path} has no `text` column (columns: {sorted(records[0])})")
    texts = [str(r["text"]).strip() for r in records if isinstance(r["text"], str) and r["text"].strip()]
    if not texts:
        raise SystemExit(f"error: {path} has no non-empty text")
    return texts


def calibration_keys(path: str | Path) -> set[str]:
    """The text keys (`binoculars.calibration.text_key`) of a calibration JSON's `samples`: their `key`, or the key
    of their `text` (files from before samples had keys)."""
    from binoculars.calibration import text_key

    payload = json.loads(Path(path).read_text())
    samples = payload.get("samples")
    if not isinstance(samples, list):
        raise SystemExit(f"error: {path} has no `samples` list: not a calibration report of build_report")
    return {sample["key"] if "key" in sample else text_key(sample["text"]) for sample in samples}


def unseen(texts: Sequence[str], seen: set[str]) -> tuple[list[str], int]:
    """The texts whose key is not in `seen` (a calibration file's keys), and how many were left out."""
    from binoculars.calibration import text_key

    kept = [text for text in texts if text_key(text) not in seen]
    return kept, len(texts) - len(kept)


def seeded_subset(texts: Sequence[str], limit: int, seed: int) -> list[str]:
    """All texts when there are at most `limit`, else a seeded sample of `limit` of them in their file order."""
    if len(texts) <= limit:
        return list(texts)
    return [texts[i] for i in sorted(random.Random(seed).sample(range(len(texts)), limit))]


def default_scorer_dir() -> str:
    try:
        from binoculars_rl.real_model import smollm2_dir  # imported only on the default path
    except ImportError as error:
        raise SystemExit(f"error: no default scorer ({error}); pass --observer and --performer") from None
    return str(smollm2_dir())


def default_human_texts() -> list[str]:
    try:
        from binoculars_rl.human_text import fortune_passages  # imported only on the default path
    except ImportError as error:
        raise SystemExit(f"error: no default human texts ({error}); pass --human-file") from None

    passages = fortune_passages(min_words=60, max_words=250)
    if not passages:
        raise SystemExit(
            "error: no fortune passages found; install them (apt-get install fortunes fortunes-min) "
            "or pass --human-file"
        )
    return passages


# --- attacks and scoring -----------------------------------------------------------------------------------


def attack_rng(seed: int, attack: str, index: int) -> random.Random:
    """The RNG of one attack on one text: independent of the other attacks and texts, stable across runs."""
    return random.Random(f"{seed}/{attack}/{index}")


def attacked_texts(ai_texts: Sequence[str], human_texts: Sequence[str], seed: int) -> dict[str, list[str]]:
    """condition -> texts: the two clean classes, then every attack applied to every AI text."""
    from binoculars_rl.attacks import ATTACKS

    conditions = {CLEAN_AI: list(ai_texts), CLEAN_HUMAN: list(human_texts)}
    for name, attack in ATTACKS.items():
        conditions[name] = [
            attack(text, attack_rng(seed, name, i), human_texts) for i, text in enumerate(ai_texts)
        ]
    return conditions


def accuracy_threshold(ai_scores: Sequence[float], human_scores: Sequence[float]) -> float:
    """The cut maximising TPR - FPR for "AI when score < threshold" (scripts/calibrate.py's `accuracy`)."""
    import numpy as np

    from binoculars.calibration import AI_CLASS, HUMAN_CLASS, best_balanced_accuracy_cut, roc_points

    ai = [s for s in ai_scores if math.isfinite(s)]
    human = [s for s in human_scores if math.isfinite(s)]
    if not ai or not human:
        raise SystemExit("error: cannot fit a threshold: a clean class has no finite score")
    scores = np.array(ai + human, dtype=np.float64)
    labels = np.array([AI_CLASS] * len(ai) + [HUMAN_CLASS] * len(human))
    return best_balanced_accuracy_cut(roc_points(scores, labels))


def clean_auroc(rows: Sequence[Scored]) -> float:
    """AUROC of the score (high = human) on the clean classes' finite scores."""
    from sklearn.metrics import roc_auc_score

    clean = [r for r in rows if r.condition in (CLEAN_AI, CLEAN_HUMAN) and math.isfinite(r.score)]
    return float(roc_auc_score([r.condition == CLEAN_HUMAN for r in clean], [r.score for r in clean]))


def score_conditions(conditions: dict[str, list[str]], config) -> list[Scored]:
    from binoculars_env.reward import score_completions

    rows = []
    for done, (condition, texts) in enumerate(conditions.items(), start=1):
        start = time.perf_counter()
        results = score_completions(texts, config)
        print(
            f"[{done}/{len(conditions)}] {condition}: {len(texts)} texts in {time.perf_counter() - start:.1f}s",
            file=sys.stderr,
        )
        rows += [
            Scored(condition, i, text, r.reward, r.score, r.log_ppl, r.guard, r.num_tokens, r.corrected_share)
            for i, (text, r) in enumerate(zip(texts, results, strict=True))
        ]
    return rows


def with_threshold(row: Scored, threshold: float, config) -> Scored:
    """`row` with the reward the environment gives at `threshold` (guards, spelling charge and length term as in
    score_completions; the default config has no scale)."""
    from binoculars_env.reward import MIN_REWARD, charged_threshold, length_penalty, shaped_reward

    if row.guard is not None:
        return dataclasses.replace(row, reward=MIN_REWARD)
    penalty = length_penalty(row.num_tokens, config)
    return dataclasses.replace(
        row,
        reward=shaped_reward(
            row.score,
            charged_threshold(threshold, row.corrected_share, config),
            config.resolved_scale(),
            penalty,
        ),
    )


# --- the table ---------------------------------------------------------------------------------------------


def _finite_mean(values: Sequence[float]) -> float:
    finite = [v for v in values if math.isfinite(v)]
    return statistics.fmean(finite) if finite else math.nan


def summarise(rows: Sequence[Scored], threshold: float) -> list[dict]:
    """One row per condition (in first-seen order): the columns of COLUMNS."""
    by_condition: dict[str, list[Scored]] = {}
    for row in rows:
        by_condition.setdefault(row.condition, []).append(row)
    clean = {r.index: r.reward for r in by_condition[CLEAN_AI]}
    clean_mean = statistics.fmean(clean.values())
    table = []
    for condition, items in by_condition.items():
        n = len(items)
        guards = Counter(r.guard for r in items if r.guard)
        attacked_ai = condition != CLEAN_HUMAN
        table.append(
            {
                "condition": condition,
                "n": n,
                "mean_score": _finite_mean([r.score for r in items]),
                "mean_log_ppl": _finite_mean([r.log_ppl for r in items]),
                "mean_reward": statistics.fmean(r.reward for r in items),
                "gain": statistics.fmean(r.reward for r in items) - clean_mean,
                "judged_human": sum(r.score >= threshold for r in items) / n,
                "guarded": sum(guards.values()) / n,
                "guards": " ".join(f"{g}:{c / n:.2f}" for g, c in sorted(guards.items())),
                "rose": sum(r.reward - clean[r.index] > RISE for r in items) / n if attacked_ai else math.nan,
            }
        )
    return table


def _fmt(column: str, value) -> str:
    if isinstance(value, float):
        return "" if math.isnan(value) else f"{value:+.3f}" if column == "gain" else f"{value:.3f}"
    return str(value)


def write_outputs(
    out_dir: Path, table: list[dict], rows: Sequence[Scored], run: dict, header: Sequence[str]
) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "attacks.json").write_text(json.dumps(run, indent=2) + "\n")
    with (out_dir / "attacks.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(table)
    with (out_dir / "attacks_per_text.csv").open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["condition", "index", "reward", "score", "log_ppl", "guard"])
        writer.writerows((r.condition, r.index, r.reward, r.score, r.log_ppl, r.guard or "") for r in rows)
    lines = [*header, "", "| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(_fmt(c, row[c]) for c in COLUMNS) + " |" for row in table]
    (out_dir / "attacks.md").write_text("\n".join(lines) + "\n")
    plot(rows, table, run["threshold"], out_dir / "attacks.png")


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split(".")[:2])


def plot(rows: Sequence[Scored], table: list[dict], threshold: float, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [row["condition"] for row in table]
    rewards = [[r.reward for r in rows if r.condition == name] for name in names]
    fig, ax = plt.subplots(figsize=(8, 0.35 * len(names) + 1.5))
    # `orientation` replaced `vert` in matplotlib 3.10
    horizontal = (
        {"orientation": "horizontal"} if _version(matplotlib.__version__) >= (3, 10) else {"vert": False}
    )
    ax.boxplot(rewards, tick_labels=names, showmeans=True, **horizontal)
    clean_mean = next(row["mean_reward"] for row in table if row["condition"] == CLEAN_AI)
    ax.axvline(clean_mean, color="tab:red", linestyle="--", label="clean AI mean reward")
    ax.invert_yaxis()
    ax.set(xlabel="reward", title=f"reward per condition (threshold {threshold:.3f}; guards give -2)")
    ax.legend(loc="upper left")  # the lower right holds the last condition's box
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


# --- command line ------------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--observer", help="observer model (default: SmolLM2-135M-Instruct, binoculars_rl.real_model)"
    )
    parser.add_argument("--performer", help="performer model (default: the observer)")
    parser.add_argument(
        "--policy", help="model that writes the AI stories when no --ai-file (default: the performer)"
    )
    parser.add_argument(
        "--device", help="scorer and generation device (default: cuda:0 if available, else CPU)"
    )
    parser.add_argument("--ai-file", help="AI texts (`text` column); default: stories generated by --policy")
    parser.add_argument("--human-file", help="human texts (`text` column); default: Debian fortunes passages")
    parser.add_argument(
        "--threshold", type=float, help="decision threshold (default: fitted on the clean classes)"
    )
    parser.add_argument(
        "--calibration-file",
        help="calibration JSON (scripts/calibrate.py, benchmarks/real_auroc.py --output) the reward reads its "
        "threshold, scale, fluency ceiling and profile bands from, as the environment does with "
        "calibration_file; its human and AI texts are left out (a held-out evaluation)",
    )
    parser.add_argument(
        "--seed", type=int, default=0, help="seed of the attacks and of story sampling (default 0)"
    )
    parser.add_argument(
        "--max-texts", type=int, default=60, help="at most this many AI and human texts (default 60)"
    )
    parser.add_argument(
        "--max-human-texts",
        type=int,
        help="at most this many human texts (default: --max-texts); more give a finer human guard rate",
    )
    parser.add_argument(
        "--max-new-tokens",
        type=int,
        default=200,
        help="length of generated AI stories in tokens (default 200)",
    )
    parser.add_argument(
        "--out-dir", type=Path, default=DEFAULT_OUT_DIR, help="output folder (default benchmarks/results)"
    )
    args = parser.parse_args(argv)
    if args.max_texts < 1:
        parser.error(f"--max-texts must be >= 1, got {args.max_texts}")
    if args.max_human_texts is not None and args.max_human_texts < 1:
        parser.error(f"--max-human-texts must be >= 1, got {args.max_human_texts}")
    if args.threshold is not None and not math.isfinite(args.threshold):
        parser.error(f"--threshold must be finite, got {args.threshold}")
    if args.threshold is not None and args.calibration_file is not None:
        parser.error("--threshold and --calibration-file exclude each other (the file holds the threshold)")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    from binoculars_env.reward import RewardConfig

    observer = args.observer or default_scorer_dir()
    performer = args.performer or observer
    human = read_texts(args.human_file) if args.human_file else default_human_texts()
    seen = calibration_keys(args.calibration_file) if args.calibration_file else set()
    human, human_left_out = unseen(human, seen)
    human = seeded_subset(human, args.max_human_texts or args.max_texts, args.seed)
    if args.ai_file:
        ai, ai_left_out = unseen(read_texts(args.ai_file), seen)
        ai = seeded_subset(ai, args.max_texts, args.seed)
    else:
        from binoculars_rl.generation import prompt_stories

        ai_left_out = 0
        ai = prompt_stories(
            args.policy or performer, args.max_texts, args.seed, args.max_new_tokens, args.device
        )
        args.out_dir.mkdir(parents=True, exist_ok=True)
        with (args.out_dir / "attacks_ai_stories.jsonl").open("w") as f:
            f.writelines(json.dumps({"text": t}) + "\n" for t in ai)
    if not ai or not human:
        raise SystemExit("error: no AI or no human text left once the calibration file's texts are left out")
    conditions = attacked_texts(ai, human, args.seed)

    def config(threshold: float | None) -> RewardConfig:
        return RewardConfig(
            observer_model=observer,
            performer_model=performer,
            scorer_device=args.device,
            threshold=threshold,
            calibration_file=args.calibration_file,
        )

    threshold, how = args.threshold, "given (--threshold)"
    if args.calibration_file:
        threshold, how = config(None).resolved_threshold(), f"from {args.calibration_file}"
    rows = score_conditions(conditions, config(threshold if threshold is not None else 0.0))
    if threshold is None:  # the scores do not depend on it: fit it, then recompute every reward with it
        threshold = accuracy_threshold(
            [r.score for r in rows if r.condition == CLEAN_AI],
            [r.score for r in rows if r.condition == CLEAN_HUMAN],
        )
        how = "fitted on the clean classes of this run (max TPR - FPR)"
        rows = [with_threshold(r, threshold, config(threshold)) for r in rows]
    table = summarise(rows, threshold)
    auroc = clean_auroc(rows)
    used = config(threshold)
    scale, ceiling = used.resolved_scale(), used.resolved_max_log_ppl()
    header = [
        f"Observer `{Path(observer).name}`, performer `{Path(performer).name}`; {len(ai)} AI texts, "
        f"{len(human)} human texts{' (not among the calibration file’s)' if args.calibration_file else ''}; "
        f"seed {args.seed}.",
        f"Threshold {threshold:.4f}, {how}; scale {scale if scale is None else f'{scale:.4f}'}; fluency ceiling "
        f"{ceiling}. Reward: the environment's default RewardConfig otherwise. AUROC of the score on the clean "
        f"classes: {auroc:.4f}.",
    ]
    run = {
        "observer": observer,
        "performer": performer,
        "calibration_file": args.calibration_file,
        "threshold": threshold,
        "threshold_source": how,
        "scale": scale,
        "max_log_ppl": ceiling,
        "human_texts_in_calibration_left_out": human_left_out,
        "ai_texts_in_calibration_left_out": ai_left_out,
        "clean_auroc": auroc,
        "num_ai": len(ai),
        "num_human": len(human),
        "seed": args.seed,
    }
    write_outputs(args.out_dir, table, rows, run, header)
    print((args.out_dir / "attacks.md").read_text())
    print(f"wrote {args.out_dir}/attacks.{{csv,md,json,png}} and attacks_per_text.csv", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
