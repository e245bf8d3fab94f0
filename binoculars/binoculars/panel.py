"""The detector panel: zero-shot criteria computed from the same two forward passes as Binoculars.

For a text x_1..x_L, over its L-1 predicted positions t, with q = the observer's next-token distribution and
p = the performer's (both from the logits the scorer already computes):

    binoculars      log_ppl / x_ppl                                   LOW  = AI-like (Hans et al., 2024)
    fast_detectgpt  (sum_t log p(x_t) - sum_t mu_t) / sqrt(sum_t var_t)  HIGH = AI-like (Bao et al., ICLR 2024,
                    mu_t  = sum_v q(v) log p(v)                        analytic form: q samples, p scores)
                    var_t = sum_v q(v) (log p(v) - mu_t)^2
    log_rank        mean_t log rank_p(x_t), rank = 1 + #{v : logit_p(v) > logit_p(x_t)}   LOW  = AI-like
    log_likelihood  mean_t log p(x_t)  (= -log_ppl)                   HIGH = AI-like
    entropy         mean_t -sum_v p(v) log p(v)                      LOW  = AI-like
                    (log-rank, likelihood, entropy: Gehrmann et al. 2019, Mitchell et al. 2023)

AI text is made of likely, top-ranked tokens in confident contexts, so it scores high on likelihood and
Fast-DetectGPT and low on log-rank and entropy; human text the other way. A criterion's decision rule is
"AI when value < threshold" for LOW = AI-like and "AI when value > threshold" for HIGH = AI-like (`flags_ai`).
Texts under 2 tokens get NaN for every criterion. This module is pure Python (no torch): the environment and
reports read the definitions without loading the scorer.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

LOW_IS_AI = "low"
HIGH_IS_AI = "high"

CRITERIA: dict[str, str] = {
    "binoculars": LOW_IS_AI,
    "fast_detectgpt": HIGH_IS_AI,
    "log_rank": LOW_IS_AI,
    "log_likelihood": HIGH_IS_AI,
    "entropy": LOW_IS_AI,
}
"""Every criterion of the panel and which side of it is AI-like (`LOW_IS_AI` or `HIGH_IS_AI`)."""
PANEL_CRITERIA = tuple(name for name in CRITERIA if name != "binoculars")
"""The criteria beside the Binoculars score (the fields of `PanelScores`)."""


@dataclass(frozen=True)
class PanelScores:
    """One text's panel criteria (see the module docstring for formulas and directions); NaN under 2 tokens."""

    fast_detectgpt: float
    log_rank: float
    log_likelihood: float
    entropy: float

    @classmethod
    def nan(cls) -> PanelScores:
        return cls(*(math.nan for _ in PANEL_CRITERIA))

    @classmethod
    def from_sums(
        cls, nll: float, xent: float, variance: float, log_rank: float, entropy: float, positions: int
    ) -> PanelScores:
        """The criteria of one text from the sums over its `positions` predicted positions of the per-position
        terms of `binoculars.metrics.panel_terms` (nll = -log p(x_t), xent = -mu_t, variance = var_t, ...)."""
        return cls(
            fast_detectgpt=(xent - nll) / math.sqrt(variance) if variance > 0 else math.nan,
            log_rank=log_rank / positions,
            log_likelihood=-nll / positions,
            entropy=entropy / positions,
        )

    def as_dict(self) -> dict[str, float]:
        return {name: getattr(self, name) for name in PANEL_CRITERIA}


def check_criterion(name: str) -> str:
    if name not in CRITERIA:
        raise ValueError(f"unknown detector criterion {name!r}; the panel has {list(CRITERIA)}")
    return name


def ai_sign(name: str) -> float:
    """+1 for a criterion whose LOW values are AI-like, -1 for HIGH: `ai_sign * value` is low for AI text under
    every criterion (the orientation calibration fits on, and the reward's margins use)."""
    return 1.0 if CRITERIA[check_criterion(name)] == LOW_IS_AI else -1.0


def flags_ai(name: str, value: float, threshold: float) -> bool:
    """Whether `value` of criterion `name` is on the AI side of `threshold` (False for NaN: not scored)."""
    if math.isnan(value):
        return False
    return value < threshold if ai_sign(name) > 0 else value > threshold


def human_margin(name: str, value: float, threshold: float, scale: float | None) -> float:
    """How far `value` lies on the human side of `threshold`, in units of `scale` (None: undivided): positive
    for human-like, negative for AI-like, under every criterion."""
    margin = ai_sign(name) * (value - threshold)
    return margin if scale is None else margin / scale


def decision_rule(name: str) -> str:
    return f"predicted AI-generated when {name} {'<' if ai_sign(name) > 0 else '>'} threshold"


def load_criteria_calibration(path: str | Path) -> dict[str, dict[str, Any]]:
    """The `criteria` object of a calibration JSON (written by scripts/calibrate.py since the panel):
    criterion -> {"thresholds": {...}, "scale": ..., "auroc": ..., ...}. A file without it (an older
    calibration) is a ValueError saying to recalibrate."""
    from binoculars.utils import _read_calibration  # here: this module stays free of torch

    criteria = _read_calibration(path).get("criteria")
    if not isinstance(criteria, dict):
        raise ValueError(
            f'calibration file {path} has no per-criterion calibration ("criteria"); it was written before '
            "the detector panel: run scripts/calibrate.py again"
        )
    for name, entry in criteria.items():
        check_criterion(name)
        if not isinstance(entry, dict) or not isinstance(entry.get("thresholds"), dict):
            raise ValueError(f'calibration file {path}: criteria.{name} has no "thresholds" object')
    return criteria


def criterion_thresholds(path: str | Path, threshold_key: str) -> dict[str, float]:
    """criterion -> its `threshold_key` ("accuracy" or "low-fpr") threshold from a calibration JSON; criteria
    the file has no such threshold for are left out."""
    return {
        name: float(entry["thresholds"][threshold_key])
        for name, entry in load_criteria_calibration(path).items()
        if entry["thresholds"].get(threshold_key) is not None
    }
