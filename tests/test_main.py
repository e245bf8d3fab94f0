"""main.py (smoke rollouts) end to end in subprocesses: the offline demo with its embedded `transformers serve`
policy, an external server via --base-url (the env tests' scripted OpenAI-compatible server), a run stopped by
SIGINT/SIGTERM and finished with --resume, and the offline error paths for hub models; plus the pieces (arguments,
env arguments, the rollout file, summary, error message) in process."""

import asyncio
import itertools
import json
import math
import os
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import time
import zlib
from pathlib import Path

import psutil
import pytest
from aiohttp import web
from binoculars_env.data import SAMPLE_DATA_FILE, StoryPrompt
from binoculars_env.reward import RewardConfig, RewardResult, score_completions

from binoculars_rl.report import summarize
from binoculars_rl.smoke.arguments import DEFAULT_POLICY, DefaultsShownFormatter, build_parser
from binoculars_rl.smoke.cli import main
from binoculars_rl.smoke.env_args import env_configs, parse_env_args
from binoculars_rl.smoke.errors import SmokeError, UsageError
from binoculars_rl.smoke.policy_server import free_port
from binoculars_rl.smoke.preflight import Requirement, raise_missing
from binoculars_rl.smoke.records import RolloutFile
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


def main_env(env: dict | None = None, unset: tuple[str, ...] = ()) -> dict:
    environ = {**os.environ, "COLUMNS": "160", **(env or {})}
    return {k: v for k, v in environ.items() if k not in unset}


def run_main(
    *args: str, env: dict | None = None, unset: tuple[str, ...] = (), timeout: float = 600
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(ROOT / "main.py"), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=main_env(env, unset),
    )


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_demo_runs_the_whole_pipeline_offline_and_stops_its_server(tiny_pair, tmp_path):
    demo_dir = tmp_path / "demo-models"  # pre-built (the fixture's models) so the test skips the slow build
    for role in ("observer", "performer", "policy"):
        shutil.copytree(getattr(tiny_pair, role), demo_dir / role)
    output = tmp_path / "out" / "demo.jsonl"

    done = run_main(
        "--demo-tiny",
        f"--demo-dir={demo_dir}",
        "-m",
        "2",
        "-n",
        "2",
        "--max-tokens",
        "24",
        f"--output={output}",
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


@pytest.mark.real_model
def test_demo_uses_smollm2_as_policy_and_as_observer_equal_performer(tmp_path):
    from binoculars import load_thresholds
    from binoculars_rl.real_model import SMOLLM2_CALIBRATION, smollm2_dir

    output = tmp_path / "smollm2-demo.jsonl"
    done = run_main("--demo", "-m", "1", "-n", "2", "--max-tokens", "24", f"--output={output}")

    assert done.returncode == 0, done.stdout + done.stderr
    text = " ".join(done.stdout.split())  # rich wraps panels
    assert "policy = observer = performer = SmolLM2-135M-Instruct" in text
    assert "MEANINGLESS" not in text and "SmolLM2's own calibration on human prose" in text
    records = read_jsonl(output)
    assert len(records) == 2
    assert {r["settings"]["policy"] for r in records} == {str(smollm2_dir())}
    env = records[0]["settings"]["env"]
    assert env["observer_model"] == env["performer_model"] == str(smollm2_dir())
    assert env["calibration_file"] == str(SMOLLM2_CALIBRATION)
    assert env["threshold"] == load_thresholds(SMOLLM2_CALIBRATION)["accuracy"]
    assert all(r["score"] is None or 0 < r["score"] < 5 for r in records)


def test_the_two_demos_exclude_each_other_and_model_flags():
    both = run_main("--demo", "--demo-tiny")
    assert both.returncode == 2 and "not allowed with argument" in both.stderr
    with_policy = run_main("--demo-tiny", "--policy", "some/model", "--output", "/tmp/unused-demo.jsonl")
    assert with_policy.returncode != 0
    assert (
        "--demo-tiny uses its own models: leave out --base-url, --policy"
        in with_policy.stderr + with_policy.stdout
    )


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
        assert (record["panel"] is None) == (result.panel is None)
        if result.panel is not None:
            assert record["panel"] == pytest.approx(result.panel.as_dict(), abs=1e-6)
    assert "detector panel" in done.stdout and "fast_detectgpt" in done.stdout
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


class PromptKeyedChatServer(ScriptedChatServer):
    """The scripted server, replying to each prompt with a reply picked by the prompt's text, so a resumed run
    gets the completions an uninterrupted one got. With `answer` set, the requests after the first `answer` hang
    until `answer` is cleared, then get a 503 (they are never answered)."""

    def __init__(self, answer: int | None = None) -> None:
        super().__init__(SCRIPTED_REPLIES, model="my-policy")
        self.answer = answer
        self.held = 0

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        if self.answer is not None and len(self.requests) >= self.answer:
            self.held += 1
            while self.answer is not None:
                await asyncio.sleep(0.05)
            self.held -= 1
            return web.Response(status=503)
        prompt = body["messages"][-1]["content"]
        reply = SCRIPTED_REPLIES[zlib.crc32(prompt.encode()) % len(SCRIPTED_REPLIES)]
        self._next_reply = itertools.repeat(reply)
        return await super()._chat(request)

    def answer_everything(self) -> None:
        self.answer = None
        deadline = time.monotonic() + 30
        while self.held and time.monotonic() < deadline:
            time.sleep(0.05)


def keyed_run_args(server: ScriptedChatServer, tiny_pair) -> list[str]:
    """2 prompts x 3 rollouts from `server`, rewarded by the tiny pair."""
    return [
        f"--base-url={server.base_url}", "--policy=my-policy",
        f"--observer={tiny_pair.observer}", f"--performer={tiny_pair.performer}",
        f"--env-arg=data_files={SAMPLE_DATA_FILE}", "--env-arg=scorer_device=cpu",
        "--env-arg=min_tokens=4", "--env-arg=max_log_ppl=null",
        "-m", "2", "-n", "3", "--concurrency=2", "--max-tokens=32",
    ]  # fmt: skip


def by_rollout(records: list[dict]) -> dict[tuple[int, int], dict]:
    return {(r["prompt_index"], r["rollout_index"]): r for r in records}


@pytest.fixture(scope="module")
def uninterrupted_records(tiny_pair, tmp_path_factory) -> list[dict]:
    server = PromptKeyedChatServer().start()
    output = tmp_path_factory.mktemp("uninterrupted") / "rollouts.jsonl"
    try:
        done = run_main(*keyed_run_args(server, tiny_pair), f"--output={output}")
    finally:
        server.stop()
    assert done.returncode == 0, done.stdout + done.stderr
    return read_jsonl(output)


def wait_for_lines(path: Path, count: int, process: subprocess.Popen, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and path.read_text().count("\n") >= count:
            return
        if process.poll() is not None:
            pytest.fail(f"main.py exited ({process.returncode}) early:\n{process.stdout.read()}")
        time.sleep(0.1)
    pytest.fail(f"{path} did not reach {count} lines in {timeout} s")


def stop_midway(stop: int, server: PromptKeyedChatServer, args: list[str], output: Path) -> str:
    """Run main.py until `output` holds 3 lines, send it `stop`, let the server answer again; what main.py said."""
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "main.py"), *args],
        cwd=ROOT, env=main_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        wait_for_lines(output, 3, process)
        process.send_signal(stop)
        said, _ = process.communicate(timeout=120)
    finally:
        server.answer_everything()
        if process.poll() is None:
            process.kill()
    assert process.returncode == 128 + stop, said
    assert "Traceback" not in said
    return said


