"""The prime-rl configs under configs/ and the scripts that derive and launch from them.

Each config directory is one (prime-rl version, GPU layout) pair holding one hand-written rl.toml. prime-rl derives
the per-process configs from it (`uv run rl @ rl.toml --dry-run`); configs/binoculars also keeps that output,
committed by scripts/derive_configs.sh --in-place, for the three-process workflow. These tests run without prime-rl
and check what its config classes cannot: that every env block names `binoculars-env` and only passes arguments the
real environment package accepts, that the scorer sits where the layout says, that eval serves the validation
prompts, and that configs/binoculars' generated files were generated from the current rl.toml and agree with it.
Validation by prime-rl itself is the opt-in scripts/validate_configs_with_prime_rl.sh (see docs/primerl.md).
The scripts' tests run them against a stub prime-rl (a fake `uv` on PATH, see `stub_prime_rl`), not prime-rl.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import verifiers.v1 as vf
from binoculars_env.classic import load_environment
from binoculars_env.data import DataConfig
from binoculars_env.reward import RewardConfig

REPO = Path(__file__).resolve().parents[1]
CONFIGS = REPO / "configs"
TMUX = REPO / "scripts" / "tmux.sh"
DERIVE = REPO / "scripts" / "derive_configs.sh"
ENV_ID = "binoculars-env"
# prime-rl's dry-run output that configs/binoculars keeps, under the names scripts/derive_configs.sh gives it.
GENERATED = ("infer", "orch", "train", "env-train", "env-eval")

# The layouts the docs promise, written out independently of the TOMLs:
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


def load(dirname: str, name: str = "rl") -> dict:
    return tomllib.loads((CONFIGS / dirname / f"{name}.toml").read_text())


def sources(doc: dict, split: str) -> list[dict]:
    """The `[[train.source]]` / `[[eval.source]]` tables of an orch.toml or (under `orchestrator`) an rl.toml."""
    return doc.get("orchestrator", doc).get(split, {}).get("source", [])


def env_part(table: dict) -> dict:
    """What a source or env-server config hands to the environment: the legacy block or the v1 env block.
    prime-rl's generated files also carry a default `env` block beside `legacy`; the legacy block is what runs."""
    return {"legacy": table["legacy"]} if table.get("legacy") else {"env": table["env"]}


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
    data_fields = own_fields(
        type(default.taskset), vf.TasksetConfig
    )  # incl. `split`, an argument of both stacks
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
    """Every env block of a layout: rl.toml's sources, plus (configs/binoculars) the generated orch/env-server files."""
    docs = {"rl": load(dirname)} | (
        {name: load(dirname, name) for name in GENERATED} if dirname == "binoculars" else {}
    )
    for name in ("rl", "orch"):
        for split in ("train", "eval") if name in docs else ():
            for source in sources(docs[name], split):
                yield f"{name}.toml {split} source", env_part(source)
    for name in ("env-train", "env-eval"):
        if name in docs:
            yield f"{name}.toml", env_part(docs[name])


def test_configs_hold_one_rl_toml_per_layout_and_binoculars_keeps_the_generated_files():
    assert sorted(p.name for p in CONFIGS.glob("binoculars*") if p.is_dir()) == sorted(LAYOUTS)
    outside = {p.relative_to(CONFIGS).as_posix() for p in CONFIGS.rglob("*") if p.is_file()}
    outside -= {f"binoculars/{name}.toml" for name in GENERATED}
    assert all(
        name.endswith("/rl.toml") or (name.startswith("trl/") and name.endswith(".yaml")) for name in outside
    )
    for dirname in LAYOUTS:
        assert isinstance(load(dirname), dict)
    assert sorted(p.stem for p in (CONFIGS / "binoculars").glob("*.toml")) == sorted(("rl", *GENERATED))


