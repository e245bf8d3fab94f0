"""Binoculars zero-shot AI-text detection (Hans et al., 2024): observer/performer perplexity ratio.

Names are imported on first use, so `binoculars.defaults` and the service schema load without torch.
"""

from importlib import import_module
from typing import TYPE_CHECKING

from binoculars.defaults import DEFAULT_OBSERVER, DEFAULT_PERFORMER

_LAZY = {
    "AI_LABEL": "binoculars.detector",
    "HUMAN_LABEL": "binoculars.detector",
    "UNDETERMINED_LABEL": "binoculars.detector",
    "Binoculars": "binoculars.detector",
    "ModelLoadError": "binoculars.detector",
    "PanelScores": "binoculars.panel",
    "ScoreDetails": "binoculars.detector",
    "FALCON_7B_ACCURACY_THRESHOLD": "binoculars.utils",
    "FALCON_7B_LOW_FPR_THRESHOLD": "binoculars.utils",
    "FALCON_7B_THRESHOLDS": "binoculars.utils",
    "load_thresholds": "binoculars.utils",
    "save_thresholds": "binoculars.utils",
}

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
    "PanelScores",
    "ScoreDetails",
    "load_thresholds",
    "save_thresholds",
]

if TYPE_CHECKING:
    from binoculars.detector import (
        AI_LABEL,
        HUMAN_LABEL,
        UNDETERMINED_LABEL,
        Binoculars,
        ModelLoadError,
        ScoreDetails,
    )
    from binoculars.panel import PanelScores
    from binoculars.utils import (
        FALCON_7B_ACCURACY_THRESHOLD,
        FALCON_7B_LOW_FPR_THRESHOLD,
        FALCON_7B_THRESHOLDS,
        load_thresholds,
        save_thresholds,
    )


def __getattr__(name: str):
    if name not in _LAZY:
        raise AttributeError(f"module 'binoculars' has no attribute {name!r}")
    value = getattr(import_module(_LAZY[name]), name)
    globals()[name] = value
    return value
