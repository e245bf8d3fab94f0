"""The degeneracy report: metrics against hand computations, collapse verdicts on crafted sets, JSONL input and
the eval_degeneracy CLI."""

import importlib.util
import json
import math
from pathlib import Path

import pytest
from binoculars_env.data import SAMPLE_DATA_FILE

from binoculars.testing.tiny import story_corpus
from binoculars_rl.completions import read_completions
from binoculars_rl.degeneracy import CollapseCriteria, degeneracy_report

ROOT = Path(__file__).resolve().parent.parent


def human_stories() -> list[str]:
    rows = [json.loads(line) for line in SAMPLE_DATA_FILE.read_text().splitlines() if line.strip()]
    return [row["text"] for row in rows if len(row["text"].split()) > 20]


def load_script(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_metrics_match_hand_computation():
    report = degeneracy_report(["A b c", "a  B d", "a b c"], scores=[0.5, 1.5, float("nan")], threshold=1.0)
    # "A b c" and "a b c" are the same sample once lower-cased: 2 distinct of 3
    assert report.unique_fraction == pytest.approx(2 / 3)
    # word sets {a,b,c}, {a,b,d}, {a,b,c}: Jaccard 2/4, 1, 2/4
    assert report.mean_pairwise_jaccard == pytest.approx((0.5 + 1.0 + 0.5) / 3)
    assert report.distinct_1 == pytest.approx(4 / 9)  # a b c d among 9 words
    assert report.distinct_2 == pytest.approx(3 / 6)  # (a,b) (b,c) (b,d) among 6 bigrams
    assert report.mean_words == 3
    scores = report.scores
    assert (scores.count, scores.unscored) == (2, 1)
    assert scores.mean == pytest.approx(1.0) and scores.min == 0.5 and scores.max == 1.5
    assert scores.flagged_as_ai_rate == 0.5  # 0.5 < 1.0; 1.5 is not; the NaN is not scored


def test_identical_texts_are_flagged_as_collapse():
    report = degeneracy_report(["Once upon a time there was a happy dog who liked to run."] * 8)
    assert report.unique_fraction == 1 / 8
    assert report.likely_template_collapse
    assert any(reason.startswith("unique_fraction") for reason in report.collapse_reasons)


def test_fill_in_the_blank_template_is_flagged_by_jaccard():
    texts = story_corpus(num_stories=16, seed=3)
    report = degeneracy_report(texts)
    assert report.unique_fraction == 1.0  # all different texts...
    assert report.likely_template_collapse  # ...from one template
    assert [r.split()[0] for r in report.collapse_reasons] == ["mean_pairwise_jaccard"]


def test_varied_human_stories_are_not_flagged():
    report = degeneracy_report(human_stories())
    assert report.unique_fraction == 1.0
    assert report.mean_pairwise_jaccard < CollapseCriteria().max_mean_jaccard
    assert not report.likely_template_collapse and report.collapse_reasons == []


def test_criteria_are_configurable():
    texts = human_stories()
    assert degeneracy_report(texts, criteria=CollapseCriteria(max_mean_jaccard=0.05)).likely_template_collapse


def test_bad_inputs_raise():
    with pytest.raises(ValueError, match="at least 2"):
        degeneracy_report(["only one"])
    with pytest.raises(ValueError, match="together"):
        degeneracy_report(["a b", "c d"], scores=[1.0, 1.0])
    with pytest.raises(ValueError, match="1 entries for 2 texts"):
        degeneracy_report(["a b", "c d"], scores=[1.0], threshold=1.0)


def test_unscored_texts_give_empty_score_statistics():
    report = degeneracy_report(["", " "], scores=[math.nan, math.nan], threshold=1.0)
    assert report.scores.count == 0 and report.scores.unscored == 2 and report.scores.mean is None


def test_read_completions_accepts_strings_message_lists_and_text(tmp_path):
    path = tmp_path / "rollouts.jsonl"
    rows = [
        {"completion": "<think>plan</think>The cat slept."},
        {"completion": [{"role": "assistant", "content": "The dog ran."}], "reward": 0.1},
        {"completion": [{"role": "assistant", "content": [{"type": "text", "text": "A bird sang."}]}]},
        {"text": "The fox hid."},
    ]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n\n")
    assert read_completions(path) == ["The cat slept.", "The dog ran.", "A bird sang.", "The fox hid."]


@pytest.mark.parametrize(
    ("line", "message"),
    [("{not json", r"rollouts.jsonl:1: not valid JSON"), ('{"prompt": "x"}', r":1: no completion field")],
)
def test_read_completions_names_the_bad_line(tmp_path, line, message):
    path = tmp_path / "rollouts.jsonl"
    path.write_text(line + "\n")
    with pytest.raises(ValueError, match=message):
        read_completions(path)


def test_cli_flags_collapse_and_exits_1_with_fail_on_collapse(tmp_path, capsys):
    script = load_script("eval_degeneracy")
    collapsed, varied = tmp_path / "collapsed.jsonl", tmp_path / "varied.jsonl"
    collapsed.write_text("".join(json.dumps({"completion": "The same story."}) + "\n" for _ in range(6)))
    varied.write_text("".join(json.dumps({"completion": text}) + "\n" for text in human_stories()[:10]))

    assert script.main(["--completions", str(collapsed), "--no-score", "--fail-on-collapse"]) == 1
    report = json.loads(collapsed.with_suffix(".degeneracy.json").read_text())
    assert report["degeneracy"]["likely_template_collapse"] is True
    assert "likely template collapse" in capsys.readouterr().out

    assert script.main(["--completions", str(varied), "--no-score", "--fail-on-collapse"]) == 0
    assert (
        json.loads(varied.with_suffix(".degeneracy.json").read_text())["degeneracy"]["unique_fraction"] == 1.0
    )


def test_cli_scores_with_the_environment_reward(tmp_path, tiny_pair):
    script = load_script("eval_degeneracy")
    path = tmp_path / "varied.jsonl"
    path.write_text("".join(json.dumps({"completion": text}) + "\n" for text in human_stories()[:6]))
    args = ["--completions", str(path), "--output", str(tmp_path / "r.json"), "--scorer-device", "cpu"]
    args += ["--observer-model", str(tiny_pair.observer), "--performer-model", str(tiny_pair.performer)]
    assert script.main(args) == 0
    summary = json.loads((tmp_path / "r.json").read_text())
    scores = summary["degeneracy"]["scores"]
    assert scores["count"] == 6 and scores["threshold"] == 1.0
    assert 0.0 <= scores["flagged_as_ai_rate"] <= 1.0 and math.isfinite(scores["mean"])
    assert -2.0 <= summary["mean_reward"] <= 2.0


def test_cli_user_error_is_one_line_and_exit_2(tmp_path, capsys):
    script = load_script("eval_degeneracy")
    assert script.main(["--completions", str(tmp_path / "missing.jsonl"), "--no-score"]) == 2
    assert capsys.readouterr().out.strip().startswith("error: completions file not found")


def test_cli_checks_the_report_path_first_and_keeps_example_lines(tmp_path, capsys):
    completions = tmp_path / "rollouts.jsonl"
    completions.write_text(json.dumps({"completion": "A short story about a cat."}) + "\n")
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    args = ["--completions", str(completions), "--no-score", "--output", str(blocker / "report.json")]
    assert load_script("eval_degeneracy").main(args) == 2
    out = " ".join(capsys.readouterr().out.split())
    assert out.startswith("error: cannot write --output") and str(blocker) in out
    with pytest.raises(SystemExit):
        load_script("eval_degeneracy").main(["--help"])
    help_lines = capsys.readouterr().out.splitlines()
    assert "    uv run scripts/eval_degeneracy.py --completions outputs/rollouts.jsonl" in help_lines
