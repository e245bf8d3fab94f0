"""The prime-rl configs under configs/ and their launcher scripts/tmux.sh.

Each config directory is one (prime-rl version, GPU layout) pair. These tests check what prime-rl's own config
classes cannot: that every env block names `binoculars-env` and only passes arguments the real environment package
accepts, that the single launch (rl.toml) and the three-process files describe the same run, that the scorer sits
where the layout says, and that eval serves the validation prompts. (Validation against prime-rl's config classes
themselves needs each prime-rl version's own Python 3.12 environment; see the README section "Training with
prime-rl".)
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import verifiers.v1 as vf
from binoculars_env.data import DataConfig
from binoculars_env.reward import RewardConfig

REPO = Path(__file__).resolve().parents[1]
CONFIGS = REPO / "configs"
TMUX = REPO / "scripts" / "tmux.sh"
ENV_ID = "binoculars-env"
FILES = ("rl", "infer", "orch", "train", "env-train", "env-eval")

# The layouts the README promises, written out independently of the TOMLs:
# (version, GPUs, inference GPUs, trainer GPUs, train-scorer cuda index, eval-scorer cuda index).
LAYOUTS = {
    "binoculars": ("v0.8.0", 2, 1, 1, 0, 0),
    "binoculars-4gpu": ("v0.8.0", 4, 2, 1, 3, 3),
    "binoculars-8gpu": ("v0.8.0", 8, 4, 2, 6, 7),
    "binoculars-v1": ("main", 2, 1, 1, 0, 0),
    "binoculars-v1-4gpu": ("main", 4, 2, 1, 3, 3),
    "binoculars-v1-8gpu": ("main", 8, 4, 2, 6, 7),
}
VERSION_MARKERS = {"v0.8.0": "prime-rl v0.8.0", "main": "prime-rl main (commit 559b447"}
# The env arguments the design fixes (shared/DESIGN.md, "Environment").
CONTRACT_ARGS = {
    "observer_model",
    "performer_model",
    "threshold",
    "calibration_file",
    "dataset_name",
    "data_files",
    "num_train_examples",
    "num_eval_examples",
    "seed",
    "scorer_device",
}


def load(dirname: str, name: str) -> dict:
    return tomllib.loads((CONFIGS / dirname / f"{name}.toml").read_text())


def sources(doc: dict, split: str) -> list[dict]:
    """The `[[train.source]]` / `[[eval.source]]` tables of an orch.toml or (under `orchestrator`) an rl.toml."""
    return doc.get("orchestrator", doc).get(split, {}).get("source", [])


def env_part(table: dict) -> dict:
    """What a source or env-server config hands to the environment: the legacy block or the v1 env block."""
    return {"legacy": table["legacy"]} if "legacy" in table else {"env": table["env"]}


def scorer_device(part: dict) -> str:
    if "legacy" in part:
        return part["legacy"]["args"]["scorer_device"]
    return part["env"]["taskset"]["task"]["scorer_device"]


def cuda_index(device: str) -> int:
    assert device.startswith("cuda:"), f"scorer_device must be explicit (cuda:N), got {device!r}"
    return int(device.removeprefix("cuda:"))


def resolved_env(env_block: dict):
    """Validate a v1 `env` block exactly as prime-rl main does (`vf.resolve_env_field`: narrowed by taskset id)."""
    return vf.resolve_env_field({"env": json.loads(json.dumps(env_block))})["env"]


def own_fields(config_cls: type, base: type) -> set[str]:
    return set(config_cls.model_fields) - set(base.model_fields)


def legacy_args_as_env_block(args: dict) -> dict:
    """Map classic `load_environment` arguments onto the v1 taskset config (the design gives both the same names):
    data settings become taskset fields, scorer/reward settings task fields. Raises on a name neither knows."""
    default = resolved_env({"taskset": {"id": ENV_ID}})
    data_fields = own_fields(type(default.taskset), vf.TasksetConfig) - {"split"}  # `split` is v1's selector
    reward_fields = own_fields(type(default.taskset.task), vf.TaskConfig)
    unknown = set(args) - data_fields - reward_fields
    if unknown:
        raise ValueError(f"binoculars-env does not accept {sorted(unknown)}")
    taskset = {"id": ENV_ID, **{k: v for k, v in args.items() if k in data_fields}}
    taskset["task"] = {k: v for k, v in args.items() if k in reward_fields}
    return {"taskset": taskset}


def check_env_part(part: dict):
    """The environment the part describes, validated by the real env package; fails on any unknown argument."""
    if "legacy" in part:
        assert part["legacy"]["id"] == ENV_ID
        return resolved_env(legacy_args_as_env_block(part["legacy"]["args"]))
    assert part["env"]["taskset"]["id"] == ENV_ID
    return resolved_env(part["env"])


def all_env_parts(dirname: str):
    for name in ("rl", "orch"):
        doc = load(dirname, name)
        for split in ("train", "eval"):
            for source in sources(doc, split):
                yield f"{name}.toml {split} source", env_part(source)
    for name in ("env-train", "env-eval"):
        yield f"{name}.toml", env_part(load(dirname, name))


def test_the_issue_names_exist_and_every_toml_parses():
    assert sorted(p.name for p in CONFIGS.glob("binoculars*") if p.is_dir()) == sorted(LAYOUTS)
    assert {"infer", "orch", "train"} <= {
        p.stem for p in (CONFIGS / "binoculars").glob("*.toml")
    }  # the issue's
    for dirname in LAYOUTS:
        assert sorted(p.stem for p in (CONFIGS / dirname).glob("*.toml")) == sorted(FILES)
        for name in FILES:
            assert isinstance(load(dirname, name), dict)


@pytest.mark.parametrize("dirname", sorted(LAYOUTS))
def test_every_file_names_its_prime_rl_version_and_stack(dirname):
    version = LAYOUTS[dirname][0]
    for name in FILES:
        text = (CONFIGS / dirname / f"{name}.toml").read_text()
        header = text.split("\n\n", 1)[0]
        assert VERSION_MARKERS[version] in header, f"{dirname}/{name}.toml"
    for where, part in all_env_parts(dirname):
        # v0.8.0 runs the classic load_environment() through `legacy`; main only runs v1 tasksets.
        assert ("legacy" in part) == (version == "v0.8.0"), f"{dirname} {where}"


@pytest.mark.parametrize("dirname", sorted(LAYOUTS))
def test_env_blocks_name_binoculars_env_and_pass_only_accepted_arguments(dirname):
    for where, part in all_env_parts(dirname):
        env = check_env_part(part)
        assert env.taskset.id == ENV_ID, f"{dirname} {where}"
        assert type(env.taskset).__module__.startswith("binoculars_env"), f"{dirname} {where}"


def test_unknown_env_arguments_are_rejected():
    legacy = load("binoculars", "env-train")["legacy"]
    typo = {**legacy["args"], "min_token": 16}
    with pytest.raises(ValueError, match="min_token"):
        check_env_part({"legacy": {**legacy, "args": typo}})
    with pytest.raises(ValueError, match="split"):  # v1's selector is no classic argument
        check_env_part({"legacy": {**legacy, "args": {**legacy["args"], "split": "eval"}}})
    env = load("binoculars-v1", "env-train")["env"]
    with pytest.raises(ValueError, match="min_token"):
        resolved_env(
            {**env, "taskset": {**env["taskset"], "task": {**env["taskset"]["task"], "min_token": 16}}}
        )
    with pytest.raises(ValueError, match="observer"):  # a reward setting at the taskset level is misplaced
        resolved_env({**env, "taskset": {**env["taskset"], "observer_model": "x"}})


def test_classic_arguments_are_the_config_fields_and_carry_the_design_arguments():
    named = set(DataConfig.model_fields) | set(RewardConfig.model_fields)
    assert named >= CONTRACT_ARGS
    # Every argument is a v1 config field of the same name: the two stacks share one vocabulary.
    block = legacy_args_as_env_block({name: None for name in named} | {"observer_model": "o"})
    assert set(block["taskset"]) | set(block["taskset"]["task"]) >= named


@pytest.mark.parametrize("dirname", sorted(LAYOUTS))
def test_single_launch_and_three_process_files_run_the_same_envs(dirname):
    rl, orch = load(dirname, "rl"), load(dirname, "orch")
    for split, server in (("train", "env-train"), ("eval", "env-eval")):
        (rl_source,), (orch_source,) = sources(rl, split), sources(orch, split)
        assert env_part(rl_source) == env_part(orch_source)
        served = env_part(load(dirname, server))
        if "legacy" in served:  # the env server also gets what `uv run rl` adds to a legacy source
            assert served["legacy"].pop("extra_env_kwargs") == {"max_seq_len": rl["seq_len"]}
        assert served == env_part(orch_source), (
            f"{dirname}: {server}.toml differs from orch.toml's {split} source"
        )
        for source in (rl_source, orch_source):
            assert source["serve"]["pool"] == {"type": "static", "num_workers": 1}
        assert load(dirname, server)["serve"]["pool"] == {"type": "static", "num_workers": 1}
    ports = [load(dirname, name)["serve"]["address"] for name in ("env-train", "env-eval")]
    assert ports == ["tcp://127.0.0.1:5000", "tcp://127.0.0.1:5001"]  # orchestrator: base port 5000 + index


@pytest.mark.parametrize("dirname", sorted(LAYOUTS))
def test_scorer_placement_matches_the_layout(dirname):
    version, gpus, n_infer, n_train, train_scorer, eval_scorer = LAYOUTS[dirname]
    rl, infer = load(dirname, "rl"), load(dirname, "infer")
    assert rl["deployment"] == {"gpus_per_node": gpus, "num_infer_gpus": n_infer, "num_train_gpus": n_train}
    assert load(dirname, "orch")["num_train_workers"] == n_train
    if version == "v0.8.0":
        utilization = [rl["inference"]["gpu_memory_utilization"], infer["gpu_memory_utilization"]]
        assert infer["parallel"]["dp"] == n_infer
    else:
        utilization = [
            rl["inference"]["vllm"]["gpu_memory_utilization"],
            infer["vllm"]["gpu_memory_utilization"],
        ]
        assert infer["vllm"]["data_parallel_size"] == n_infer
    for where, part in all_env_parts(dirname):
        expected = eval_scorer if "eval" in where else train_scorer
        assert cuda_index(scorer_device(part)) == expected, f"{dirname} {where}"
    if gpus == 2:  # the scorers share the inference GPU, so vLLM must leave room
        assert train_scorer == eval_scorer == 0
        assert all(u <= 0.6 for u in utilization)
    else:  # the scorers get GPUs no inference or trainer process uses
        assert min(train_scorer, eval_scorer) >= n_infer + n_train
        assert max(train_scorer, eval_scorer) < gpus


def grpo_settings(dirname: str) -> dict:
    rl = load(dirname, "rl")
    orch = rl["orchestrator"]
    (train_source,) = sources(rl, "train")
    return {
        "model": rl["model"]["name"],
        "max_steps": rl["max_steps"],
        "seq_len": rl["seq_len"],
        "batch_size": orch["batch_size"],
        "group_size": orch["group_size"],
        "renderer": orch["renderer"],
        "train_sampling": orch["train"]["sampling"],
        "eval": {k: v for k, v in orch["eval"].items() if k != "source"},
        "optim": rl["trainer"]["optim"],
        "loss": rl["trainer"]["loss"],
        "ckpt": rl["ckpt"],
        "scorer_pair": {k: v for k, v in check_env_part(env_part(train_source)).taskset.task if "model" in k},
    }


def test_layouts_differ_only_in_placement():
    reference = grpo_settings("binoculars")
    for dirname in LAYOUTS:
        assert grpo_settings(dirname) == reference, dirname
    assert reference["model"] == "Qwen/Qwen3-0.6B"
    assert reference["renderer"] == {"name": "qwen3", "enable_thinking": False}
    assert reference["eval"]["sampling"]["extra_body"]["chat_template_kwargs"] == {"enable_thinking": False}
    assert reference["batch_size"] % reference["group_size"] == 0


@pytest.mark.parametrize("dirname", sorted(LAYOUTS))
def test_three_process_files_agree_with_the_single_launch(dirname):
    version = LAYOUTS[dirname][0]
    rl, orch, train = load(dirname, "rl"), load(dirname, "orch"), load(dirname, "train")
    assert orch["max_steps"] == train["max_steps"] == rl["max_steps"]
    assert orch["seq_len"] == train["model"]["seq_len"] == rl["seq_len"]
    assert orch["model"]["name"] == train["model"]["name"] == rl["model"]["name"]
    assert (orch["batch_size"], orch["group_size"]) == (
        rl["orchestrator"]["batch_size"],
        rl["orchestrator"]["group_size"],
    )
    assert orch["renderer"] == rl["orchestrator"]["renderer"]
    assert train["optim"] == rl["trainer"]["optim"] and train["loss"] == rl["trainer"]["loss"]
    run_dir = Path("outputs") / dirname
    if version == "v0.8.0":  # v0.8.0's orchestrator writes into <trainer output_dir>/run_default
        assert Path(rl["output_dir"]) == Path(train["output_dir"]) == run_dir
        assert Path(orch["output_dir"]) == run_dir / "run_default"
    else:  # main: output_dir / run.name, the same directory for both
        assert Path(rl["output_dir"]) / rl["run"]["name"] == run_dir
        assert Path(orch["output_dir"]) == Path(train["output_dir"]) == run_dir


def write_stories(path: Path, tag: str, count: int) -> Path:
    story = "{tag} story {i}. The little fox found a red ball in the tall grass. She rolled it to her friend the owl, who laughed and rolled it back down the hill."
    path.write_text("".join(json.dumps({"text": story.format(tag=tag, i=i)}) + "\n" for i in range(count)))
    return path


@pytest.mark.parametrize("dirname", ["binoculars", "binoculars-v1"])
def test_eval_source_serves_validation_prompts(dirname, tmp_path):
    """With local train/validation files in place of the hub dataset, the eval source's prompts all come from the
    validation file and the train source's from the train file. prime-rl v0.8.0's legacy bridge serves an env's
    *train* split (`get_dataset()`), so its eval source points the train split at validation; main's v1
    taskset selects with `split`."""
    data_files = {
        "train": str(write_stories(tmp_path / "train.jsonl", "TRAIN", 6)),
        "validation": str(write_stories(tmp_path / "validation.jsonl", "VALIDATION", 6)),
    }
    orch = load(dirname, "orch")
    for split, tag in (("train", "TRAIN"), ("eval", "VALIDATION")):
        (source,) = sources(orch, split)
        part = env_part(source)
        if "legacy" in part:
            args = {k: v for k, v in part["legacy"]["args"].items() if k != "dataset_name"}
            block = legacy_args_as_env_block({**args, "data_files": data_files})
            block["taskset"]["split"] = "train"  # what the v0.8.0 bridge serves, train and eval source alike
        else:
            block = {**part["env"], "taskset": {**part["env"]["taskset"], "data_files": data_files}}
            del block["taskset"]["dataset_name"]
        tasks = list(vf.load_taskset(resolved_env(block).taskset))
        assert len(tasks) == 6
        assert all(task.data.beginning.startswith(f"{tag} story") for task in tasks), split


def run_tmux(*args: str, prime_rl: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHON": sys.executable}
    return subprocess.run(
        ["bash", str(TMUX), "--dry-run", "--prime-rl", str(prime_rl), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )


def panes(stdout: str) -> dict[str, str]:
    lines = [line for line in stdout.splitlines() if not line.startswith("#")]
    return dict(line.split(": ", 1) for line in lines)


def visible(command: str) -> str:
    return command.split("CUDA_VISIBLE_DEVICES=", 1)[1].split(" ", 1)[0]


@pytest.mark.parametrize("dirname", sorted(LAYOUTS))
def test_tmux_dry_run_prints_one_command_per_process(dirname, tmp_path):
    _, gpus, n_infer, n_train, train_scorer, eval_scorer = LAYOUTS[dirname]
    ids = [str(10 + 3 * i) for i in range(gpus)]  # physical ids unlike the cuda indices, to catch mix-ups
    result = run_tmux(f"configs/{dirname}", ",".join(ids), prime_rl=tmp_path)
    assert result.returncode == 0, result.stderr
    commands = panes(result.stdout)
    assert list(commands) == ["inference", "env-train", "env-eval", "orchestrator", "trainer"]
    assert visible(commands["inference"]) == ",".join(ids[:n_infer])
    assert visible(commands["trainer"]) == ",".join(ids[n_infer : n_infer + n_train])
    for name in ("env-train", "env-eval", "orchestrator"):
        assert visible(commands[name]) == ",".join(
            ids
        )  # as under `uv run rl`: scorer_device indexes this list
    assert f"eval scorer GPU {ids[eval_scorer]}" in result.stdout
    assert f"train scorer GPU {ids[train_scorer]}" in result.stdout
    entry = {
        "inference": "uv run inference @ ",
        "env-train": "uv run env-server @ ",
        "env-eval": "uv run env-server @ ",
        "orchestrator": "uv run orchestrator @ ",
        "trainer": f"uv run torchrun --standalone --nproc-per-node {n_train} -m prime_rl.trainer.rl.train @ ",
    }
    config = {"inference": "infer", "env-train": "env-train", "env-eval": "env-eval", "orchestrator": "orch"}
    for name, command in commands.items():
        assert command.startswith(f"cd {tmp_path} && ")
        assert entry[name] + str(CONFIGS / dirname / f"{config.get(name, 'train')}.toml") in command
        assert f"| tee outputs/{dirname}/logs/" in command


def test_tmux_rejects_a_gpu_list_that_does_not_fit_the_layout(tmp_path):
    result = run_tmux("configs/binoculars-4gpu", "0,1", prime_rl=tmp_path)
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.strip() == (
        "error: binoculars-4gpu uses 4 GPUs (2 inference, 1 trainer, scorers on cuda:3 and cuda:3), got 2: 0,1"
    )
    for bad in (["configs/missing", "0,1"], ["configs/binoculars", "0;1"], ["configs/binoculars"]):
        result = run_tmux(*bad, prime_rl=tmp_path)
        assert result.returncode != 0 and result.stdout == "", bad
        assert result.stderr.strip().splitlines()[-1].startswith("error: "), bad
