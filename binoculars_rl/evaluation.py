"""Held-out evaluation: completions of a checkpoint (or from a file), their rewards, and the degeneracy report."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

from binoculars_env.data import DataConfig, StoryPrompt, load_story_prompts
from binoculars_env.reward import RewardResult

from binoculars_rl.degeneracy import CollapseCriteria, DegeneracyReport, degeneracy_report
from binoculars_rl.generation import generate_completions
from binoculars_rl.panel_report import CriterionRate, panel_rates, panel_thresholds
from binoculars_rl.trl_reward import BinocularsReward


@dataclass(frozen=True)
class Evaluation:
    report: DegeneracyReport
    results: list[RewardResult] | None
    """The environment's reward per text (None when the texts were not scored)."""
    panel: list[CriterionRate] | None = None
    """Per-criterion flag rates of the detector panel (None when the texts were not scored)."""

    def summary(self) -> dict:
        """JSON-ready: mean reward, guard rate and the panel's flag rates (when scored) plus the degeneracy
        report."""
        scored = {}
        if self.results is not None:
            scored = {
                "mean_reward": math.fsum(r.reward for r in self.results) / len(self.results),
                "guard_rate": sum(r.guard is not None for r in self.results) / len(self.results),
                "panel": [asdict(rate) for rate in self.panel or []],
            }
        return {"num_samples": self.report.num_samples, **scored, "degeneracy": self.report.to_dict()}


def evaluate_texts(
    texts: list[str], reward: BinocularsReward | None, criteria: CollapseCriteria | None = None
) -> Evaluation:
    """The degeneracy report of `texts`, with Binoculars scores and rewards from the environment when `reward`
    is given."""
    if reward is None:
        return Evaluation(degeneracy_report(texts, criteria=criteria), None)
    results = reward.score_texts(texts)
    report = degeneracy_report(
        texts,
        scores=[r.score for r in results],
        threshold=reward.threshold,
        num_tokens=[r.num_tokens for r in results],
        criteria=criteria,
    )
    return Evaluation(report, results, panel_rates(results, panel_thresholds(reward.config)))


def checkpoint_completions(
    checkpoint: str | Path,
    prompts: list[StoryPrompt],
    max_new_tokens: int,
    temperature: float,
    batch_size: int,
    chat_template_kwargs: dict | None,
    seed: int,
    device: str | None = None,
) -> list[str]:
    """One sampled completion per prompt from a saved model (full model or PEFT adapter directory)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    checkpoint = Path(checkpoint)
    if (checkpoint / "adapter_config.json").exists():
        from peft import AutoPeftModelForCausalLM

        model = AutoPeftModelForCausalLM.from_pretrained(checkpoint)
    else:
        model = AutoModelForCausalLM.from_pretrained(checkpoint)
    tokenizer = AutoTokenizer.from_pretrained(checkpoint)
    return generate_completions(
        model.to(device),
        tokenizer,
        [p.messages() for p in prompts],
        max_new_tokens=max_new_tokens,
        temperature=temperature,
        batch_size=batch_size,
        chat_template_kwargs=chat_template_kwargs,
        seed=seed,
    )


def eval_prompts(config: DataConfig) -> list[StoryPrompt]:
    """The environment's held-out prompts (its eval split or seeded hold-out)."""
    return load_story_prompts(config, "eval")


def write_completions(
    path: Path, prompts: list[StoryPrompt], texts: list[str], results: list[RewardResult] | None
) -> None:
    """JSONL, one line per completion: `prompt`, `completion` (+ `reward`, the env's metrics and `guard`)."""
    with path.open("w", encoding="utf-8") as out:
        for index, (prompt, text) in enumerate(zip(prompts, texts, strict=True)):
            row = {"prompt": prompt.beginning, "completion": text}
            if results is not None:
                result = results[index]
                row |= {"reward": result.reward, **result.metrics(), "guard": result.guard}
            out.write(json.dumps(row) + "\n")
