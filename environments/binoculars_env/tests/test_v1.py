"""verifiers v1 (0.3.1, 0.4.0): the taskset as verifiers loads it, and `vf-eval binoculars-env` end to end
with the null harness and subprocess runtime against a scripted OpenAI-compatible server on 127.0.0.1."""

import json
import os
import shutil
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import binoculars_env
import pytest
import verifiers.v1 as vf
from binoculars_env.data import INSTRUCTION, DataConfig, load_story_prompts
from binoculars_env.reward import METRIC_NAMES
from binoculars_env.taskset import BinocularsTask, BinocularsTaskset, BinocularsTasksetConfig
from openai_stub import SCRIPTED_REPLIES
from reference_scores import reference_reward
from verifiers.v1.utils.loaders import taskset_class, taskset_config_type


def taskset_config(env_args: dict, **overrides) -> BinocularsTasksetConfig:
    data = {k: v for k, v in env_args.items() if k in DataConfig.model_fields}
    task = {k: v for k, v in env_args.items() if k not in DataConfig.model_fields}
    return taskset_config_type("binoculars-env").model_validate(
        {"id": "binoculars-env", **data, "task": task, **overrides}
    )


def test_the_package_exports_exactly_one_taskset():
    exported = [getattr(binoculars_env, name) for name in binoculars_env.__all__]
    assert [c for c in exported if isinstance(c, type) and issubclass(c, vf.Taskset)] == [BinocularsTaskset]
    assert taskset_class("binoculars-env") is BinocularsTaskset
    assert taskset_config_type("binoculars-env") is BinocularsTasksetConfig


def test_tasks_carry_a_story_beginning_and_eval_tasks_come_from_the_eval_split(env_args):
    train = list(BinocularsTaskset(taskset_config(env_args)))
    evals = list(BinocularsTaskset(taskset_config(env_args, split="eval")))
    assert len(train) == env_args["num_train_examples"] and len(evals) == env_args["num_eval_examples"]
    for task in train + evals:
        [message] = task.data.prompt
        assert message.role == "user" and message.content.startswith(INSTRUCTION)
        assert message.content.endswith(task.data.beginning) and task.data.reference not in message.content
    data = DataConfig(**{k: v for k, v in env_args.items() if k in DataConfig.model_fields})
    assert [t.data.reference for t in evals] == [p.reference for p in load_story_prompts(data, "eval")]
    assert not {t.data.reference for t in train} & {t.data.reference for t in evals}


@pytest.mark.parametrize("name", ["threshold", "max_log_ppl", "batch_window_s", "length_weight"])
def test_the_v1_task_config_rejects_non_finite_numbers_naming_the_field(env_args, name):
    task = {k: v for k, v in env_args.items() if k not in DataConfig.model_fields}
    for value in ("nan", float("inf"), float("-inf")):
        with pytest.raises(ValueError, match=f"(?s)task.{name}.*finite number"):
            taskset_config(env_args, task={**task, name: value})


def test_tasks_survive_the_env_server_wire(env_args):
    """The env server rebuilds a task from its wire data and the config's task subtree, not from load()."""
    config = taskset_config(env_args)
    [task, *_] = BinocularsTaskset(config)
    rebuilt = BinocularsTask(type(task.data).model_validate(task.data.model_dump(mode="json")), config.task)
    assert rebuilt.data == task.data and rebuilt.config.threshold == env_args["threshold"]


HARNESS_DEPS_AS_OF = "2026-11-29T00:00:00Z"


def test_vf_eval_runs_rollouts_and_saves_rewards_and_metrics(env_args, chat_server, tmp_path):
    # verifiers 0.4.0 names the v1 CLI vf-eval; 0.3.1 (where vf-eval is the classic one) names it eval
    cli = "vf-eval" if version("verifiers") >= "0.4" else "eval"
    command = [
        str(Path(sys.executable).with_name(cli)), "binoculars-env",
        "--env.agent.harness.id", "null", "--env.agent.runtime.type", "subprocess", "--no-push",
        "-m", "scripted-policy", "--client.base-url", chat_server.base_url, "--client.api-key-var", "STUB_API_KEY",
        "-r", "4", "-o", str(tmp_path / "out"),  # all eval tasks (the selection flags differ by version)
        "--env.taskset.split", "eval",
        "--env.taskset.data-files", env_args["data_files"],
        "--env.taskset.num-train-examples", str(env_args["num_train_examples"]),
        "--env.taskset.num-eval-examples", "2",
    ]  # fmt: skip
    for name in ("observer_model", "performer_model", "scorer_device", "threshold", "min_tokens", "max_log_ppl",
                 "length_weight"):  # fmt: skip
        value = env_args[name]
        command += [f"--env.taskset.task.{name.replace('_', '-')}", "None" if value is None else str(value)]
    # the subprocess runtime needs `uv` and this venv's scripts on PATH
    path = os.pathsep.join(
        [str(Path(sys.executable).parent), str(Path(shutil.which("uv")).parent), os.environ["PATH"]]
    )
    # The null harness is a uv script with unpinned dependencies, resolved at run time: httpx2 2.17 (2026-11-30)
    # with openai 3.63 rejects the httpx.Timeout verifiers passes ("Invalid timeout"). Resolve them as of a date
    # that works (docs/smoke-rollouts.md tells users the same).
    env = {**os.environ, "STUB_API_KEY": "unused", "PATH": path, "UV_EXCLUDE_NEWER": HARNESS_DEPS_AS_OF}
    run = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]

    [traces_file] = (tmp_path / "out").rglob("traces.jsonl")
    episodes = [json.loads(line) for line in traces_file.read_text().splitlines()]
    traces = [(e["task"]["data"], vf.Trace.model_validate(t)) for e in episodes for t in e["traces"]]
    assert len(traces) == 8
    data = DataConfig(**{k: v for k, v in env_args.items() if k in DataConfig.model_fields})
    eval_beginnings = {
        p.beginning for p in load_story_prompts(data.model_copy(update={"num_eval_examples": 2}), "eval")
    }
    for task_data, trace in traces:
        assert trace.last_reply in {r.strip() for r in SCRIPTED_REPLIES}
        assert task_data["beginning"] in eval_beginnings
        assert set(trace.metrics) >= set(METRIC_NAMES)
        reward = trace.rewards["binoculars_reward"]
        assert reward.weight == 1.0
        expected = (
            -2.0
            if not trace.last_reply
            else reference_reward(
                trace.last_reply,
                env_args["observer_model"],
                env_args["performer_model"],
                env_args["threshold"],
            )  # fmt: skip
        )
        assert reward.score == pytest.approx(expected, abs=1e-4)
        assert trace.metrics["guard_failed"] == float(not trace.last_reply)
