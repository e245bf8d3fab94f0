"""scripts/train.py on CPU with the tiny models: GRPO steps run and save, the scorer stays frozen and untouched,
the reward is the environment's, LoRA checkpoints evaluate."""

import importlib.util
import json
from pathlib import Path

import pytest
import torch
from binoculars_env.data import SAMPLE_DATA_FILE
from binoculars_env.reward import RewardConfig, score_completions
from binoculars_env.scorer_pool import get_scorer, loaded_scorer_count
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM

from binoculars_rl.trl_reward import BinocularsReward

ROOT = Path(__file__).resolve().parent.parent
TINY_RECIPE = ROOT / "configs" / "trl" / "grpo_tiny_cpu.yaml"


def load_script(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def tiny_args(tiny_pair, output_dir: Path, *extra: str) -> list[str]:
    return [
        "--config", str(TINY_RECIPE),
        "--model_name_or_path", str(tiny_pair.policy),
        "--observer_model", str(tiny_pair.observer),
        "--performer_model", str(tiny_pair.performer),
        "--data_files", str(SAMPLE_DATA_FILE),
        "--output_dir", str(output_dir),
        *extra,
    ]  # fmt: skip


def tiny_reward_config(tiny_pair) -> RewardConfig:
    """The reward settings of the tiny recipe (same scorer spec as training, so the same process-wide scorer)."""
    return RewardConfig(
        observer_model=str(tiny_pair.observer),
        performer_model=str(tiny_pair.performer),
        scorer_device="cpu",
        min_tokens=4,
        max_log_ppl=None,
        max_obfuscation=None,
        spelling_charge=0.0,
        profile_statistics=[],
        length_target_tokens=16,
    )


@pytest.fixture(scope="module")
def trained_run(tiny_pair, tmp_path_factory):
    """Two GRPO steps through the script's main(), in this process (so its scorer can be inspected)."""
    output_dir = tmp_path_factory.mktemp("run") / "tiny-run"
    args = tiny_args(
        tiny_pair, output_dir, "--max_steps", "2", "--save_steps", "2", "--sample_log_steps", "1"
    )
    assert load_script("train").main(args) == 0
    return output_dir


def test_the_documented_short_flags_set_steps_and_batch_size(tiny_pair, tmp_path):
    """`uv run scripts/train.py --max-steps 100 --batch-size 4` is the user's documented command."""
    for flags in (["--max-steps", "100", "--batch-size", "4"], ["--max-steps=100", "--batch-size=4"]):
        _, _, grpo_config, _ = load_script("train").parse(tiny_args(tiny_pair, tmp_path, *flags))
        assert (grpo_config.max_steps, grpo_config.per_device_train_batch_size) == (100, 4)
    _, _, grpo_config, _ = load_script("train").parse(["--max-steps", "100", "--batch-size", "4"])
    assert grpo_config.per_device_train_batch_size == 4  # the default recipe takes it too


def test_two_steps_save_a_checkpoint_and_the_final_model(trained_run, tiny_pair):
    assert (trained_run / "checkpoint-2" / "model.safetensors").is_file()
    assert (trained_run / "checkpoint-2" / "trainer_state.json").is_file()
    trained = load_file(trained_run / "model.safetensors")
    initial = load_file(tiny_pair.policy / "model.safetensors")
    assert trained.keys() == initial.keys()
    assert any(not torch.equal(trained[name], initial[name]) for name in initial), "the policy did not change"
    state = json.loads((trained_run / "checkpoint-2" / "trainer_state.json").read_text())
    rewards = [
        entry["rewards/binoculars/mean"]
        for entry in state["log_history"]
        if "rewards/binoculars/mean" in entry
    ]
    assert len(rewards) == 2 and all(-2.0 <= r <= 2.0 for r in rewards)


def test_samples_and_final_eval_are_written(trained_run):
    samples = [json.loads(line) for line in (trained_run / "samples.jsonl").read_text().splitlines()]
    assert {row["step"] for row in samples} == {1, 2}
    assert len(samples) == 2 * 8  # the whole generation batch of each step (2 prompts x 4 completions)
    assert all(-2.0 <= row["reward"] <= 2.0 and "binoculars_score" in row for row in samples)
    report = json.loads((trained_run / "eval_report.json").read_text())
    assert report["num_samples"] == 8  # num_eval_examples of the tiny recipe
    assert report["degeneracy"]["scores"]["count"] + report["degeneracy"]["scores"]["unscored"] == 8
    eval_rows = (trained_run / "eval_completions.jsonl").read_text().splitlines()
    assert len(eval_rows) == 8


def test_scorer_is_frozen_and_untouched_after_training(trained_run, tiny_pair):
    count = loaded_scorer_count()
    scorer = get_scorer(tiny_reward_config(tiny_pair).scorer_spec()).binoculars
    assert loaded_scorer_count() == count, "training used a different scorer than the one inspected here"
    assert torch.is_grad_enabled(), "training or scoring switched gradients off globally"
    for model, path in (
        (scorer.observer_model, tiny_pair.observer),
        (scorer.performer_model, tiny_pair.performer),
    ):
        assert not model.training
        assert all(not p.requires_grad and p.grad is None for p in model.parameters())
        on_disk = AutoModelForCausalLM.from_pretrained(path).state_dict()
        assert all(torch.equal(tensor, on_disk[name]) for name, tensor in model.state_dict().items())


def test_reward_adapter_is_the_environments_reward(tiny_pair):
    texts = [
        "The cat sat by the river and sang a song to the fish.",
        "",
        "<think>hmm</think>Tom ran home fast.",
    ]
    completions = [[{"role": "assistant", "content": text}] for text in texts]
    config = tiny_reward_config(tiny_pair)
    logged = {}
    reward = BinocularsReward(config)
    values = reward(prompts=[[]] * 3, completions=completions, log_metric=logged.__setitem__)
    assert values == [r.reward for r in score_completions(texts, config)]
    assert values[1] == -2.0  # the environment's empty-text guard
    assert logged["env/guard_failed"] == pytest.approx(1 / 3)
    assert reward.last_batch.texts == texts


def test_run_directory_name_carries_hyperparameters(tiny_pair, tmp_path):
    from trl import TrlParser

    from binoculars_rl.trl_args import parser_types
    from binoculars_rl.trl_training import configure_run

    parser = TrlParser(parser_types())
    args = tiny_args(tiny_pair, tmp_path, "--beta", "0.04", "--use_peft", "--lora_r", "8")
    args = [a for a in args if a not in ("--output_dir", str(tmp_path))] + ["--runs_dir", str(tmp_path)]
    train_args, _, grpo_config, model_config = parser.parse_args_and_config(args)
    output_dir = configure_run(train_args, grpo_config, model_config)
    assert output_dir == tmp_path / "policy_grpo_dapo_beta0.04_g4_lr0.001_bs8x1_len24_lora8_seed0"
    assert grpo_config.run_name == output_dir.name
    assert grpo_config.chat_template_kwargs == {"enable_thinking": False}


def test_lora_run_saves_an_adapter_that_eval_degeneracy_reads(tiny_pair, tmp_path):
    output_dir = tmp_path / "lora-run"
    args = tiny_args(
        tiny_pair, output_dir, "--max_steps", "1", "--use_peft", "--lora_r", "4", "--final_eval", "false"
    )
    assert load_script("train").main(args) == 0
    assert (output_dir / "adapter_config.json").is_file() and not (output_dir / "model.safetensors").exists()
    eval_args = ["--checkpoint", str(output_dir), "--data-files", str(SAMPLE_DATA_FILE), "--num-prompts", "4"]
    eval_args += ["--max-new-tokens", "12", "--no-score", "--device", "cpu"]
    assert load_script("eval_degeneracy").main(eval_args) == 0
    assert len((output_dir / "degeneracy_completions.jsonl").read_text().splitlines()) == 4
    assert json.loads((output_dir / "degeneracy_report.json").read_text())["degeneracy"]["num_samples"] == 4


def test_missing_model_is_one_clear_line_and_exit_2(tiny_pair, tmp_path, capsys):
    args = tiny_args(tiny_pair, tmp_path / "run") + ["--model_name_or_path", str(tmp_path / "no-such-model")]
    assert load_script("train").main(args) == 2
    assert capsys.readouterr().out.startswith("error:")


def test_sigint_saves_a_checkpoint_and_resume_continues_from_it(tiny_pair, tmp_path):
    """Ctrl-C mid-run leaves a checkpoint of the last finished step; --resume continues from it, not from 0."""
    import os
    import signal
    import subprocess
    import sys

    output_dir = tmp_path / "interrupted"
    # the user's documented command line, plus the tiny models and local data
    args = tiny_args(
        tiny_pair, output_dir, "--final_eval", "false", "--max-steps", "100", "--batch-size", "4"
    )
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    script = str(ROOT / "scripts" / "train.py")
    process = subprocess.Popen(
        [sys.executable, script, *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
    )
    lines = []
    for line in process.stdout:  # TRL logs every step (logging_steps 1): interrupt once training is under way
        lines.append(line)
        if "'loss'" in line:
            process.send_signal(signal.SIGINT)
            break
    output = "".join(lines) + process.communicate(timeout=300)[0]
    assert process.returncode == 128 + signal.SIGINT, output[-3000:]
    (checkpoint,) = output_dir.glob("checkpoint-*")
    saved_step = json.loads((checkpoint / "trainer_state.json").read_text())["global_step"]
    assert 1 <= saved_step < 100 and checkpoint.name == f"checkpoint-{saved_step}"
    assert f"checkpoint: {checkpoint}" in " ".join(output.split()) and "--resume" in output

    resumed = tiny_args(tiny_pair, output_dir, "--final_eval", "false", "--max-steps", str(saved_step + 1))
    resumed += ["--batch-size", "4"]
    assert load_script("train").main([*resumed, "--resume", "--save_steps", "1"]) == 0
    state = json.loads((output_dir / f"checkpoint-{saved_step + 1}" / "trainer_state.json").read_text())
    steps = [entry["step"] for entry in state["log_history"] if "loss" in entry]
    assert steps == list(range(1, saved_step + 2))  # the first run's steps, then exactly one more


def test_resume_without_a_checkpoint_is_a_clear_error(tiny_pair, tmp_path, capsys):
    args = tiny_args(tiny_pair, tmp_path / "fresh", "--max-steps", "1", "--resume")
    assert load_script("train").main(args) == 2
    assert "--resume: no checkpoint-N in" in " ".join(capsys.readouterr().out.split())


def test_bad_settings_exit_2_with_one_line(tiny_pair, tmp_path, capsys):
    bad_recipe = tmp_path / "bad.yaml"
    bad_recipe.write_text("learning_rate: [1e-5\nmax_steps: 3\n")
    recipe_args = tiny_args(tiny_pair, tmp_path / "run")
    assert recipe_args[:2] == ["--config", str(TINY_RECIPE)]
    for args, message in (
        ([*recipe_args, "--num_generations", "0"], "--num_generations"),
        (["--config", str(bad_recipe), *recipe_args[2:]], "not valid YAML"),
    ):
        assert load_script("train").main(args) == 2
        out = capsys.readouterr().out.strip()
        assert out.startswith("error:") and message in out and "Traceback" not in out


def test_help_lists_the_projects_options_and_help_all_adds_trls(capsys):
    train = load_script("train")
    assert train.main(["--help"]) == 0
    short = capsys.readouterr().out
    for flag in ("--batch-size", "--resume", "--observer_model", "--max_log_ppl", "--help-all"):
        assert flag in short, flag
    assert "--adam_beta1" not in short  # one of TRL's ~300 options
    with pytest.raises(SystemExit) as exit_info:
        train.main(["--help-all"])
    assert exit_info.value.code == 0
    assert "--adam_beta1" in capsys.readouterr().out


@pytest.mark.parametrize(("given", "expected"), [("auto", "auto"), ("6.5", 6.5), (5.0, 5.0), (None, None)])
def test_the_fluency_ceiling_takes_auto_a_number_or_none_from_flags_and_recipes(given, expected):
    from transformers import HfArgumentParser

    from binoculars_rl.trl_args import EnvArguments, reward_config

    if isinstance(given, str):  # a command-line flag: a string the environment's model parses
        [env_args] = HfArgumentParser(EnvArguments).parse_args_into_dataclasses(["--max_log_ppl", given])
    else:  # a YAML recipe: the value as YAML typed it
        env_args = EnvArguments(max_log_ppl=given)
    assert reward_config(env_args).max_log_ppl == expected
