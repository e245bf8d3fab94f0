"""main.py (smoke rollouts) end to end in subprocesses: the offline demo with its embedded `transformers serve`
policy, an external server via --base-url (the env tests' scripted OpenAI-compatible server), and the offline
error path for hub models; plus the pieces (env arguments, summary, error message) in process."""

import json
import math
import os
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

import psutil
import pytest
from binoculars_env.data import SAMPLE_DATA_FILE
from binoculars_env.reward import RewardConfig, score_completions

from binoculars_rl.report import summarize
from binoculars_rl.smoke.env_args import env_configs, parse_env_args
from binoculars_rl.smoke.errors import SmokeError
from binoculars_rl.smoke.preflight import Requirement, raise_missing
from binoculars_rl.smoke.rollouts import Rollout

ROOT = Path(__file__).resolve().parents[1]
# The env package's tests own the scripted OpenAI-compatible server; reuse it rather than keep a second one.
sys.path.insert(0, str(ROOT / "environments" / "binoculars_env" / "tests"))
from openai_stub import ScriptedChatServer  # noqa: E402

SAMPLE_STORIES = [
    json.loads(line)["text"] for line in SAMPLE_DATA_FILE.read_text().splitlines() if line.strip()
]
SCRIPTED_REPLIES = [
    "The little fox ran to the river and found a friend. They played with a red ball until the sun went down.",
    "<think>I should write a happy ending.</think>Mia smiled at Tom, and they walked home together, holding hands.",
    "",
]


def run_main(*args: str, env: dict | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(ROOT / "main.py"), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "COLUMNS": "160", **(env or {})},
    )


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_demo_runs_the_whole_pipeline_offline_and_stops_its_server(tiny_pair, tmp_path):
    demo_dir = tmp_path / "demo-models"  # pre-built (the fixture's models) so the test skips the slow build
    for role in ("observer", "performer", "policy"):
        shutil.copytree(getattr(tiny_pair, role), demo_dir / role)
    output = tmp_path / "out" / "demo.jsonl"

    done = run_main(
        "--demo", f"--demo-dir={demo_dir}", "-m", "2", "-n", "2", "--max-tokens", "24", f"--output={output}"
    )

    assert done.returncode == 0, done.stdout + done.stderr
    assert "MEANINGLESS" in done.stdout and "Smoke rollouts" in done.stdout and "Summary" in done.stdout
    records = read_jsonl(output)
    assert len(records) == 4
    assert sorted((r["prompt_index"], r["rollout_index"]) for r in records) == [
        (0, 0),
        (0, 1),
        (1, 0),
        (1, 1),
    ]
    for record in records:
        assert any(story.startswith(record["story_beginning"]) for story in SAMPLE_STORIES)
        assert record["story_beginning"] in record["prompt"][-1]["content"]
        assert -2.0 <= record["reward"] <= 2.0
        assert record["score"] is None or math.isfinite(record["score"])
        assert set(record["metrics"]) >= {"binoculars_score", "num_tokens", "distinct_2", "flagged_as_ai"}
    # the table's summary is computed from the same rollouts as the file
    mean_reward = statistics.fmean(r["reward"] for r in records)
    assert f"{mean_reward:+.3f}" in done.stdout
    # the embedded server (its own process group) is gone once main.py has exited
    assert (output.parent / "demo-policy-server.log").exists()
    leftovers = [
        p for p in psutil.process_iter(["cmdline"]) if str(demo_dir) in " ".join(p.info["cmdline"] or [])
    ]
    assert leftovers == []


@pytest.fixture
def chat_server():
    server = ScriptedChatServer(SCRIPTED_REPLIES, model="my-policy").start()
    yield server
    server.stop()


