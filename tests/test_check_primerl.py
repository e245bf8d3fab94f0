"""scripts/check_primerl.py, the helpers of the opt-in scripts/check_primerl.sh, without prime-rl: the check config
it derives from a layout, and the comparison that decides the check's verdict (it must fail on a wrong reward and on
an eval request that does not switch thinking off at its top level)."""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from binoculars_env.data import SAMPLE_DATA_FILE
from binoculars_env.reward import RewardConfig, score_completions

REPO = Path(__file__).resolve().parents[1]
CHECK = REPO / "scripts" / "check_primerl.py"
REPLIES = [
    "The little fox ran to the river and found a friend.",
    "<think>plan</think>Mia smiled at Tom.",
    "Ok.",
]


def run_check(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(CHECK), *args], capture_output=True, text=True, cwd=REPO, timeout=300
    )


@pytest.mark.parametrize("layout", ["binoculars", "binoculars-v1"])
def test_config_points_every_env_block_at_the_tiny_pair_and_one_data_file(layout, tiny_pair, tmp_path):
    result = run_check(
        "config",
        str(REPO / "configs" / layout / "rl.toml"),
        str(tmp_path / "rl.toml"),
        "--models",
        str(tiny_pair.observer.parent),
    )
    assert result.returncode == 0, result.stderr
    rl = tomllib.loads((tmp_path / "rl.toml").read_text())
    original = tomllib.loads((REPO / "configs" / layout / "rl.toml").read_text())
    for split in ("train", "eval"):
        (source,) = rl["orchestrator"][split]["source"]
        (before,) = original["orchestrator"][split]["source"]
        if "legacy" in source:
            data = reward = source["legacy"]["args"]
            assert data.get("split") == before["legacy"]["args"].get(
                "split"
            )  # the eval source still serves eval
        else:
            data, reward = source["env"]["taskset"], source["env"]["taskset"]["task"]
            assert data["split"] == before["env"]["taskset"]["split"]
        assert data["data_files"] == str(SAMPLE_DATA_FILE) and "dataset_name" not in data
        assert (reward["observer_model"], reward["performer_model"]) == (
            str(tiny_pair.observer),
            str(tiny_pair.performer),
        )
        assert reward["scorer_device"] == "cpu"
    assert rl["orchestrator"]["eval"]["sampling"] == original["orchestrator"]["eval"]["sampling"]


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def test_compare_passes_true_rewards_and_fails_wrong_ones_and_thinking_requests(tiny_pair, tmp_path):
    assert (
        run_check(
            "config",
            str(REPO / "configs/binoculars/rl.toml"),
            str(tmp_path / "rl.toml"),
            "--models",
            str(tiny_pair.observer.parent),
        ).returncode
        == 0
    )
    rl = tomllib.loads((tmp_path / "rl.toml").read_text())
    (source,) = rl["orchestrator"]["train"]["source"]
    config = RewardConfig(
        **{k: v for k, v in source["legacy"]["args"].items() if k in RewardConfig.model_fields}
    )
    rewards = [r.reward for r in score_completions(REPLIES, config)]
    good = write_jsonl(
        tmp_path / "good.jsonl",
        [{"completion": c, "reward": r} for c, r in zip(REPLIES, rewards, strict=True)],
    )
    bad = write_jsonl(
        tmp_path / "bad.jsonl",
        [{"completion": c, "reward": r + 1e-3} for c, r in zip(REPLIES, rewards, strict=True)],
    )
    off = {
        "model": "m",
        "temperature": 1.0,
        "max_completion_tokens": 256,
        "chat_template_kwargs": {"enable_thinking": False},
    }
    literal = {
        "model": "m",
        "temperature": 1.0,
        "max_tokens": 256,
        "extra_body": {"chat_template_kwargs": {"enable_thinking": False}},
    }
    requests_ok = write_jsonl(tmp_path / "ok-requests.jsonl", [off, off])
    requests_bad = write_jsonl(tmp_path / "bad-requests.jsonl", [off, literal])

    def compare(rollouts: Path, requests: Path) -> subprocess.CompletedProcess:
        return run_check(
            "compare", str(tmp_path / "rl.toml"), f"path=train={rollouts}", "--eval-requests", str(requests)
        )

    result = compare(good, requests_ok)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "MISMATCH" not in result.stdout and "2/2  ok" in result.stdout
    result = compare(bad, requests_ok)
    assert result.returncode == 1 and "MISMATCH" in result.stdout
    result = compare(good, requests_bad)
    assert result.returncode == 1 and "1/2  MISMATCH" in result.stdout