@pytest.mark.parametrize("dirname", sorted(LAYOUTS))
def test_every_rl_toml_names_its_prime_rl_version_stack_and_gpu_map(dirname):
    version, gpus = LAYOUTS[dirname][:2]
    header = (CONFIGS / dirname / "rl.toml").read_text().split("\n\n", 1)[0]
    assert VERSION_MARKERS[version] in header
    assert f"· {gpus} GPUs" in header and "# GPU layout" in header and "cuda:0" in header
    ids = ",".join(map(str, range(gpus)))
    assert (
        f"CUDA_VISIBLE_DEVICES={ids} uv run rl @ " in header
        and f"scripts/tmux.sh configs/{dirname} {ids}" in header
    )
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
    legacy = sources(load("binoculars"), "train")[0]["legacy"]
    typo = {**legacy["args"], "min_token": 16}
    with pytest.raises(ValueError, match="min_token"):
        check_env_part({"legacy": {**legacy, "args": typo}})
    with pytest.raises(ValueError, match="split"):
        check_env_part({"legacy": {**legacy, "args": {**legacy["args"], "split": "validation"}}})
    with pytest.raises(ValueError, match="split"):  # the classic env checks it itself too
        load_environment(split="validation")
    env = sources(load("binoculars-v1"), "train")[0]["env"]
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
def test_scorer_placement_matches_the_layout(dirname):
    version, gpus, n_infer, n_train, train_scorer, eval_scorer = LAYOUTS[dirname]
    rl = load(dirname)
    assert rl["deployment"] == {"gpus_per_node": gpus, "num_infer_gpus": n_infer, "num_train_gpus": n_train}
    inference = rl["inference"] if version == "v0.8.0" else rl["inference"]["vllm"]
    for split in ("train", "eval"):
        for source in sources(rl, split):
            assert source["serve"]["pool"] == {"type": "static", "num_workers": 1}  # one worker = one scorer
    for where, part in all_env_parts(dirname):
        expected = eval_scorer if "eval" in where else train_scorer
        assert cuda_index(scorer_device(part)) == expected, f"{dirname} {where}"
    if gpus == 2:  # the scorers share the inference GPU, so vLLM must leave room
        assert train_scorer == eval_scorer == 0
        assert inference["gpu_memory_utilization"] <= 0.6
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
        # thinking is switched off per version (see test_eval_requests_switch_thinking_off_at_the_top_level_…)
        "eval": {k: v for k, v in orch["eval"].items() if k != "source"}
        | {"sampling": {k: v for k, v in orch["eval"]["sampling"].items() if k != "extra_body"}},
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
    assert reference["batch_size"] % reference["group_size"] == 0


@pytest.mark.parametrize("dirname", sorted(LAYOUTS))
def test_eval_requests_switch_thinking_off_at_the_top_level_of_the_request(dirname):
    """Qwen3 thinks unless a chat request carries `chat_template_kwargs = {enable_thinking = false}` at its top
    level. v0.8.0's eval goes through verifiers' classic OpenAI client, which sends `extra_body`'s keys at the top
    level. prime-rl main's (verifiers a60a606's chat dialect, `apply_overrides`) copies the eval sampling dict into
    the request as it is, so `extra_body` would arrive as a literal key that vLLM ignores; the eval source's agent
    sampling is merged into that dict key by key (verifiers `Env._episode_agents`), so its `chat_template_kwargs`
    arrives at the top level. The real request is checked by scripts/check_primerl.sh --version main."""
    version = LAYOUTS[dirname][0]
    orchestrator = load(dirname)["orchestrator"]
    off = {"enable_thinking": False}
    for source in sources(orchestrator, "eval"):
        if version == "v0.8.0":
            assert orchestrator["eval"]["sampling"]["extra_body"]["chat_template_kwargs"] == off
        else:
            assert (
                "extra_body" not in orchestrator["eval"]["sampling"]
            )  # it would reach vLLM as a literal key
            # prime-rl writes the agent's unset sampling fields out as null, and nulls replace the eval's own
            # values in that merge: the agent sampling repeats the eval sampling's temperature and token cap
            sampling = orchestrator["eval"]["sampling"]
            agent = resolved_env(source["env"]).agent
            assert agent.sampling.model_dump(exclude_none=True) == {
                "temperature": sampling["temperature"],
                "max_tokens": sampling["max_completion_tokens"],
                "chat_template_kwargs": off,
            }
    for source in sources(orchestrator, "train"):  # training renders prompts itself: thinking off there
        assert orchestrator["renderer"]["enable_thinking"] is False
        assert "sampling" not in source.get("env", {}).get("agent", {})