def test_base_url_samples_from_the_given_server_and_rewards_with_the_env_reward(
    tiny_pair, chat_server, tmp_path
):
    output = tmp_path / "rollouts.jsonl"
    env_args = {"min_tokens": 4, "max_log_ppl": None, "threshold": 0.9, "scorer_device": "cpu"}
    done = run_main(
        f"--base-url={chat_server.base_url}",
        "--policy=my-policy",
        f"--observer={tiny_pair.observer}",
        f"--performer={tiny_pair.performer}",
        f"--env-arg=data_files={SAMPLE_DATA_FILE}",
        f"--env-args={json.dumps(env_args)}",
        "-m", "2", "-n", "3", "--concurrency=1", "--max-tokens=77",
        f"--output={output}",
    )  # fmt: skip

    assert done.returncode == 0, done.stdout + done.stderr
    assert "MEANINGLESS" not in done.stdout
    bodies = chat_server.requests
    assert len(bodies) == 6
    assert all(b["model"] == "my-policy" and b["max_tokens"] == 77 for b in bodies)
    assert all(b["chat_template_kwargs"] == {"enable_thinking": False} for b in bodies)

    records = read_jsonl(output)
    assert len(records) == 6
    # one request at a time: the server's replies arrive in order, rollouts are in prompt-major order
    assert [r["completion"] for r in records] == SCRIPTED_REPLIES * 2
    assert [b["messages"] for b in bodies] == [r["prompt"] for r in records]
    expected = score_completions(
        [r["completion"] for r in records],
        RewardConfig(
            observer_model=str(tiny_pair.observer), performer_model=str(tiny_pair.performer), **env_args
        ),
    )
    for record, result in zip(records, expected, strict=True):
        assert record["reward"] == pytest.approx(result.reward, abs=1e-6)
        assert record["guard"] == result.guard
        assert record["metrics"] == pytest.approx(result.metrics(), abs=1e-6)
    empty = records[2]
    assert empty["reward"] == -2.0 and empty["guard"] == "empty" and empty["score"] is None
    assert "guard:empty" in done.stdout


def test_offline_hub_models_fail_with_one_clear_message(tmp_path):
    empty_cache = {"HF_HOME": str(tmp_path / "hf"), "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    done = run_main(f"--output={tmp_path / 'x.jsonl'}", env=empty_cache, timeout=300)

    assert done.returncode == 1
    text = done.stdout + done.stderr
    assert "Traceback" not in text
    for model in (
        "Qwen/Qwen3-0.6B",
        "Qwen/Qwen2.5-0.5B",
        "Qwen/Qwen2.5-0.5B-Instruct",
        "roneneldan/TinyStories",
    ):
        assert f"'{model}'" in text
    assert "--policy /path/to/Qwen3-0.6B --observer /path/to/Qwen2.5-0.5B" in text
    assert "--env-arg data_files=/path/to/stories.jsonl" in text and "uv run main.py --demo" in text
    assert not (tmp_path / "x.jsonl").exists()


def test_missing_model_message_keeps_the_working_flags():
    failures = [(Requirement("--policy", "policy", "Qwen/Qwen3-0.6B"), "offline")]
    given = {"--policy": "Qwen/Qwen3-0.6B", "--observer": "/m/obs", "--performer": "/m/perf"}
    with pytest.raises(SmokeError) as error:
        raise_missing(failures, given)
    assert "uv run main.py --policy /path/to/Qwen3-0.6B --observer /m/obs --performer /m/perf\n" in str(
        error.value
    )


def test_env_args_are_read_as_json_and_checked_against_the_env_configs():
    args = parse_env_args(["threshold=0.85", "data_files=a.jsonl", "max_log_ppl=null"], '{"min_tokens": 3}')
    assert args == {"threshold": 0.85, "data_files": "a.jsonl", "max_log_ppl": None, "min_tokens": 3}
    data, reward = env_configs(args)
    assert data.data_files == "a.jsonl" and reward.threshold == 0.85 and reward.max_log_ppl is None
    with pytest.raises(SmokeError, match="unknown env argument.*'tresholt'"):
        env_configs({"tresholt": 1.0})
    with pytest.raises(SmokeError, match="min_tokens"):
        env_configs({"min_tokens": -1})
    with pytest.raises(SmokeError, match="key=value"):
        parse_env_args(["threshold"], None)


def test_summary_counts_only_finite_scores_and_all_rewards():
    def rollout(text: str, score: float, reward: float, guard: str | None, finish: str = "stop") -> Rollout:
        from binoculars_env.data import StoryPrompt
        from binoculars_env.reward import RewardResult

        result = RewardResult(reward, score, 2.0, 2.0, len(text.split()), 0.5, score < 1.0, guard)
        return Rollout(0, 0, StoryPrompt("b", "r"), text, finish, 3, result)

    rollouts = [
        rollout("a b c a b", 0.8, -0.2, None, "length"),
        rollout("x y", 1.2, 0.2, None),
        rollout("", math.nan, -2.0, "empty"),
    ]
    summary = summarize(rollouts)
    assert summary.mean_score == pytest.approx(1.0) and summary.scored == 2
    assert summary.mean_reward == pytest.approx(-2.0 / 3) and summary.median_reward == -0.2
    assert summary.flagged_as_ai_rate == pytest.approx(1 / 3)  # NaN < 1.0 is False: the empty one is not "AI"
    assert summary.guarded_rate == pytest.approx(1 / 3) and summary.cut_rate == pytest.approx(1 / 3)
    # bigrams over all completions: (a,b) (b,c) (c,a) (a,b) (x,y) -> 4 unique of 5
    assert summary.distinct_2_across == pytest.approx(4 / 5)
