"""A classic verifiers Rubric whose scorer failures stop the run (imported only where the classic stack exists).

verifiers' Rubric turns an exception in a reward function into 0.0 for the whole group: a mid-range reward
that would train on silently if the scorer could not load or ran out of memory. Here the error propagates.
"""

from __future__ import annotations

from typing import Any

import verifiers as vf


class BinocularsRubric(vf.Rubric):
    def __init__(self, functions: list[tuple[Any, float]]) -> None:
        super().__init__(funcs=[f for f, _ in functions], weights=[w for _, w in functions])

    async def _call_group_reward_func(self, func: Any, states: list) -> list[float]:
        return await func(completions=[state["completion"] for state in states])

    async def score_rollout(self, state: Any) -> None:
        """Independent scoring (`vf-eval -i`): the group functions on a group of one."""
        metrics = {
            func.__name__: (await self._call_group_reward_func(func, [state]))[0] for func in self.funcs
        }
        state["reward"] = sum(
            metrics[func.__name__] * weight for func, weight in zip(self.funcs, self.weights, strict=True)
        )
        state["metrics"] = metrics
