"""Binoculars zero-shot AI-text detection (Hans et al., 2024): observer/performer perplexity ratio."""

from binoculars.detector import (
    AI_LABEL,
    DEFAULT_OBSERVER,
    DEFAULT_PERFORMER,
    HUMAN_LABEL,
    UNDETERMINED_LABEL,
    Binoculars,
    ModelLoadError,
    ScoreDetails,
)
from binoculars.utils import (
    FALCON_7B_ACCURACY_THRESHOLD,
    FALCON_7B_LOW_FPR_THRESHOLD,
    FALCON_7B_THRESHOLDS,
    load_thresholds,
    save_thresholds,
)

__all__ = [
    "AI_LABEL",
    "DEFAULT_OBSERVER",
    "DEFAULT_PERFORMER",
    "FALCON_7B_ACCURACY_THRESHOLD",
    "FALCON_7B_LOW_FPR_THRESHOLD",
    "FALCON_7B_THRESHOLDS",
    "HUMAN_LABEL",
    "UNDETERMINED_LABEL",
    "Binoculars",
    "ModelLoadError",
    "ScoreDetails",
    "load_thresholds",
    "save_thresholds",
]