def missing(expected, actual, path: str = "") -> list[str]:
    """Where `actual` lacks a value `expected` sets (tables compared key by key, arrays item by item)."""
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            return [path]
        return [m for k, v in expected.items() for m in missing(v, actual.get(k, "<absent>"), f"{path}.{k}")]
    if isinstance(expected, list):
        if not isinstance(actual, list) or len(actual) != len(expected):
            return [path]
        return [
            m
            for i, (e, a) in enumerate(zip(expected, actual, strict=True))
            for m in missing(e, a, f"{path}[{i}]")
        ]
    return [] if expected == actual else [f"{path}: {expected!r} != {actual!r}"]


def test_generated_files_come_from_the_current_rl_toml():
    """configs/binoculars' per-process files name the rl.toml they were derived from by its sha256: edit rl.toml and
    this fails until `scripts/derive_configs.sh --in-place` has rerun prime-rl's dry run."""
    digest = hashlib.sha256((CONFIGS / "binoculars" / "rl.toml").read_bytes()).hexdigest()
    for name in GENERATED:
        header = (CONFIGS / "binoculars" / f"{name}.toml").read_text().split("\n\n", 1)[0]
        assert header.startswith("# GENERATED from configs/binoculars/rl.toml by prime-rl v0.8.0"), name
        assert "scripts/derive_configs.sh --in-place configs/binoculars" in header, name
        assert f"# rl.toml sha256: {digest}" in header, (
            f"{name}.toml is stale: run scripts/derive_configs.sh --in-place"
        )


def test_generated_files_agree_with_the_single_launch():
    """Every value rl.toml sets reaches the process that uses it (prime-rl fills in the rest with its defaults)."""
    rl = load("binoculars")
    infer, orch, train, env_train, env_eval = (load("binoculars", name) for name in GENERATED)
    assert missing(rl["inference"], infer) == []
    assert missing(rl["orchestrator"], orch) == []
    assert missing(rl["trainer"], train) == []
    assert orch["max_steps"] == train["max_steps"] == rl["max_steps"]
    assert orch["seq_len"] == train["model"]["seq_len"] == rl["seq_len"] == infer["model"]["max_model_len"]
    assert orch["model"]["name"] == train["model"]["name"] == infer["model"]["name"] == rl["model"]["name"]
    assert missing(rl["ckpt"], orch["ckpt"]) == missing(rl["ckpt"], train["ckpt"]) == []
    assert (infer["parallel"]["dp"], orch["num_train_workers"]) == (1, 1)  # = [deployment]
    # v0.8.0's orchestrator writes into <trainer output_dir>/run_default
    assert Path(rl["output_dir"]) == Path(train["output_dir"]) == Path("outputs/binoculars")
    assert Path(orch["output_dir"]) == Path("outputs/binoculars/run_default")
    for split, server, port in (("train", env_train, 5000), ("eval", env_eval, 5001)):
        (source,) = sources(orch, split)
        # the env server runs what the orchestrator's source names, plus what `rl` adds to a legacy source
        assert server["legacy"] == source["legacy"]
        # prime-rl caps train sources at seq_len (OrchestratorConfig.resolve_env_config); rl.toml caps eval alike
        assert server["legacy"]["extra_env_kwargs"] == {"max_seq_len": rl["seq_len"]}
        assert server["serve"] == {"address": f"tcp://127.0.0.1:{port}", "pool": source["serve"]["pool"]}
        assert orch["env_server_base_port"] + ("train", "eval").index(split) == port


@pytest.mark.parametrize("dirname", [d for d, layout in LAYOUTS.items() if layout[0] == "v0.8.0"])
def test_v080_env_servers_cap_sequences_at_the_trainers_seq_len(dirname):
    """prime-rl v0.8.0 adds `max_seq_len = seq_len` to the legacy kwargs of train sources only; an eval source
    without it runs uncapped, unlike the trainer. Every v0.8.0 eval source sets it, and configs/binoculars' derived
    env-server files agree with its trainer file."""
    rl = load(dirname)
    for source in sources(rl, "eval"):
        assert source["legacy"]["extra_env_kwargs"] == {"max_seq_len": rl["seq_len"]}
    for service in sorted((CONFIGS / dirname).glob("*/rl.toml")):
        variant = tomllib.loads(service.read_text())
        for source in sources(variant, "eval"):
            assert source["legacy"]["extra_env_kwargs"] == {"max_seq_len": variant["seq_len"]}, service
    if dirname == "binoculars":
        trainer = load(dirname, "train")["model"]["seq_len"]
        for name in ("env-train", "env-eval"):
            assert load(dirname, name)["legacy"]["extra_env_kwargs"]["max_seq_len"] == trainer, name


