"""binoculars-env (classic verifiers, 0.3.x): the same prompts and reward as a `vf.SingleTurnEnv`.

`load_environment()` is what `vf.load_environment("binoculars-env", **args)`, legacy `vf-eval -a '{...}'` and
prime-rl's legacy env sources call. The rubric's functions take the plural `completions`, so verifiers calls
them once per group and the group is scored in one batched call.
"""

from __future__ import annotations

from typing import Any, get_args

import verifiers as vf

from binoculars_env.batching import score_group
from binoculars_env.data import DataConfig, Split, StoryPrompt, load_story_prompts
from binoculars_env.ensemble import check_ensemble
from binoculars_env.reward import METRIC_NAMES, RewardConfig, completion_text

ENV_ID = "binoculars-env"


def load_environment(split: Split | None = None, **args: Any) -> vf.SingleTurnEnv:
    """A SingleTurnEnv rewarding story continuations that Binoculars judges human-written.

    Arguments are the fields of `DataConfig` (story source, splits, prompt shape) and `RewardConfig` (scorer
    pair, threshold, guards, length term, scoring service) by name, with their defaults; an unknown name is a
    `TypeError`, a bad value pydantic's `ValidationError`. Datasets are built lazily and the scorer loads on
    the first reward call.

    `split` (v1's taskset selector, same name): None gives the env both datasets; `"train"` or `"eval"` gives it
    only that one. prime-rl v0.8.0's legacy bridge serves an env's train dataset and, when the env has none, its
    eval dataset, so its eval sources pass `split="eval"`.
    """
    if split is not None and split not in get_args(Split):
        raise ValueError(f"split must be one of {get_args(Split)} or None, got {split!r}")
    if not hasattr(vf, "SingleTurnEnv"):
        raise ImportError(
            f"verifiers {vf.__version__} has no classic stack (vf.SingleTurnEnv); binoculars-env serves it "
            "as the v1 taskset binoculars_env.BinocularsTaskset instead: "
            "`vf-eval binoculars-env --env.agent.harness.id null ...`"
        )
    unknown = set(args) - set(DataConfig.model_fields) - set(RewardConfig.model_fields)
    if unknown:
        raise TypeError(f"load_environment got unknown arguments {sorted(unknown)}")
    data_config = DataConfig(**{k: v for k, v in args.items() if k in DataConfig.model_fields})
    reward_config = RewardConfig(**{k: v for k, v in args.items() if k in RewardConfig.model_fields})
    reward_config.resolved_threshold()  # a bad calibration_file fails here, before any rollout
    reward_config.resolved_scale()
    check_ensemble(reward_config)  # an ensemble without its calibration fails here too

    from binoculars_env.classic_rubric import BinocularsRubric

    return vf.SingleTurnEnv(
        dataset=(lambda: build_dataset(data_config, "train")) if split in (None, "train") else None,
        eval_dataset=(lambda: build_dataset(data_config, "eval")) if split in (None, "eval") else None,
        rubric=BinocularsRubric(group_reward_functions(reward_config)),
        env_id=ENV_ID,
        env_args={**args, **({"split": split} if split is not None else {})},
    )


def build_dataset(config: DataConfig, split: str):
    """A `datasets.Dataset` of chat prompts (`prompt`), reference continuations (`answer`) and `info`."""
    from datasets import Dataset

    return Dataset.from_list([_row(story) for story in load_story_prompts(config, split)])


def _row(story: StoryPrompt) -> dict:
    return {
        "prompt": story.messages(),
        "answer": story.reference,
        "info": {"story_beginning": story.beginning},
    }


def group_reward_functions(config: RewardConfig) -> list[tuple[Any, float]]:
    """(function, weight) pairs: the reward at weight 1, then each monitoring metric at weight 0. Each takes
    the group's `completions`; the first call scores the group and the others reuse its results."""

    async def binoculars_reward(completions: list, **_: Any) -> list[float]:
        return [r.reward for r in await score_group([completion_text(c) for c in completions], config)]

    functions = [(binoculars_reward, 1.0)]
    for name in METRIC_NAMES:
        functions.append((_metric_function(name, config), 0.0))
    return functions


def _metric_function(name: str, config: RewardConfig):
    async def metric(completions: list, **_: Any) -> list[float]:
        results = await score_group([completion_text(c) for c in completions], config)
        return [r.metrics()[name] for r in results]

    metric.__name__ = name
    return metric
