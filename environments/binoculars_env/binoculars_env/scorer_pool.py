"""One Binoculars scorer per process per configuration, loaded on first use and shared by every rollout.

Loading is lazy (not at import, not while the orchestrator builds datasets) and happens once even when
several threads ask at the same time; forward passes of one scorer run one at a time.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from binoculars import Binoculars, ScoreDetails


@dataclass(frozen=True)
class ScorerSpec:
    """Everything that makes two scorers different (the env's threshold is not part of it)."""

    observer: str
    performer: str
    device: str | None
    batch_size: int
    max_token_observed: int


class SharedScorer:
    """A loaded Binoculars pair whose forward passes are serialised across threads."""

    def __init__(self, binoculars: Binoculars) -> None:
        self.binoculars = binoculars
        self._lock = threading.Lock()

    def score_details(self, texts: Sequence[str]) -> list[ScoreDetails]:
        with self._lock:
            return self.binoculars.score_details(list(texts))


_scorers: dict[ScorerSpec, SharedScorer] = {}
_loading = threading.Lock()


def get_scorer(spec: ScorerSpec) -> SharedScorer:
    """The process's scorer for `spec`, loading it the first time (raises binoculars.ModelLoadError)."""
    if (scorer := _scorers.get(spec)) is not None:
        return scorer
    with _loading:
        if spec not in _scorers:
            _scorers[spec] = SharedScorer(_load(spec))
        return _scorers[spec]


def loaded_scorer_count() -> int:
    return len(_scorers)


def _load(spec: ScorerSpec) -> Binoculars:
    from binoculars import FALCON_7B_THRESHOLDS, Binoculars

    return Binoculars(
        observer_name_or_path=spec.observer,
        performer_name_or_path=spec.performer,
        max_token_observed=spec.max_token_observed,
        device=spec.device,
        batch_size=spec.batch_size,
        # The env subtracts its own threshold and never calls predict(); passing the reference values
        # explicitly only silences the detector's "uncalibrated thresholds" warning.
        thresholds=FALCON_7B_THRESHOLDS,
    )