def write_stories(path: Path, tag: str, count: int) -> Path:
    story = "{tag} story {i}. The little fox found a red ball in the tall grass. She rolled it to her friend the owl, who laughed and rolled it back down the hill."
    path.write_text("".join(json.dumps({"text": story.format(tag=tag, i=i)}) + "\n" for i in range(count)))
    return path


def served_by_legacy_bridge(env) -> list[str]:
    """The story beginnings prime-rl v0.8.0's env server serves for a classic env: verifiers d30a3f48
    (v1/legacy.py, LegacyEnvServer.__init__) serves `get_dataset()` and, on a ValueError, `get_eval_dataset()`."""
    try:
        rows = env.get_dataset()
    except ValueError:
        rows = env.get_eval_dataset()
    return [row["info"]["story_beginning"] for row in rows]


def served_prompts(part: dict, data_files, counts: dict) -> list[str]:
    """The story beginnings a source's env server serves with `data_files` in place of the hub dataset."""
    if "legacy" in part:
        args = {k: v for k, v in part["legacy"]["args"].items() if k != "dataset_name"}
        return served_by_legacy_bridge(load_environment(**{**args, **counts, "data_files": data_files}))
    taskset = {k: v for k, v in part["env"]["taskset"].items() if k != "dataset_name"}
    block = {**part["env"], "taskset": {**taskset, **counts, "data_files": data_files}}
    return [task.data.beginning for task in vf.load_taskset(resolved_env(block).taskset)]


@pytest.mark.parametrize("form", ["mapping", "single file"])
@pytest.mark.parametrize("dirname", sorted(LAYOUTS))
def test_sources_serve_their_split_with_either_form_of_local_data(dirname, form, tmp_path):
    """`data_files` as a {train, validation} mapping: the eval source serves only validation stories, the train
    source only train stories. As a single file: eval serves a held-out slice of num_eval_examples stories and
    training never sees them. Both through the env server of the layout's prime-rl version (v0.8.0: the legacy
    bridge's dataset rule; main: the v1 taskset)."""
    if form == "mapping":
        data_files = {
            "train": str(write_stories(tmp_path / "train.jsonl", "TRAIN", 8)),
            "validation": str(write_stories(tmp_path / "validation.jsonl", "VALIDATION", 8)),
        }
    else:
        data_files = str(write_stories(tmp_path / "stories.jsonl", "STORY", 12))
    rl = load(dirname)
    ((train_source,), (eval_source,)) = sources(rl, "train"), sources(rl, "eval")
    # one file: training skips exactly the stories eval holds out only if both sources cut the same slice
    train_data, eval_data = (check_env_part(env_part(s)).taskset for s in (train_source, eval_source))
    assert (train_data.num_eval_examples, train_data.seed) == (eval_data.num_eval_examples, eval_data.seed)
    counts = {"num_train_examples": 6, "num_eval_examples": 4}
    train = served_prompts(env_part(train_source), data_files, counts)
    evaluation = served_prompts(env_part(eval_source), data_files, counts)
    assert (len(train), len(evaluation)) == (6, 4)
    if form == "mapping":
        assert all(p.startswith("TRAIN story") for p in train)
        assert all(p.startswith("VALIDATION story") for p in evaluation)
    else:
        assert not set(train) & set(evaluation)
        assert len(set(train)) == 6 and len(set(evaluation)) == 4


