"""Local single-GPU GRPO on the Binoculars environment with TRL's GRPOTrainer.

    uv run scripts/train.py --max-steps 100 --batch-size 4
    uv run scripts/train.py --max-steps 100 --batch-size 4 --resume     # after Ctrl-C: continue from its checkpoint
    uv run scripts/train.py --config configs/trl/grpo_qwen3_0.6b.yaml --use_peft --lora_r 16 --scorer_device cuda:1

Without --config the recipe configs/trl/grpo_qwen3_0.6b.yaml supplies the defaults (its comments give the
reasoning); command-line flags override it. Every GRPOConfig / ModelConfig option of TRL and every environment
data/reward setting is a flag (`--help` lists them). The run directory is runs/<model>_grpo_<loss>_beta.._g.._lr.._
unless --output_dir is given; it receives checkpoints, the final model, samples.jsonl (sample completions with
scores every --sample_log_steps steps), eval_completions.jsonl and eval_report.json (held-out evaluation).
Ctrl-C or SIGTERM saves a checkpoint at the end of the current step and stops; --resume continues from it.
`--help` lists this project's options; `--help-all` adds every TRL option.
"""

from __future__ import annotations

import argparse
import signal
import sys
import warnings
from pathlib import Path

from rich.console import Console

from binoculars_rl.trl_args import EnvArguments, TrainArguments, parser_types

# TRL's GRPOConfig sets the old `gradient_checkpointing` name; transformers 5 warns about it on every run.
warnings.filterwarnings("ignore", message="`gradient_checkpointing` is deprecated", category=FutureWarning)

DEFAULT_RECIPE = Path(__file__).resolve().parent.parent / "configs" / "trl" / "grpo_qwen3_0.6b.yaml"
BATCH_SIZE_HELP = (
    "--batch-size N is short for --per_device_train_batch_size N (completions per device per micro-batch; with "
    "--gradient_accumulation_steps it must make whole groups of --num_generations)."
)


def parse(argv: list[str]) -> tuple:
    """(train_args, env_args, grpo_config, model_config) from the recipe and the command line."""
    import torch
    import yaml
    from trl import TrlParser

    if "--config" not in argv and not {"-h", "--help"} & set(argv):
        argv = ["--config", str(DEFAULT_RECIPE), *argv]
    argv = [
        "--per_device_train_batch_size" if arg == "--batch-size" else arg.replace("--batch-size=", "--per_device_train_batch_size=", 1)
        for arg in argv
    ]  # fmt: skip
    parser = TrlParser(parser_types(), epilog=BATCH_SIZE_HELP)
    parser.set_defaults(bf16=torch.cuda.is_available())  # TRL would default to bf16, which CPUs reject
    try:
        return parser.parse_args_and_config(argv)
    except yaml.YAMLError as error:
        raise ValueError(f"the --config recipe is not valid YAML: {' '.join(str(error).split())}") from None
    except ZeroDivisionError:  # GRPOConfig divides the generation batch by num_generations
        raise ValueError(
            "--num_generations, --batch-size (--per_device_train_batch_size) and --gradient_accumulation_steps "
            "must be >= 1 (num_generations >= 2: GRPO compares completions of one prompt)"
        ) from None


def print_project_help() -> None:
    """This project's options only: TRL's ~1400 lines of GRPOConfig/ModelConfig options are behind --help-all."""
    from transformers import HfArgumentParser

    parser = HfArgumentParser(
        (TrainArguments, EnvArguments),
        description=__doc__,
        epilog=BATCH_SIZE_HELP
        + " TRL's own options (--learning_rate, --num_generations, --max_steps/--max-steps, "
        "--use_peft, --resume_from_checkpoint, ...): --help-all.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.print_help()


def checkpoint_to_resume(train_args, grpo_config, output_dir: Path) -> str | None:
    from transformers.trainer_utils import get_last_checkpoint

    if not train_args.resume:
        return grpo_config.resume_from_checkpoint
    if grpo_config.resume_from_checkpoint:
        raise ValueError("give --resume or --resume_from_checkpoint PATH, not both")
    latest = get_last_checkpoint(str(output_dir)) if output_dir.is_dir() else None
    if latest is None:
        raise ValueError(
            f"--resume: no checkpoint-N in {output_dir} (same flags as the first run, or --output_dir)"
        )
    return latest


def main(argv: list[str]) -> int:
    console = Console()
    if {"-h", "--help"} & set(argv) and "--help-all" not in argv:
        print_project_help()
        return 0
    argv = ["--help" if arg == "--help-all" else arg for arg in argv]
    from binoculars_rl.report import report_table
    from binoculars_rl.trl_interrupt import SaveOnSignalCallback
    from binoculars_rl.trl_training import build_training_run, final_evaluation

    try:
        train_args, env_args, grpo_config, model_config = parse(argv)
        run = build_training_run(train_args, env_args, grpo_config, model_config)
        checkpoint = checkpoint_to_resume(train_args, grpo_config, run.output_dir)
    except (ValueError, OSError) as error:  # bad flags/recipe, missing model or data (offline hub ids)
        console.print(f"[red]error:[/] {error}")
        return 2
    console.print(f"run directory: {run.output_dir}" + (f" (resuming {checkpoint})" if checkpoint else ""))
    interrupt = SaveOnSignalCallback().install()
    run.trainer.add_callback(interrupt)
    try:
        run.trainer.train(resume_from_checkpoint=checkpoint)
    finally:
        interrupt.uninstall()
    if interrupt.received is not None:
        step = run.trainer.state.global_step
        console.print(
            f"stopped by {signal.Signals(interrupt.received).name} after step {step}; checkpoint: "
            f"{run.output_dir / f'checkpoint-{step}'}. Continue with the same command plus --resume.",
            soft_wrap=True,  # a path broken across lines cannot be copied
        )
        return 128 + interrupt.received
    run.trainer.save_model(str(run.output_dir))
    if train_args.final_eval:
        evaluation = final_evaluation(run, train_args, grpo_config)
        console.print(report_table(evaluation.report, title="held-out evaluation"))
        console.print(f"eval report: {run.output_dir / 'eval_report.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
