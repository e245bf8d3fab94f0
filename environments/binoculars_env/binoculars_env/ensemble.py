"""Optional ensemble reward: pay for text that several detectors of the panel judge human, not Binoculars alone.

A policy trained against one detector learns that detector's blind spots. With `reward_criteria` naming more
than Binoculars, each rewarded criterion c of the panel (`binoculars.panel`: Fast-DetectGPT, log-rank,
log-likelihood, entropy) gives a margin on the human side of its own calibrated threshold, in units of its own
calibrated spread, and the reward is made of their combination:

    margin_c = s_c * (value_c - threshold_c) / scale_c      s_c = +1 where low values are AI-like, -1 where high
    margin   = min_c margin_c    (ensemble = "min": every rewarded detector must call the text human)
             | mean_c margin_c   (ensemble = "mean": detectors may trade off against each other)
    reward   = clip(margin - length_weight * shortfall, -2, 2)

Binoculars keeps the reward's own threshold and scale (`threshold`/`calibration_file`, `scale`); every other
criterion takes its threshold (`threshold_key`) and scale (its pooled within-class standard deviation) from the
`criteria` of `calibration_file` (scripts/calibrate.py), so an ensemble needs a calibration file written since
the panel, and a Binoculars scale. A rewarded criterion that is not finite gets the `non_finite` guard (-2).
With the default `reward_criteria = ["binoculars"]` the margin is (score - threshold) / scale: today's reward.

Trade-off: "min" is the harder target (the weakest-fooled detector sets the reward, so evading one detector at the
others' expense earns nothing) and its gradient signal comes from one criterion at a time; "mean" is smoother but
lets a large margin on one detector pay for being caught by another.
"""

from __future__ import annotations

import math
import statistics
from functools import lru_cache
from typing import TYPE_CHECKING, Annotated

from pydantic import AfterValidator

from binoculars.panel import CRITERIA, human_margin, load_criteria_calibration

if TYPE_CHECKING:
    from binoculars import ScoreDetails
    from binoculars_env.reward import RewardConfig

ENSEMBLES = ("min", "mean")
BINOCULARS_ONLY = ["binoculars"]


def _check_reward_criteria(names: list[str]) -> list[str]:
    if not names:
        raise ValueError("reward_criteria must name at least one criterion")
    unknown = [name for name in names if name not in CRITERIA]
    if unknown:
        raise ValueError(f"unknown reward_criteria {unknown}; the panel has {list(CRITERIA)}")
    if len(set(names)) != len(names):
        raise ValueError(f"reward_criteria names a criterion twice: {names}")
    return names


RewardCriteria = Annotated[list[str], AfterValidator(_check_reward_criteria)]
"""The `reward_criteria` field's type: known, distinct criterion names, at least one."""


def uses_panel(config: RewardConfig) -> bool:
    return config.reward_criteria != BINOCULARS_ONLY


@lru_cache(maxsize=32)
def calibrated_criteria(calibration_file: str, threshold_key: str) -> dict[str, tuple[float, float]]:
    """criterion -> (threshold, scale) from a calibration JSON's `criteria`."""
    calibrations = load_criteria_calibration(calibration_file)
    settings = {}
    for name, entry in calibrations.items():
        threshold, scale = entry["thresholds"].get(threshold_key), entry.get("scale")
        if threshold is not None and scale is not None:
            settings[name] = (float(threshold), float(scale))
    return settings


def check_ensemble(config: RewardConfig) -> None:
    """Fail now, not at the first reward, when an ensemble cannot be computed: no calibration file, a
    criterion without a `threshold_key` threshold or scale there, or no Binoculars scale."""
    if not uses_panel(config):
        return
    if config.calibration_file is None:
        raise ValueError(
            f"reward_criteria {config.reward_criteria} needs calibration_file: each criterion's threshold and "
            "scale come from its per-criterion calibration (scripts/calibrate.py)"
        )
    settings = calibrated_criteria(config.calibration_file, config.threshold_key)
    missing = [n for n in config.reward_criteria if n != "binoculars" and n not in settings]
    if missing:
        raise ValueError(
            f"calibration file {config.calibration_file} has no {config.threshold_key!r} threshold and scale "
            f"for {missing}; recalibrate, or choose another threshold_key"
        )
    if "binoculars" in config.reward_criteria and config.resolved_scale() is None:
        raise ValueError(
            "an ensemble reward compares margins in units of each detector's spread: Binoculars needs a scale "
            "(`scale`, or a calibration file with one and use_calibrated_scale=True)"
        )


def reward_margin(
    details: ScoreDetails, config: RewardConfig, threshold: float, scale: float | None
) -> float:
    """The margin the reward is made of (module docstring): NaN when a rewarded criterion is NaN."""
    if not uses_panel(config):
        return human_margin("binoculars", details.score, threshold, scale)
    check_ensemble(config)
    settings = calibrated_criteria(config.calibration_file, config.threshold_key)
    settings = settings | {"binoculars": (threshold, scale)}
    values = details.criteria()
    margins = [human_margin(name, values[name], *settings[name]) for name in config.reward_criteria]
    if not all(math.isfinite(m) for m in margins):
        return math.nan
    return min(margins) if config.ensemble == "min" else statistics.fmean(margins)
