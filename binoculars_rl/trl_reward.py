"""The environment's reward in TRL's reward-function shape.

TRL's GRPOTrainer calls `reward(prompts=..., completions=..., completion_ids=..., log_metric=..., log_extra=...,
**dataset_columns)` once per generation batch and expects one float per completion. This adapter hands the batch
to `binoculars_env.reward.score_completions` (the environment's own reward: think-stripping, guards, length term,
one batched scorer call), logs the environment's weight-0 metrics through TRL's `log_metric`, and keeps the last
batch for the sample-logging callback.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from typing import Any

from binoculars_env.reward import METRIC_NAMES, RewardConfig, RewardResult, completion_text, score_completions


@dataclass(frozen=True)
class ScoredBatch:
    texts: list[str]
    results: list[RewardResult]


class BinocularsReward:
    """Callable reward for `GRPOTrainer(reward_funcs=[BinocularsReward(config)])`."""

    __name__ = "binoculars"  # TRL names the reward column and metric after the function

    def __init__(self, config: RewardConfig) -> None:
        self.config = config
        self.last_batch: ScoredBatch | None = None

    @property
    def threshold(self) -> float:
        return self.config.resolved_threshold()

    def score_texts(self, texts: list[str]) -> list[RewardResult]:
        """Rewards of plain completion texts (the environment's `score_completions`, checked to be finite)."""
        results = score_completions(texts, self.config)
        bad = [r.reward for r in results if not math.isfinite(r.reward)]
        if bad:  # the env's guards make this impossible; never let NaN reach the advantages
            raise RuntimeError(f"the environment returned non-finite rewards {bad}")
        return results

    def __call__(
        self, prompts: list, completions: list, log_metric=None, log_extra=None, **_: Any
    ) -> list[float]:
        texts = [completion_text(completion) for completion in completions]
        results = self.score_texts(texts)
        self.last_batch = ScoredBatch(texts, results)
        if log_metric is not None:
            for name in METRIC_NAMES:
                log_metric(f"env/{name}", statistics.fmean(r.metrics()[name] for r in results))
        if log_extra is not None:
            log_extra("binoculars_score", [r.score for r in results])
            log_extra("guard", [r.guard or "" for r in results])
        return [r.reward for r in results]
