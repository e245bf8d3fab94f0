"""Generate completions for story prompts from a policy server and reward them with the env's reward.

The reward is `binoculars_env.reward.score_completions`, the function the env's classic rubric and v1 task call
during training, so a smoke rollout's reward is exactly the reward a training rollout with the same completion
and env arguments gets.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from binoculars_env.data import StoryPrompt
from binoculars_env.reward import RewardConfig, RewardResult, score_completions

from binoculars.panel import PanelScores
from binoculars_rl.smoke.errors import SmokeError
from binoculars_rl.smoke.policy_server import PolicyServer


@dataclass(frozen=True)
class Sampling:
    max_tokens: int = 256
    temperature: float = 0.7
    top_p: float = 0.8
    enable_thinking: bool = False
    """Sent as `chat_template_kwargs` (Qwen3 thinks by default; think blocks are stripped before scoring)."""
    concurrency: int = 8
    request_timeout_s: float = 600.0


@dataclass
class Rollout:
    prompt_index: int
    rollout_index: int
    story: StoryPrompt
    completion: str
    finish_reason: str | None
    completion_tokens: int | None
    result: RewardResult | None = field(default=None)

    def sample_record(self) -> dict[str, Any]:
        """The JSONL fields known once the policy has answered: prompt and completion, no score yet."""
        return {
            "prompt_index": self.prompt_index,
            "rollout_index": self.rollout_index,
            "prompt": self.story.messages(),
            "story_beginning": self.story.beginning,
            "reference": self.story.reference,  # the dataset story's own rest (TinyStories: GPT-written)
            "completion": self.completion,
            "finish_reason": self.finish_reason,
            "completion_tokens": self.completion_tokens,
        }

    def record(self) -> dict[str, Any]:
        """One JSONL line: prompt, completion, score, reward and metrics (non-finite numbers become null)."""
        r = self.result
        if r is None:
            raise ValueError("rollout not scored yet")
        return {
            **self.sample_record(),
            "score": _finite_or_none(r.score),
            "reward": r.reward,
            "guard": r.guard,
            "flagged_as_ai": r.flagged_as_ai,
            "metrics": r.metrics(),
            "panel": None
            if r.panel is None
            else {k: _finite_or_none(v) for k, v in r.panel.as_dict().items()},
        }

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> Rollout:
        """The rollout a `sample_record()` or `record()` line describes (scored when it has a reward)."""
        result = None
        if "reward" in record:
            metrics = record["metrics"]
            result = RewardResult(
                reward=record["reward"],
                score=math.nan if record["score"] is None else record["score"],
                log_ppl=metrics["log_ppl"],
                x_ppl=metrics["x_ppl"],
                num_tokens=int(metrics["num_tokens"]),
                distinct_2=metrics["distinct_2"],
                flagged_as_ai=record["flagged_as_ai"],
                guard=record["guard"],
                panel=_panel(record.get("panel")),
            )
        return cls(
            prompt_index=record["prompt_index"],
            rollout_index=record["rollout_index"],
            story=StoryPrompt(record["story_beginning"], record["reference"]),
            completion=record["completion"],
            finish_reason=record["finish_reason"],
            completion_tokens=record["completion_tokens"],
            result=result,
        )

    @property
    def key(self) -> tuple[int, int]:
        return (self.prompt_index, self.rollout_index)


async def generate(
    server: PolicyServer,
    prompts: list[StoryPrompt],
    wanted: list[tuple[int, int]],
    sampling: Sampling,
    on_done: Callable[[Rollout], None] = lambda rollout: None,
) -> list[Rollout]:
    """One chat completion per wanted (prompt_index, rollout_index) (one request each; `n` is not universally
    supported); `on_done` gets each rollout as soon as it arrives."""
    from openai import APIConnectionError, APIStatusError, AsyncOpenAI

    client = AsyncOpenAI(
        base_url=server.base_url, api_key="EMPTY", timeout=sampling.request_timeout_s, max_retries=1
    )
    limit = asyncio.Semaphore(sampling.concurrency)

    async def one(prompt_index: int, rollout_index: int) -> Rollout:
        story = prompts[prompt_index]
        async with limit:
            response = await client.chat.completions.create(
                model=server.model,
                messages=story.messages(),
                max_tokens=sampling.max_tokens,
                temperature=sampling.temperature,
                top_p=sampling.top_p,
                extra_body={"chat_template_kwargs": {"enable_thinking": sampling.enable_thinking}},
            )
        if not response.choices:
            raise SmokeError(f"the policy server at {server.base_url} returned no choices: {response}")
        choice = response.choices[0]
        usage = response.usage
        rollout = Rollout(
            prompt_index=prompt_index,
            rollout_index=rollout_index,
            story=story,
            completion=choice.message.content or "",
            finish_reason=choice.finish_reason,
            completion_tokens=usage.completion_tokens if usage is not None else None,
        )
        on_done(rollout)
        return rollout

    try:
        async with client:
            return list(await asyncio.gather(*(one(p, r) for p, r in wanted)))
    except APIConnectionError as error:
        raise SmokeError(
            f"cannot reach the policy server at {server.base_url} ({error}); is it running? "
            "(check --base-url, or leave it out to start an embedded server)"
        ) from None
    except APIStatusError as error:
        raise SmokeError(
            f"the policy server at {server.base_url} refused a chat completion for model {server.model!r}: "
            f"HTTP {error.status_code} {_short(error.message)}. --policy must be the name the server serves "
            "(GET /v1/models lists them)."
        ) from None


def score(
    rollouts: list[Rollout],
    config: RewardConfig,
    on_batch: Callable[[list[Rollout]], None] = lambda batch: None,
) -> None:
    """Reward every rollout with the env's reward, `scorer_batch_size` completions per scorer call; `on_batch`
    gets each batch as soon as it is scored."""
    size = config.scorer_batch_size
    for start in range(0, len(rollouts), size):
        batch = rollouts[start : start + size]
        for rollout, result in zip(
            batch, score_completions([r.completion for r in batch], config), strict=True
        ):
            rollout.result = result
        on_batch(batch)


def _panel(values: dict[str, float | None] | None) -> PanelScores | None:
    """The panel of a record (null values back to NaN); None for a record without one."""
    if values is None:
        return None
    return PanelScores(**{k: math.nan if v is None else v for k, v in values.items()})


def _finite_or_none(value: float) -> float | None:
    return value if math.isfinite(value) else None


def _short(text: str, limit: int = 300) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."