# A stand-in for prime-rl's `uv run rl @ RL_TOML --dry-run`, built from its sources (v0.8.0 and 559b447,
# src/prime_rl/entrypoints/rl.py: write_subconfigs, rl_local): the run dir is output_dir (v0.8.0) or
# output_dir/run.name (main); it holds configs/{inference,orchestrator,trainer}.EXT and envs/{train,eval}/<source>.EXT
# (EXT toml on v0.8.0, json on main; here an rl.toml with [run] stands for main) and the launcher logs
# "Wrote subconfigs to <dir>" in colour. The stub writes each file with rl.toml's matching section only, not
# prime-rl's resolved configs, and validates nothing; it records its arguments and directory in <stub prime-rl>/uv-calls.txt.
STUB_UV = """#!{python}
import json, sys, tomllib
from pathlib import Path

args = sys.argv[1:]
with open({log!r}, "a") as f:
    f.write(json.dumps({{"cwd": str(Path.cwd()), "args": args}}) + "\\n")
if args[:2] == ["run", "--project"]:
    args = ["run", *args[3:]]
assert args[:3] == ["run", "rl", "@"] and "--dry-run" in args, args
rl = tomllib.loads(Path(args[3]).read_text())
main = "run" in rl
run_dir = Path(rl.get("output_dir", "outputs")) / (rl["run"]["name"] if main else "")
configs = run_dir / "configs"
ext = "json" if main else "toml"

def write(path, doc):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc) if main else "".join(f"# {{k}}\\n" for k in doc))

write(configs / f"inference.{{ext}}", rl.get("inference", {{}}))
write(configs / f"trainer.{{ext}}", rl.get("trainer", {{}}))
orch = rl.get("orchestrator", {{}})
write(configs / f"orchestrator.{{ext}}", orch)
for split in ("train", "eval"):
    for source in orch.get(split, {{}}).get("source", []):
        write(configs / "envs" / split / f"{{source['name']}}.{{ext}}", source)
print(f"\\x1b[2m00:00:00\\x1b[0m INFO Wrote subconfigs to {{configs}}\\x1b[0m")
"""


@pytest.fixture
def stub_prime_rl(tmp_path):
    """A directory that looks like a prime-rl checkout and a fake `uv` on PATH that emulates its dry run."""
    prime_rl, bin_dir = tmp_path / "prime-rl", tmp_path / "bin"
    prime_rl.mkdir(), bin_dir.mkdir()
    (prime_rl / "pyproject.toml").write_text('[project]\nname = "prime-rl"\nversion = "0.8.0"\n')
    (bin_dir / "uv").write_text(STUB_UV.format(python=sys.executable, log=str(prime_rl / "uv-calls.txt")))
    (bin_dir / "uv").chmod(0o755)
    return prime_rl, {
        **os.environ,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "PYTHON": sys.executable,
    }


def run_script(script: Path, *args: str, env: dict, cwd: Path = REPO) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", str(script), *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=60
    )


def panes(stdout: str) -> dict[str, str]:
    lines = [line for line in stdout.splitlines() if not line.startswith("#")]
    return dict(line.split(": ", 1) for line in lines)


def visible(command: str) -> str:
    return command.split("CUDA_VISIBLE_DEVICES=", 1)[1].split(" ", 1)[0]


@pytest.mark.parametrize("dirname", sorted(LAYOUTS))
def test_tmux_dry_run_derives_the_configs_and_prints_one_command_per_process(dirname, stub_prime_rl):
    version, gpus, n_infer, n_train, train_scorer, eval_scorer = LAYOUTS[dirname]
    prime_rl, env = stub_prime_rl
    ids = [str(10 + 3 * i) for i in range(gpus)]  # physical ids unlike the cuda indices, to catch mix-ups
    result = run_script(
        TMUX, "--dry-run", "--prime-rl", str(prime_rl), f"configs/{dirname}", ",".join(ids), env=env
    )
    assert result.returncode == 0, result.stderr
    (call,) = [json.loads(line) for line in (prime_rl / "uv-calls.txt").read_text().splitlines()]
    assert call == {
        "cwd": str(prime_rl),
        "args": ["run", "rl", "@", str(CONFIGS / dirname / "rl.toml"), "--dry-run"],
    }
    commands = panes(result.stdout)
    assert list(commands) == ["inference", "env-train", "env-eval", "orchestrator", "trainer"]
    assert visible(commands["inference"]) == ",".join(ids[:n_infer])
    assert visible(commands["trainer"]) == ",".join(ids[n_infer : n_infer + n_train])
    for name in (
        "env-train",
        "env-eval",
        "orchestrator",
    ):  # as under `uv run rl`: scorer_device indexes this list
        assert visible(commands[name]) == ",".join(ids)
    assert f"scorers: GPU {ids[train_scorer]}/GPU {ids[eval_scorer]})" in result.stdout
    run_dir = prime_rl / "outputs" / dirname
    ext = "toml" if version == "v0.8.0" else "json"
    entry = {
        "inference": f"uv run inference @ {run_dir}/configs/inference.{ext}",
        "env-train": f"uv run env-server @ {run_dir}/configs/envs/train/binoculars.{ext}",
        "env-eval": f"uv run env-server @ {run_dir}/configs/envs/eval/binoculars-validation.{ext}",
        "orchestrator": f"uv run orchestrator @ {run_dir}/configs/orchestrator.{ext}",
        "trainer": f"uv run torchrun --standalone --nproc-per-node {n_train} -m prime_rl.trainer.rl.train @ "
        f"{run_dir}/configs/trainer.{ext}",
    }
    for name, command in commands.items():
        assert command.startswith(f"cd {prime_rl} && ")
        assert entry[name] in command
        assert f"| tee {run_dir}/logs/" in command
        assert Path(command.split(" @ ", 1)[1].split(" ", 1)[0]).is_file()  # the stub's dry run wrote it


