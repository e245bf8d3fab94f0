"""Per-criterion flag rates of the detector panel (binoculars_rl.panel_report): by hand on crafted results, from
a calibration file's criteria, and in eval_degeneracy's before/after report and main.py's summary."""

import importlib.util
import json
import math
import statistics
from pathlib import Path

import pytest
from binoculars_env.data import SAMPLE_DATA_FILE
from binoculars_env.reward import RewardConfig, RewardResult, score_completions

from binoculars import save_thresholds
from binoculars.panel import CRITERIA, PANEL_CRITERIA, PanelScores
from binoculars.testing.tiny import story_corpus
from binoculars_rl.panel_report import panel_rates, panel_table, panel_thresholds

ROOT = Path(__file__).resolve().parent.parent


def result(score: float, panel: PanelScores | None) -> RewardResult:
    return RewardResult(0.0, score, 2.0, 2.0, 20, 0.9, False, None, panel=panel)


def rate_by_hand(values: list[float], threshold: float, low_is_ai: bool) -> float:
    finite = [v for v in values if not math.isnan(v)]
    return sum((v < threshold) if low_is_ai else (v > threshold) for v in finite) / len(finite)


def test_rates_follow_each_criterions_rule_over_finite_values():
    results = [
        result(0.8, PanelScores(3.0, 0.5, -1.0, 1.0)),
        result(1.1, PanelScores(0.5, 2.0, -4.0, 3.0)),
        result(0.95, PanelScores(1.5, 1.2, -2.5, math.nan)),
        result(math.nan, None),  # an empty completion
    ]
    thresholds = {"binoculars": 1.0, "fast_detectgpt": 1.0, "log_rank": 1.0, "log_likelihood": -2.0}
    rates = {rate.name: rate for rate in panel_rates(results, thresholds)}
    assert list(rates) == list(CRITERIA)
    assert rates["binoculars"].flagged_as_ai_rate == rate_by_hand([0.8, 1.1, 0.95], 1.0, True) == 2 / 3
    assert rates["fast_detectgpt"].flagged_as_ai_rate == rate_by_hand([3.0, 0.5, 1.5], 1.0, False) == 2 / 3
    assert rates["log_rank"].flagged_as_ai_rate == rate_by_hand([0.5, 2.0, 1.2], 1.0, True) == 1 / 3
    assert (
        rates["log_likelihood"].flagged_as_ai_rate == rate_by_hand([-1.0, -4.0, -2.5], -2.0, False) == 1 / 3
    )
    entropy = rates["entropy"]  # no threshold calibrated: its mean, no rate
    assert entropy.flagged_as_ai_rate is None and entropy.scored == 2 and entropy.mean == pytest.approx(2.0)
    assert rates["binoculars"].scored == 3


def test_thresholds_come_from_the_calibration_files_criteria(tmp_path):
    calibrated = tmp_path / "cal.json"
    criteria = {
        name: {"thresholds": {"accuracy": i + 0.5, "low-fpr": i + 0.25}} for i, name in enumerate(CRITERIA)
    }
    save_thresholds(calibrated, {"accuracy": 0.5, "low-fpr": 0.25}, criteria=criteria)
    config = RewardConfig(calibration_file=str(calibrated))
    assert panel_thresholds(config) == {name: i + 0.5 for i, name in enumerate(CRITERIA)}
    low_fpr = config.model_copy(update={"threshold_key": "low-fpr"})
    assert panel_thresholds(low_fpr)["entropy"] == 4.25
    assert (
        panel_thresholds(config.model_copy(update={"threshold": 0.7}))["binoculars"] == 0.7
    )  # explicit wins
    old = tmp_path / "old.json"
    save_thresholds(old, {"accuracy": 0.9})
    assert panel_thresholds(RewardConfig(calibration_file=str(old))) == {"binoculars": 0.9}
    assert panel_thresholds(RewardConfig()) == {"binoculars": 1.0}


def test_two_runs_print_side_by_side():
    from rich.console import Console

    before = panel_rates([result(0.8, PanelScores(3.0, 0.5, -1.0, 1.0))], {"binoculars": 1.0})
    after = panel_rates([result(1.2, PanelScores(3.0, 0.5, -1.0, 1.0))], {"binoculars": 1.0})
    console = Console(width=200, record=True)
    console.print(panel_table({"before": before, "after": after}))
    text = console.export_text()
    assert "before" in text and "after" in text
    binoculars_line = next(line for line in text.splitlines() if "binoculars" in line)
    assert "100.0%" in binoculars_line and "0.0%" in binoculars_line


def test_eval_degeneracy_compares_flag_rates_before_and_after(tmp_path, tiny_pair, capsys):
    stories = [
        json.loads(line)["text"] for line in SAMPLE_DATA_FILE.read_text().splitlines() if line.strip()
    ][:5]
    before, after = story_corpus(5, seed=60), stories  # the tiny models' own template stories vs others
    files = {}
    for name, texts in (("before", before), ("after", after)):
        files[name] = tmp_path / f"{name}.jsonl"
        files[name].write_text("".join(json.dumps({"completion": t}) + "\n" for t in texts))
    models = {"observer_model": str(tiny_pair.observer), "performer_model": str(tiny_pair.performer)}
    results = {name: score_completions(t, RewardConfig(**models, scorer_device="cpu")) for name, t in
               (("before", before), ("after", after))}  # fmt: skip

    # thresholds at the median of both runs' values, so the rates say something
    def values(rs, name):
        return [r.score if name == "binoculars" else getattr(r.panel, name) for r in rs]

    thresholds = {n: statistics.median(values(results["before"] + results["after"], n)) for n in CRITERIA}
    calibration = tmp_path / "cal.json"
    save_thresholds(
        calibration,
        {"accuracy": thresholds["binoculars"]},
        criteria={n: {"thresholds": {"accuracy": t}} for n, t in thresholds.items()},
    )
    spec = importlib.util.spec_from_file_location("eval_degeneracy", ROOT / "scripts" / "eval_degeneracy.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    args = ["--completions", str(files["after"]), "--baseline-completions", str(files["before"])]
    args += [
        "--output",
        str(tmp_path / "r.json"),
        "--scorer-device",
        "cpu",
        "--calibration-file",
        str(calibration),
    ]
    args += ["--observer-model", models["observer_model"], "--performer-model", models["performer_model"]]
    assert script.main(args) == 0
    summary = json.loads((tmp_path / "r.json").read_text())
    for run, panel in (("after", summary["panel"]), ("before", summary["baseline"]["panel"])):
        for entry in panel:
            name = entry["name"]
            expected = rate_by_hand(values(results[run], name), thresholds[name], CRITERIA[name] == "low")
            assert entry["flagged_as_ai_rate"] == pytest.approx(expected), (run, name)
            assert entry["threshold"] == pytest.approx(thresholds[name])
    assert summary["baseline"]["completions"] == str(files["before"])
    out = capsys.readouterr().out
    assert "detector panel" in out and "baseline" in out and "after" in out
    assert all(name in out for name in PANEL_CRITERIA)
