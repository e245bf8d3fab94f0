"""Per-criterion flag rates of the detector panel: trained against Binoculars, how often does Fast-DetectGPT (or
log-rank, likelihood, entropy) still catch the completions?

Each criterion's threshold comes from the calibration file's `criteria` (scripts/calibrate.py, the reward's
`threshold_key`); Binoculars uses the reward's own threshold. A criterion without a calibrated threshold shows
its mean value and no rate. Rates are over the texts with a finite value; the decision rule is each criterion's
own (`binoculars.panel.flags_ai`). Two runs (before / after training) print side by side.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from binoculars_env.reward import RewardConfig, RewardResult
from rich.table import Table

from binoculars.panel import CRITERIA, criterion_thresholds, flags_ai


@dataclass(frozen=True)
class CriterionRate:
    name: str
    threshold: float | None
    """The calibrated threshold (None: none calibrated for this criterion)."""
    scored: int
    """Texts with a finite value."""
    mean: float | None
    flagged_as_ai_rate: float | None
    """Share of scored texts on the AI side of `threshold` (None without a threshold or scored text)."""


def panel_thresholds(config: RewardConfig) -> dict[str, float]:
    """criterion -> threshold: Binoculars the reward's own (`resolved_threshold`), the others the calibration
    file's per-criterion ones for `threshold_key`; only Binoculars without a calibration file or with one
    written before the panel."""
    thresholds: dict[str, float] = {}
    if config.calibration_file is not None:
        try:
            thresholds = criterion_thresholds(config.calibration_file, config.threshold_key)
        except ValueError:  # a calibration from before the panel: the others show their means only
            thresholds = {}
    return thresholds | {"binoculars": config.resolved_threshold()}


def criterion_value(result: RewardResult, name: str) -> float:
    """A result's value of criterion `name` (NaN when not scored or without a panel)."""
    if name == "binoculars":
        return result.score
    return math.nan if result.panel is None else getattr(result.panel, name)


def panel_rates(results: Sequence[RewardResult], thresholds: Mapping[str, float]) -> list[CriterionRate]:
    rates = []
    for name in CRITERIA:
        values = [v for v in (criterion_value(r, name) for r in results) if math.isfinite(v)]
        threshold = thresholds.get(name)
        rate = None
        if threshold is not None and values:
            rate = sum(flags_ai(name, v, threshold) for v in values) / len(values)
        rates.append(
            CriterionRate(name, threshold, len(values), statistics.fmean(values) if values else None, rate)
        )
    return rates


def panel_table(runs: Mapping[str, Sequence[CriterionRate]], title: str = "detector panel") -> Table:
    """One row per criterion: its decision rule and threshold, then per run the share of texts flagged as AI
    under that criterion and (in brackets) the criterion's mean value."""
    table = Table(title=f"{title}: flagged as AI (mean value)", header_style="bold")
    table.add_column("criterion", no_wrap=True)
    table.add_column("AI when", no_wrap=True)
    for run in runs:
        table.add_column(run, justify="right", no_wrap=True)
    first = next(iter(runs.values()))
    for index, rate in enumerate(first):
        rule = "<" if CRITERIA[rate.name] == "low" else ">"
        row = [rate.name, "—" if rate.threshold is None else f"{rule} {rate.threshold:.4g}"]
        for rates in runs.values():
            entry = rates[index]
            flagged = "—" if entry.flagged_as_ai_rate is None else f"{entry.flagged_as_ai_rate:.1%}"
            row.append(f"{flagged} ({'—' if entry.mean is None else f'{entry.mean:.3f}'})")
        table.add_row(*row)
    return table
