"""Classic verifiers (0.3.0, 0.3.1): load_environment, datasets, and rollouts through verifiers' own machinery
against a scripted OpenAI-compatible server on 127.0.0.1."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import verifiers as vf
from binoculars_env import batching
from binoculars_env.classic import load_environment
from binoculars_env.data import INSTRUCTION
from binoculars_env.reward import METRIC_NAMES, completion_text
from openai_stub import SCRIPTED_REPLIES
from reference_scores import reference_reward

REWARD_NAMES = {"binoculars_reward", *METRIC_NAMES}


def expected_reward(completion, env_args) -> float:
    text = completion_text(completion)
    if not text.split("</think>")[-1].strip():
        return -2.0
    return reference_reward(
        text, env_args["observer_model"], env_args["performer_model"], env_args["threshold"]
    )


def test_load_environment_gives_a_single_turn_env_with_story_prompts(env_args):
    env = load_environment(**env_args)
    assert isinstance(env, vf.SingleTurnEnv)
    train, evals = env.get_dataset(), env.get_eval_dataset()
    assert len(train) == env_args["num_train_examples"] and len(evals) == env_args["num_eval_examples"]
    for row in train:
        [message] = row["prompt"]
        assert message["role"] == "user" and message["content"].startswith(INSTRUCTION)
        assert message["content"].endswith(row["info"]["story_beginning"])
        assert row["answer"] and row["answer"] not in message["content"]
    train_stories = {r["answer"] for r in train}
    assert not train_stories & {r["answer"] for r in evals}  # eval prompts are held out from training


def test_split_gives_the_env_only_that_dataset(env_args):
    """`split="eval"` is what prime-rl v0.8.0's eval sources pass: its legacy bridge serves an env's train dataset,
    and the eval dataset when `get_dataset()` raises ValueError (no train dataset)."""
    both = load_environment(**env_args)
    only_eval = load_environment(**env_args, split="eval")
    with pytest.raises(ValueError):
        only_eval.get_dataset()
    assert only_eval.get_eval_dataset()["answer"] == both.get_eval_dataset()["answer"]
    only_train = load_environment(**env_args, split="train")
    assert only_train.get_dataset()["answer"] == both.get_dataset()["answer"]
    assert only_train.build_eval_dataset() is None
    with pytest.raises(ValueError, match="split must be one of"):
        load_environment(**env_args, split="validation")


def test_verifiers_loader_finds_the_env_by_id(env_args):
    env = vf.load_environment("binoculars-env", **env_args)
    assert isinstance(env, vf.SingleTurnEnv) and env.env_id == "binoculars-env"
    assert env.requires_group_rollouts  # the reward takes the plural `completions`


def test_unknown_and_invalid_arguments_are_rejected(env_args):
    with pytest.raises(TypeError, match="unknown arguments.*thresold"):
        load_environment(**env_args, thresold=0.5)
    with pytest.raises(ValueError, match="min_tokens"):
        load_environment(**{**env_args, "min_tokens": -1})
    with pytest.raises(FileNotFoundError, match="nope.json"):
        load_environment(**{**env_args, "threshold": None, "calibration_file": "/nope.json"})


@pytest.mark.parametrize(
    ("name", "value", "says"),
    [
        ("threshold", float("nan"), "finite number"),
        ("threshold", float("-inf"), "finite number"),
        ("max_log_ppl", float("nan"), "finite number"),
        ("batch_window_s", float("inf"), "finite number"),
        ("scorer_device", "banana", "'banana' is not a device"),
    ],
)
def test_non_finite_numbers_and_bad_devices_are_rejected_naming_the_argument(env_args, name, value, says):
    with pytest.raises(ValueError, match=f"(?s){name}.*{says}"):
        load_environment(**{**env_args, name: value})


def test_evaluate_rollouts_score_each_group_in_one_call(env_args, chat_server, monkeypatch):
    monkeypatch.setenv("STUB_API_KEY", "unused")
    calls = []
    real = batching.score_completions
    monkeypatch.setattr(
        batching, "score_completions", lambda texts, cfg: calls.append(texts) or real(texts, cfg)
    )
    env = load_environment(**env_args)
    client = vf.ClientConfig(api_base_url=chat_server.base_url, api_key_var="STUB_API_KEY")
    results = env.evaluate_sync(
        client=client, model="scripted-policy", num_examples=2, rollouts_per_example=4
    )
    outputs = results["outputs"]
    assert len(outputs) == 8 and len(chat_server.requests) == 8
    assert len(calls) == 2  # one scorer call per group of 4, shared by the reward and the metrics
    for output in outputs:
        text = completion_text(output["completion"] or [])
        # verifiers flags the empty reply (EmptyModelResponseError) and still scores it: the minimum
        assert bool(output.get("error")) == (text == "")
        assert set(output["metrics"]) >= REWARD_NAMES
        assert output["reward"] == pytest.approx(expected_reward(output["completion"], env_args), abs=1e-4)
        assert output["reward"] == output["metrics"]["binoculars_reward"]
    rewards = sorted(o["reward"] for o in outputs)
    assert rewards[0] == -2.0 and rewards[-1] > -2.0  # the empty reply and a real story


def test_scorer_failure_stops_the_group_instead_of_scoring_zero(env_args, chat_server, monkeypatch, tmp_path):
    monkeypatch.setenv("STUB_API_KEY", "unused")
    env = load_environment(**{**env_args, "observer_model": str(tmp_path / "no-observer")})
    client = vf.ClientConfig(api_base_url=chat_server.base_url, api_key_var="STUB_API_KEY")
    try:
        results = env.evaluate_sync(
            client=client, model="scripted-policy", num_examples=1, rollouts_per_example=2
        )
    except Exception as error:  # raised straight through, or recorded on each rollout below
        assert "no-observer" in repr(error) or "no-observer" in repr(error.__cause__)
        return
    for output in results["outputs"]:
        assert "no-observer" in json.dumps(output.get("error"), default=str)
        assert output["reward"] != 0.0 or output.get("error")


def test_legacy_vf_eval_saves_rewards_and_metrics(env_args, chat_server, tmp_path):
    vf_eval = Path(sys.executable).with_name("vf-eval")
    command = [
        str(vf_eval), "binoculars-env",
        "-a", json.dumps(env_args),
        "-m", "scripted-policy", "-b", chat_server.base_url, "-k", "STUB_API_KEY",
        "-n", "2", "-r", "3", "-s", "-o", str(tmp_path), "--disable-tui", "--disable-env-server",
    ]  # fmt: skip
    env = {**os.environ, "STUB_API_KEY": "unused"}
    run = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    [results_file] = tmp_path.rglob("results.jsonl")
    rows = [json.loads(line) for line in results_file.read_text().splitlines()]
    assert len(rows) == 6
    for row in rows:
        assert set(row) >= REWARD_NAMES or set(row.get("metrics", {})) >= REWARD_NAMES
        metrics = row.get("metrics") or {name: row[name] for name in REWARD_NAMES}
        assert row["reward"] == pytest.approx(metrics["binoculars_reward"])
        assert row["reward"] == pytest.approx(expected_reward(row["completion"], env_args), abs=1e-4)
    assert {completion_text(r["completion"]) for r in rows} <= set(SCRIPTED_REPLIES)


def test_independent_scoring_scores_each_rollout_alone(env_args, chat_server, monkeypatch):
    monkeypatch.setenv("STUB_API_KEY", "unused")
    env = load_environment(**env_args)
    client = vf.ClientConfig(api_base_url=chat_server.base_url, api_key_var="STUB_API_KEY")
    results = env.evaluate_sync(
        client=client,
        model="scripted-policy",
        num_examples=1,
        rollouts_per_example=4,
        independent_scoring=True,
    )
    for output in results["outputs"]:
        assert set(output["metrics"]) >= REWARD_NAMES
        assert output["reward"] == pytest.approx(expected_reward(output["completion"], env_args), abs=1e-4)