@pytest.fixture
def hanging_server():
    server = PromptKeyedChatServer(
        answer=3
    ).start()  # 3 of the 6 rollouts are answered, then the server hangs
    yield server
    server.answer_everything()
    server.stop()


def test_sigterm_leaves_the_finished_rollouts_on_disk_and_says_where(
    hanging_server, tiny_pair, tmp_path, uninterrupted_records
):
    output = tmp_path / "rollouts.jsonl"
    said = stop_midway(
        signal.SIGTERM,
        hanging_server,
        [*keyed_run_args(hanging_server, tiny_pair), f"--output={output}"],
        output,
    )

    kept = read_jsonl(output)
    assert len(kept) == 3 and all("reward" not in r for r in kept), kept  # sampled, not yet scored
    assert f"{output} holds 3 of 6 rollouts (0 scored)" in said and f"--resume {output}" in said
    for key, record in by_rollout(kept).items():
        assert record["completion"] == by_rollout(uninterrupted_records)[key]["completion"]


def test_resume_after_ctrl_c_samples_and_scores_only_what_is_missing(
    hanging_server, tiny_pair, tmp_path, uninterrupted_records
):
    output = tmp_path / "rollouts.jsonl"
    args = keyed_run_args(hanging_server, tiny_pair)
    said = stop_midway(signal.SIGINT, hanging_server, [*args, f"--output={output}"], output)
    assert len(read_jsonl(output)) == 3

    # other settings are refused, the file left as it was
    before = output.read_text()
    assert main([*args, "--temperature=0.9", f"--resume={output}"]) == 2
    assert output.read_text() == before

    # the command main.py printed finishes the run: only the 3 missing rollouts are sampled
    command = shlex.split(said.split("finish them with:")[1].strip().splitlines()[0])
    assert command[:3] == ["uv", "run", "main.py"]
    sent_before = len(hanging_server.requests)
    resumed = run_main(*command[3:])
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert len(hanging_server.requests) - sent_before == 3

    # one scored line per rollout, the same records as an uninterrupted run's
    final = read_jsonl(output)
    assert [(r["prompt_index"], r["rollout_index"]) for r in final] == sorted(
        by_rollout(uninterrupted_records)
    )
    assert by_rollout(final) == by_rollout(uninterrupted_records)


