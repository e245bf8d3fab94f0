"""binoculars-env (verifiers v1): continue a children's story so that Binoculars judges it human-written.

Each task shows the beginning of a TinyStories story; the model writes the rest in one turn. The reward is
how human the Binoculars AI-text detector (observer/performer perplexity ratio) finds the continuation,
minus the detector's threshold, clipped to [-2, 2], with guards against gaming it (see `reward.py`).
Concurrent rollouts' reward calls are scored together by one shared scorer (see `batching.py`).
"""

from __future__ import annotations

import verifiers.v1 as vf

from binoculars_env.batching import batcher_for
from binoculars_env.data import DataConfig, Split, load_story_prompts
from binoculars_env.ensemble import check_ensemble
from binoculars_env.reward import RewardConfig, RewardResult


class StoryData(vf.TaskData):
    beginning: str
    """The story beginning shown in the prompt."""
    reference: str
    """The rest of the dataset's story (TinyStories: AI-written)."""


class BinocularsTaskConfig(RewardConfig, vf.TaskConfig):
    """Scorer and reward settings, under `--env.taskset.task.*` (see `RewardConfig`)."""


class BinocularsTask(vf.Task[StoryData, vf.State, BinocularsTaskConfig]):
    @vf.stop
    async def single_turn(self, trace: vf.Trace) -> bool:
        return trace.num_turns >= 1

    @vf.metric
    async def binoculars(self, trace: vf.Trace) -> dict[str, float]:
        """Weight-0 monitoring: raw score, log-ppl, x-ppl, tokens, distinct-2, flagged-as-AI, guard_failed."""
        return (await self.result(trace)).metrics()

    @vf.reward(weight=1.0)
    async def binoculars_reward(self, trace: vf.Trace) -> float:
        return (await self.result(trace)).reward

    async def result(self, trace: vf.Trace) -> RewardResult:
        # The metric and the reward ask for the same text: the batcher scores it once.
        return await batcher_for(self.config).score(trace.last_reply)


class BinocularsTasksetConfig(DataConfig, vf.TasksetConfig):
    """Story source and prompt settings, under `--env.taskset.*` (see `DataConfig`)."""

    split: Split = "train"
    """Which prompts to serve: `train` (from `train_split`) or `eval` (from `eval_split`)."""
    task: BinocularsTaskConfig = BinocularsTaskConfig()


class BinocularsTaskset(vf.Taskset[BinocularsTask, BinocularsTasksetConfig]):
    def load(self) -> list[BinocularsTask]:
        self.config.task.resolved_threshold()  # a bad calibration_file fails here, before any rollout
        self.config.task.resolved_scale()
        check_ensemble(self.config.task)  # an ensemble without its calibration fails here too
        return [
            BinocularsTask(
                StoryData(prompt=story.messages(), beginning=story.beginning, reference=story.reference),
                self.config.task,
            )
            for story in load_story_prompts(self.config, self.config.split)
        ]
