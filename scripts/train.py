"""Local single-GPU GRPO on the Binoculars environment with TRL's GRPOTrainer.

    uv run scripts/train.py --max-steps 100 --batch-size 4
    uv run scripts/train.py --config configs/trl/grpo_qwen3_0.6b.yaml --use_peft --lora_r 16 --scorer_device cuda:1

Without --config the recipe configs/trl/grpo_qwen3_0.6b.yaml supplies the defaults (its comments give the
reasoning); command-line flags override it. Every GRPOConfig / ModelConfig option of TRL and every environment
data/reward setting is a flag (`--help` lists them). The run directory is runs/<model>_grpo_<loss>_beta.._g.._lr.._
unless --output_dir is given; it receives checkpoints, the final model, samples.jsonl (sample completions with
scores every --sample_log_steps steps), eval_completions.jsonl and eval_report.json (held-out evaluation).
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch
from rich.console import Console
from trl import TrlParser

from binoculars_rl.report import report_table
from binoculars_rl.trl_args import parser_types
from binoculars_rl.trl_training import build_training_run, final_evaluation

DEFAULT_RECIPE = Path(__file__).resolve().parent.parent / "configs" / "trl" / "grpo_qwen3_0.6b.yaml"
BATCH_SIZE_HELP = (
    "--batch-size N is short for --per_device_train_batch_size N (completions per device per micro-batch; with "
    "--gradient_accumulation_steps it must make whole groups of --num_generations)."
)


def parse(argv: list[str]) -> tuple:
    """(train_args, env_args, grpo_config, model_config) from the recipe and the command line."""
    if "--config" not in argv and not {"-h", "--help"} & set(argv):
        argv = ["--config", str(DEFAULT_RECIPE), *argv]
    argv = [
        "--per_device_train_batch_size" if arg == "--batch-size" else arg.replace("--batch-size=", "--per_device_train_batch_size=", 1)
        for arg in argv
    ]  # fmt: skip
    parser = TrlParser(parser_types(), epilog=BATCH_SIZE_HELP)
    parser.set_defaults(bf16=torch.cuda.is_available())  # TRL would default to bf16, which CPUs reject
    return parser.parse_args_and_config(argv)


def main(argv: list[str]) -> int:
    console = Console()
    try:
        train_args, env_args, grpo_config, model_config = parse(argv)
        run = build_training_run(train_args, env_args, grpo_config, model_config)
    except (ValueError, OSError) as error:  # bad flags/recipe, missing model or data (offline hub ids)
        console.print(f"[red]error:[/] {error}")
        return 2
    console.print(f"run directory: {run.output_dir}")
    run.trainer.train(resume_from_checkpoint=grpo_config.resume_from_checkpoint)
    run.trainer.save_model(str(run.output_dir))
    if train_args.final_eval:
        evaluation = final_evaluation(run, train_args, grpo_config)
        console.print(report_table(evaluation.report, title="held-out evaluation"))
        console.print(f"eval report: {run.output_dir / 'eval_report.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