def test_unwritable_output_fails_at_once_with_one_line(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    done = run_main(f"--output={blocker / 'rollouts.jsonl'}", timeout=120)

    assert done.returncode == 2
    said = (done.stdout + done.stderr).strip()
    assert said == f"error: cannot write --output {blocker / 'rollouts.jsonl'} ({blocker} is not a directory)"


def test_existing_output_is_never_overwritten(tmp_path, capsys):
    output = tmp_path / "earlier.jsonl"
    output.write_text('{"completion": "earlier work"}\n')

    assert main([f"--output={output}"]) == 2

    assert output.read_text() == '{"completion": "earlier work"}\n'
    assert f"--resume {output}" in capsys.readouterr().out


SETTINGS = {"policy": "p", "temperature": 0.7, "env": {"threshold": 1.0}}


def scored(rollout: Rollout, reward: float) -> Rollout:
    rollout.result = RewardResult(reward, 1.1, 2.0, 2.0, 12, 0.9, False, None)
    return rollout


def test_rollout_file_resumes_from_samples_and_scores_and_finishes_with_one_scored_line_each(tmp_path):
    path = tmp_path / "rollouts.jsonl"
    story = StoryPrompt("Once upon a time", "there was a fox.")
    first, second = (Rollout(0, r, story, f"text {r}", "stop", 2) for r in range(2))
    log = RolloutFile(path, SETTINGS)
    log.add_sample(first)
    log.add_sample(second)
    log.add_scored([scored(second, 0.25)])
    log.close()
    with path.open("a") as out:
        out.write('{"prompt_index": 1, "rollout_index": 0, "comp')  # a write cut short by the kill

    resumed = RolloutFile.resume(path, SETTINGS)

    assert [r.key for r in resumed.unscored()] == [(0, 0)]
    assert resumed.rollouts[(0, 1)].record() == second.record()  # the scored line superseded the sample
    assert len(read_jsonl(path)) == 3  # the cut line is gone; the 3 whole ones stay
    resumed.add_scored([scored(resumed.rollouts[(0, 0)], -0.5)])
    finished = resumed.finish()
    assert [r.key for r in finished] == [(0, 0), (0, 1)]
    assert read_jsonl(path) == [{**r.record(), "settings": SETTINGS} for r in finished]
    with pytest.raises(UsageError, match=r"temperature: file 0.7, now 0.9"):
        RolloutFile.resume(path, {**SETTINGS, "temperature": 0.9})
    with pytest.raises(UsageError, match="env.threshold: file 1.0, now 0.8"):
        RolloutFile.resume(path, {**SETTINGS, "env": {"threshold": 0.8}})
    with pytest.raises(UsageError, match="prompt 0 in the file is not the prompt"):
        RolloutFile.resume(path, SETTINGS).check_prompts([StoryPrompt("Another story", "ends.")])


@pytest.mark.parametrize(
    "flag, value",
    [
        ("--max-tokens", "0"),
        ("--max-tokens", "-5"),
        ("--temperature", "-0.1"),
        ("--temperature", "nan"),
        ("--top-p", "0"),
        ("--top-p", "1.5"),
        ("--num-prompts", "0"),
        ("-n", "-1"),
    ],
)
def test_bad_numbers_are_rejected_when_the_arguments_are_parsed(flag, value, capsys):
    with pytest.raises(SystemExit) as exit:
        build_parser().parse_args([flag, value])

    assert exit.value.code == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert flag in error and value in error


def test_edge_values_are_accepted():
    args = build_parser().parse_args(["--temperature=0", "--top-p=1", "--max-tokens=1", "-m", "1", "-n", "1"])
    assert (args.temperature, args.top_p, args.max_tokens, args.num_prompts) == (0.0, 1.0, 1, 1)


def test_help_shows_every_options_real_default_and_says_what_it_does():
    parser = build_parser()
    formatter = DefaultsShownFormatter("main.py")
    helps = {a.option_strings[-1]: formatter._expand_help(a) for a in parser._actions if a.dest != "help"}

    for option, text in helps.items():
        assert text and "(default:" in text and "(default: None)" not in text, option
    assert f"(default: {DEFAULT_POLICY})" in helps["--policy"]
    assert "(default: 256; with --demo or --demo-tiny: 48)" in helps["--max-tokens"]
    assert "(default: 0.7)" in helps["--temperature"] and "(default: 0.8)" in helps["--top-p"]
    assert "(default: None)" not in parser.format_help()


def test_unreachable_hub_without_hf_hub_offline_gives_only_the_projects_message(tmp_path):
    hub_down = {"HF_HOME": str(tmp_path / "hf"), "HF_ENDPOINT": f"http://127.0.0.1:{free_port()}"}
    done = run_main(
        f"--output={tmp_path / 'x.jsonl'}",
        env=hub_down,
        unset=("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"),
        timeout=300,
    )

    assert done.returncode == 1
    lines = [line for line in (done.stdout + done.stderr).splitlines() if line.strip()]
    text = "\n".join(lines)
    assert "Retry" not in text and "Traceback" not in text
    assert "HF_HUB_OFFLINE=1" in text and "--policy /path/to/Qwen3-0.6B" in text
    for model in ("Qwen/Qwen3-0.6B", "Qwen/Qwen2.5-0.5B", "roneneldan/TinyStories"):
        assert f"'{model}'" in text
    # the project's message: a note, the failures (one line each), the local-paths command
    assert len(lines) <= 12, text
