"""Local GRPO on the Binoculars environment with TRL: datasets from the environment's prompt builder, the
environment's reward, sample logging, and a final held-out evaluation with a degeneracy report."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from binoculars_env.data import StoryPrompt, load_story_prompts

from binoculars_rl.evaluation import Evaluation, evaluate_texts, write_completions
from binoculars_rl.generation import generate_completions
from binoculars_rl.trl_args import TrainArguments, data_config, reward_config, run_name
from binoculars_rl.trl_callbacks import SampleLogCallback
from binoculars_rl.trl_reward import BinocularsReward

DEFAULT_CHAT_TEMPLATE_KWARGS = {"enable_thinking": False}
"""The policy answers directly (Qwen3 thinks by default; the reward would strip the thinking anyway)."""


@dataclass
class TrainingRun:
    trainer: object  # trl.GRPOTrainer
    reward: BinocularsReward
    eval_prompts: list[StoryPrompt]
    output_dir: Path


def prompt_dataset(prompts: list[StoryPrompt]):
    """A conversational TRL dataset: `prompt` (chat messages) and the human `reference` continuation."""
    from datasets import Dataset

    return Dataset.from_list([{"prompt": p.messages(), "reference": p.reference} for p in prompts])


def configure_run(train_args: TrainArguments, grpo_config, model_config) -> Path:
    """Fill run-level defaults into TRL's config in place: the run directory (named after the key
    hyperparameters unless --output_dir was given), run_name, and thinking off."""
    if not model_config.model_name_or_path:
        raise ValueError("--model_name_or_path is required (a hub id or a local model directory)")
    if grpo_config.output_dir in (
        None,
        "trainer_output",
    ):  # TrainingArguments' default: not given by the user
        grpo_config.output_dir = str(
            Path(train_args.runs_dir) / run_name(model_config.model_name_or_path, grpo_config, model_config)
        )
    if grpo_config.run_name is None:
        grpo_config.run_name = Path(grpo_config.output_dir).name
    grpo_config.chat_template_kwargs = {
        **DEFAULT_CHAT_TEMPLATE_KWARGS,
        **(grpo_config.chat_template_kwargs or {}),
    }
    grpo_config.model_init_kwargs = {
        "revision": model_config.model_revision,
        "attn_implementation": model_config.attn_implementation,
        "dtype": model_config.dtype,
        **(grpo_config.model_init_kwargs or {}),
    }
    return Path(grpo_config.output_dir)


def build_training_run(train_args: TrainArguments, env_args, grpo_config, model_config) -> TrainingRun:
    """The GRPOTrainer over the environment's train prompts and reward, with the sample-logging callback."""
    from trl import GRPOTrainer, get_peft_config, get_quantization_config

    output_dir = configure_run(train_args, grpo_config, model_config)
    if train_args.final_eval and env_args.num_eval_examples < 2:
        raise ValueError(
            "the final evaluation's degeneracy report needs --num_eval_examples >= 2 (or --final_eval false)"
        )
    data = data_config(env_args, seed=grpo_config.seed)
    train_prompts = load_story_prompts(data, "train")
    eval_prompts = load_story_prompts(data, "eval")
    reward = BinocularsReward(reward_config(env_args))
    trainer = GRPOTrainer(
        model=model_config.model_name_or_path,
        reward_funcs=[reward],
        args=grpo_config,
        train_dataset=prompt_dataset(train_prompts),
        eval_dataset=prompt_dataset(eval_prompts) if grpo_config.eval_strategy != "no" else None,
        peft_config=get_peft_config(model_config),
        quantization_config=get_quantization_config(model_config),
        callbacks=[SampleLogCallback(reward, train_args.sample_log_steps, train_args.num_samples_to_log)],
    )
    return TrainingRun(trainer, reward, eval_prompts, output_dir)


def held_out_completions(
    run: TrainingRun,
    grpo_config,
    desc: str,
    max_new_tokens: int | None = None,
    temperature: float | None = None,
    batch_size: int = 16,
) -> list[str]:
    """One sampled completion per held-out prompt from the current policy (thinking off, the run's seed); the
    token budget and temperature default to training's."""
    return generate_completions(
        run.trainer.model,
        run.trainer.processing_class,
        [p.messages() for p in run.eval_prompts],
        max_new_tokens=max_new_tokens or grpo_config.max_completion_length,
        temperature=grpo_config.temperature if temperature is None else temperature,
        batch_size=batch_size,
        chat_template_kwargs=grpo_config.chat_template_kwargs,
        seed=grpo_config.seed,
        desc=desc,
    )


def final_evaluation(run: TrainingRun, train_args: TrainArguments, grpo_config) -> Evaluation:
    """Sample one completion per held-out prompt from the trained policy, score it with the environment's reward,
    and write `eval_completions.jsonl` and `eval_report.json` (mean reward + degeneracy report) to the run dir."""
    texts = held_out_completions(
        run,
        grpo_config,
        "final eval",
        max_new_tokens=train_args.eval_max_new_tokens,
        temperature=train_args.eval_temperature,
        batch_size=train_args.eval_batch_size,
    )
    evaluation = evaluate_texts(texts, run.reward)
    write_completions(run.output_dir / "eval_completions.jsonl", run.eval_prompts, texts, evaluation.results)
    report_path = run.output_dir / "eval_report.json"
    report_path.write_text(json.dumps(evaluation.summary(), indent=2) + "\n", encoding="utf-8")
    return evaluation
