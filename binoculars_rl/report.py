"""What the project prints with rich: main.py's rollout table and summary, and the degeneracy report table
(scripts/train.py, scripts/eval_degeneracy.py)."""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass

from rich.console import Console
from rich.table import Table

from binoculars_rl.degeneracy import DegeneracyReport
from binoculars_rl.smoke.rollouts import Rollout


@dataclass(frozen=True)
class Summary:
    rollouts: int
    mean_score: float
    median_score: float
    scored: int
    """Rollouts with a finite score (empty or 1-token completions have none)."""
    mean_reward: float
    median_reward: float
    flagged_as_ai_rate: float
    guarded_rate: float
    mean_tokens: float
    """Mean scored tokens per completion (after think-block removal and truncation to max_token_observed)."""
    distinct_2: float
    """Mean per-completion distinct-2."""
    distinct_2_across: float
    """Unique word bigrams over all completions / all bigrams (low when completions repeat each other)."""
    cut_rate: float
    """Completions that hit max_tokens (finish_reason == "length")."""


def summarize(rollouts: list[Rollout]) -> Summary:
    results = [r.result for r in rollouts]
    if not results or any(r is None for r in results):
        raise ValueError("summarize needs scored rollouts")
    scores = [r.score for r in results if math.isfinite(r.score)]
    rewards = [r.reward for r in results]
    all_bigrams: list[tuple[str, str]] = []
    for rollout in rollouts:
        words = rollout.completion.lower().split()
        all_bigrams += list(zip(words, words[1:], strict=False))
    nan = float("nan")
    return Summary(
        rollouts=len(results),
        mean_score=statistics.fmean(scores) if scores else nan,
        median_score=statistics.median(scores) if scores else nan,
        scored=len(scores),
        mean_reward=statistics.fmean(rewards),
        median_reward=statistics.median(rewards),
        flagged_as_ai_rate=sum(r.flagged_as_ai for r in results) / len(results),
        guarded_rate=sum(r.guard is not None for r in results) / len(results),
        mean_tokens=statistics.fmean(r.num_tokens for r in results),
        distinct_2=statistics.fmean(r.distinct_2 for r in results),
        distinct_2_across=len(set(all_bigrams)) / len(all_bigrams) if all_bigrams else 0.0,
        cut_rate=sum(r.finish_reason == "length" for r in rollouts) / len(rollouts),
    )


def flags(rollout: Rollout) -> str:
    result = rollout.result
    parts = []
    if result.guard is not None:
        parts.append(f"guard:{result.guard}")
    if result.flagged_as_ai:
        parts.append("AI")
    if rollout.finish_reason == "length":
        parts.append("cut")
    return " ".join(parts)


def rollout_table(rollouts: list[Rollout], prompt_chars: int = 40, completion_chars: int = 90) -> Table:
    table = Table(title="Smoke rollouts", show_lines=False, header_style="bold")
    table.add_column("#", justify="right", no_wrap=True)
    table.add_column("prompt (story beginning)", max_width=prompt_chars + 4)
    table.add_column("completion", ratio=1)
    table.add_column("score", justify="right", no_wrap=True)
    table.add_column("reward", justify="right", no_wrap=True)
    table.add_column("flags", no_wrap=True)
    for rollout in rollouts:
        result = rollout.result
        reward_style = "red" if result.guard else ("green" if result.reward > 0 else "")
        table.add_row(
            f"{rollout.prompt_index}.{rollout.rollout_index}",
            _clip(rollout.story.beginning, prompt_chars),
            _clip(rollout.completion, completion_chars),
            f"{result.score:.3f}" if math.isfinite(result.score) else "—",
            f"[{reward_style}]{result.reward:+.3f}[/]" if reward_style else f"{result.reward:+.3f}",
            flags(rollout),
        )
    return table


def summary_table(summary: Summary, threshold: float) -> Table:
    table = Table(title="Summary", show_header=False)
    table.add_column("metric")
    table.add_column("value", justify="right")
    rows = [
        ("rollouts", f"{summary.rollouts}"),
        ("Binoculars score: mean / median", f"{summary.mean_score:.3f} / {summary.median_score:.3f}"),
        ("  (scored rollouts)", f"{summary.scored}"),
        ("reward: mean / median", f"{summary.mean_reward:+.3f} / {summary.median_reward:+.3f}"),
        (f"flagged as AI (score < {threshold:g})", f"{summary.flagged_as_ai_rate:.0%}"),
        ("reward set to -2 by a guard", f"{summary.guarded_rate:.0%}"),
        ("mean tokens (scored)", f"{summary.mean_tokens:.1f}"),
        (
            "distinct-2: per completion / across all",
            f"{summary.distinct_2:.3f} / {summary.distinct_2_across:.3f}",
        ),
        ("cut at max tokens", f"{summary.cut_rate:.0%}"),
    ]
    for name, value in rows:
        table.add_row(name, value)
    return table


def print_report(console: Console, rollouts: list[Rollout], threshold: float) -> Summary:
    summary = summarize(rollouts)
    console.print(rollout_table(rollouts))
    console.print(summary_table(summary, threshold))
    return summary


def _clip(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def report_table(report: DegeneracyReport, title: str = "degeneracy report") -> Table:
    table = Table(title=title)
    table.add_column("metric")
    table.add_column("value", justify="right")
    rows = [
        ("samples", str(report.num_samples)),
        ("unique-sample fraction", f"{report.unique_fraction:.3f}"),
        ("mean pairwise Jaccard", f"{report.mean_pairwise_jaccard:.3f}"),
        ("distinct-1", f"{report.distinct_1:.3f}"),
        ("distinct-2", f"{report.distinct_2:.3f}"),
        ("mean length (words)", f"{report.mean_words:.1f}"),
    ]
    if report.mean_tokens is not None:
        rows.append(("mean length (tokens)", f"{report.mean_tokens:.1f}"))
    scores = report.scores
    if scores is not None:
        rows.append(("scored / unscored", f"{scores.count} / {scores.unscored}"))
        if scores.count:
            rows += [
                ("Binoculars score mean ± std", f"{scores.mean:.3f} ± {scores.std:.3f}"),
                (
                    "score min / p10 / p50 / p90 / max",
                    " / ".join(
                        f"{v:.3f}" for v in (scores.min, scores.p10, scores.p50, scores.p90, scores.max)
                    ),
                ),
                (f"flagged as AI (score < {scores.threshold:.4g})", f"{scores.flagged_as_ai_rate:.1%}"),
            ]
    verdict = "YES: " + "; ".join(report.collapse_reasons) if report.likely_template_collapse else "no"
    rows.append(
        (
            "likely template collapse",
            f"[bold red]{verdict}[/]" if report.likely_template_collapse else verdict,
        )
    )
    for name, value in rows:
        table.add_row(name, value)
    return table