def test_bare_tmux_starts_the_default_layout_on_gpus_0_and_1(stub_prime_rl, tmp_path):
    prime_rl, env = stub_prime_rl
    result = run_script(TMUX, "--dry-run", env={**env, "PRIME_RL_DIR": str(prime_rl)}, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(
        "# tmux session 'binoculars': binoculars on GPUs 0,1 (inference 0, trainer 1,"
    )
    assert len(panes(result.stdout)) == 5
    # arguments after -- reach prime-rl's dry run; without PRIME_RL_DIR the current directory is the checkout
    result = run_script(TMUX, "--dry-run", "--", "--max-steps", "3", env=env, cwd=prime_rl)
    assert result.returncode == 0, result.stderr
    last = json.loads((prime_rl / "uv-calls.txt").read_text().splitlines()[-1])
    assert last["args"][-3:] == ["--dry-run", "--max-steps", "3"] and last["cwd"] == str(prime_rl)


def test_tmux_rejects_a_gpu_list_that_does_not_fit_the_layout(stub_prime_rl, tmp_path):
    prime_rl, env = stub_prime_rl
    result = run_script(
        TMUX, "--dry-run", "--prime-rl", str(prime_rl), "configs/binoculars-4gpu", "0,1", env=env
    )
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.strip() == (
        "error: binoculars-4gpu uses 4 GPUs (2 inference, 1 trainer, scorers on cuda:3 and cuda:3), got 2: 0,1"
    )
    assert not (prime_rl / "uv-calls.txt").exists()  # rejected before prime-rl runs
    bad_args = (
        ["configs/missing", "0,1"],
        ["configs/binoculars", "0;1"],
        ["configs/binoculars", "0,1", "extra"],
        ["--prime-rl", str(tmp_path), "configs/binoculars"],  # not a prime-rl checkout
    )
    for bad in bad_args:
        result = run_script(TMUX, "--dry-run", "--prime-rl", str(prime_rl), *bad, env=env)
        assert result.returncode != 0 and result.stdout == "", bad
        assert result.stderr.strip().splitlines()[-1].startswith("error: "), bad


def test_derive_configs_renames_prime_rls_files_and_in_place_adds_the_header(stub_prime_rl, tmp_path):
    prime_rl, env = stub_prime_rl
    env = {**env, "PRIME_RL_DIR": str(prime_rl)}
    result = run_script(DERIVE, "configs/binoculars-v1-8gpu", str(tmp_path / "out"), env=env)
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(
        f"{name}.json" for name in GENERATED
    )
    (call,) = [json.loads(line) for line in (prime_rl / "uv-calls.txt").read_text().splitlines()]
    assert call["args"][:3] == ["run", "--project", str(prime_rl)] and call["cwd"] != str(
        prime_rl
    )  # a scratch dir
    layout = tmp_path / "configs" / "binoculars"
    shutil.copytree(CONFIGS / "binoculars", layout)
    result = run_script(DERIVE, "--in-place", str(layout), env=env)
    assert result.returncode == 0, result.stderr
    digest = hashlib.sha256((layout / "rl.toml").read_bytes()).hexdigest()
    for name in GENERATED:
        header = (layout / f"{name}.toml").read_text().split("\n\n", 1)[0]
        assert header.startswith(f"# GENERATED from {layout}/rl.toml by prime-rl v0.8.0's `rl --dry-run`")
        assert header.endswith(f"# rl.toml sha256: {digest}")
    assert "# legacy" in (layout / "env-train.toml").read_text()  # the stub wrote the train source there
    for bad in ([], ["configs/binoculars"], ["--in-place", "a", "b"], ["configs/missing", "out"]):
        result = run_script(DERIVE, *bad, env=env)
        assert result.returncode != 0 and result.stderr.strip().splitlines()[-1].startswith("error: "), bad
