"""Command-line / YAML arguments of scripts/train.py, parsed by TRL's own `TrlParser`.

Four dataclasses share one parser (and one YAML recipe): `TrainArguments` (this project's run options),
`EnvArguments` (every data and reward setting of the environment, generated from its own pydantic configs so the
names, defaults and help texts are the environment's), TRL's `GRPOConfig` and TRL's `ModelConfig` (LoRA/PEFT).
The environment's `seed` is not repeated: the data are shuffled with GRPOConfig's `--seed`.
"""

from __future__ import annotations

import dataclasses
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path

from binoculars_env.data import DataConfig
from binoculars_env.reward import RewardConfig

# Environment settings the trainer has no use for: v1 batching knobs (the trainer scores a whole batch in one
# call), the streaming buffer, and `seed` (GRPOConfig's seed is used).
_NOT_EXPOSED = {"batch_window_s", "max_batch_size", "shuffle_buffer", "seed"}


@dataclass
class TrainArguments:
    """Run options of scripts/train.py (not TRL's, not the environment's)."""

    runs_dir: str = field(
        default="runs",
        metadata={
            "help": "Parent of the run directory when --output_dir is not given; the run directory's name "
            "carries the key hyperparameters."
        },
    )
    sample_log_steps: int = field(
        default=10,
        metadata={"help": "Every this many optimizer steps, log sample completions with their scores."},
    )
    num_samples_to_log: int = field(default=4, metadata={"help": "Completions shown per sample log."})
    final_eval: bool = field(
        default=True,
        metadata={
            "help": "After training, sample one completion per held-out (eval) prompt, score it and write a "
            "degeneracy report (eval_completions.jsonl, eval_report.json in the run directory)."
        },
    )
    eval_max_new_tokens: int | None = field(
        default=None,
        metadata={"help": "Token budget of final-eval completions (default: max_completion_length)."},
    )
    eval_temperature: float | None = field(
        default=None,
        metadata={"help": "Sampling temperature of the final eval (default: the training temperature)."},
    )
    eval_batch_size: int = field(
        default=16, metadata={"help": "Prompts per generate() call in the final eval."}
    )
    resume: bool = field(
        default=False,
        metadata={
            "help": "Continue from the latest checkpoint-N in the run directory (the one an interrupted run "
            "saved; give the same flags, or --output_dir). --resume_from_checkpoint PATH picks one."
        },
    )


def _env_fields() -> list[tuple[str, object, dataclasses.Field]]:
    fields = []
    for model in (DataConfig, RewardConfig):
        for name, info in model.model_fields.items():
            if name in _NOT_EXPOSED:
                continue
            annotation = info.annotation
            if (
                name == "data_files"
            ):  # str | list | dict: a list of paths on the command line, anything in YAML
                annotation = list[str] | None
            elif _union_of_several_types(annotation):
                annotation = str | None  # max_log_ppl: float | "auto" | None; the model parses the string
            # argparse %-formats help strings: a literal % in a docstring must be doubled
            help_text = f"[env] {info.description or ''}".strip().replace("%", "%%")
            default = (
                {"default_factory": info.default_factory}
                if info.default_factory is not None
                else {"default": info.default}
            )
            fields.append((name, annotation, field(**default, metadata={"help": help_text})))
    return fields


def _union_of_several_types(annotation: object) -> bool:
    """A union argparse cannot parse (`HfArgumentParser` takes one type, optionally with None)."""
    if typing.get_origin(annotation) not in (typing.Union, types.UnionType):
        return False
    return len([arg for arg in typing.get_args(annotation) if arg is not type(None)]) > 1


EnvArguments = dataclasses.make_dataclass("EnvArguments", _env_fields())
EnvArguments.__doc__ = (
    "The environment's data and reward settings (binoculars_env DataConfig + RewardConfig)."
)


def data_config(env_args, seed: int) -> DataConfig:
    """The environment's DataConfig from parsed arguments (validated by the environment's own model)."""
    values = {k: v for k, v in dataclasses.asdict(env_args).items() if k in DataConfig.model_fields}
    return DataConfig(**values, seed=seed)


def reward_config(env_args) -> RewardConfig:
    """The environment's RewardConfig from parsed arguments (validated by the environment's own model)."""
    return RewardConfig(
        **{k: v for k, v in dataclasses.asdict(env_args).items() if k in RewardConfig.model_fields}
    )


def run_name(model_name_or_path: str, grpo_config, model_config) -> str:
    """A directory name carrying the key hyperparameters, e.g.
    `Qwen3-0.6B_grpo_dapo_beta0.02_g8_lr1e-05_bs8x4_len256_lora16_seed0`."""
    model = re.sub(r"[^A-Za-z0-9._-]+", "-", Path(model_name_or_path.rstrip("/")).name)
    parts = [
        model,
        "grpo",
        grpo_config.loss_type,
        f"beta{grpo_config.beta:g}",
        f"g{grpo_config.num_generations}",
        f"lr{grpo_config.learning_rate:g}",
        f"bs{grpo_config.per_device_train_batch_size}x{grpo_config.gradient_accumulation_steps}",
        f"len{grpo_config.max_completion_length}",
        f"lora{model_config.lora_r}" if model_config.use_peft else "full",
        f"seed{grpo_config.seed}",
    ]
    return "_".join(parts)


def parser_types() -> tuple[type, ...]:
    from trl import GRPOConfig, ModelConfig

    return (TrainArguments, EnvArguments, GRPOConfig, ModelConfig)
