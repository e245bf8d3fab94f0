"""Per-criterion calibration of the detector panel (binoculars.panel_calibration, calibrate.py's `criteria` and
multi-ROC figure): every threshold, AUROC and scale recomputed here from the saved values without scikit-learn,
each under its criterion's own decision rule."""

from __future__ import annotations

import json
import math
import random
import statistics
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from binoculars.calibration import AI_CLASS, HUMAN_CLASS, CalibrationDataError, LabelledText, SampleScore
from binoculars.panel import CRITERIA, PANEL_CRITERIA, PanelScores
from binoculars.panel_calibration import criteria_report
from binoculars.testing.tiny import story_corpus

REPO = Path(__file__).resolve().parents[1]


def predicted_ai(name: str, values: np.ndarray, threshold: float) -> np.ndarray:
    """The documented rule, written out per direction."""
    return values < threshold if CRITERIA[name] == "low" else values > threshold


def balanced_accuracy(name: str, values: np.ndarray, labels: np.ndarray, threshold: float) -> float:
    ai = predicted_ai(name, values, threshold)
    return (ai[labels == AI_CLASS].mean() + (~ai[labels == HUMAN_CLASS]).mean()) / 2


def auroc_by_pairs(name: str, values: np.ndarray, labels: np.ndarray) -> float:
    """P(an AI text is more AI-like than a human text under the criterion's direction), ties one half."""
    ai, human = values[labels == AI_CLASS], values[labels == HUMAN_CLASS]
    more = ai[:, None] < human[None, :] if CRITERIA[name] == "low" else ai[:, None] > human[None, :]
    return float((more.sum() + 0.5 * (ai[:, None] == human[None, :]).sum()) / (ai.size * human.size))


def pooled_std(values: np.ndarray, labels: np.ndarray) -> float:
    by_class = [values[labels == label].tolist() for label in (AI_CLASS, HUMAN_CLASS)]
    squares = sum((len(v) - 1) * statistics.variance(v) for v in by_class)
    return math.sqrt(squares / (len(values) - 2))


def check_criterion(name: str, entry: dict, values: np.ndarray, labels: np.ndarray) -> None:
    finite = np.isfinite(values)
    values, labels = values[finite], labels[finite]
    distinct = np.unique(values)
    candidates = np.concatenate([[distinct[0] - 1], (distinct[:-1] + distinct[1:]) / 2, [distinct[-1] + 1]])
    best = max(balanced_accuracy(name, values, labels, t) for t in candidates)
    assert balanced_accuracy(name, values, labels, entry["thresholds"]["accuracy"]) == pytest.approx(best)
    assert entry["auroc"] == pytest.approx(auroc_by_pairs(name, values, labels))
    assert entry["scale"] == pytest.approx(pooled_std(values, labels), rel=1e-12)
    assert entry["direction"] == CRITERIA[name] and name in entry["decision_rule"]
    if "low-fpr" in entry["thresholds"]:
        ai = predicted_ai(name, values, entry["thresholds"]["low-fpr"])
        assert ai[labels == HUMAN_CLASS].mean() <= 0.1 + 1e-12


def synthetic(n: int = 20, seed: int = 0) -> tuple[list[LabelledText], list[SampleScore]]:
    """Overlapping classes: AI text is more AI-like under each criterion's direction, on average."""
    rng = random.Random(seed)
    samples, scores = [], []
    for i in range(2 * n):
        label = i % 2
        shift = 1.0 if label == AI_CLASS else 0.0  # AI: low binoculars/log_rank/entropy, high fdg/likelihood
        panel = PanelScores(
            fast_detectgpt=rng.gauss(2 * shift, 1),
            log_rank=rng.gauss(1.5 - shift, 0.6),
            log_likelihood=rng.gauss(-3 + shift, 0.8),
            entropy=rng.gauss(3 - shift, 0.9),
        )
        samples.append(LabelledText(f"text {i}", label))
        scores.append(SampleScore(rng.gauss(1 - 0.2 * shift, 0.15), 2.0, 2.0, 30, panel))
    scores.append(SampleScore(math.nan, math.nan, math.nan, 1, PanelScores.nan()))
    samples.append(LabelledText("x", AI_CLASS))
    return samples, scores


def test_every_criterion_is_calibrated_under_its_own_decision_rule():
    samples, scores = synthetic()
    report = criteria_report(samples, scores, target_fprs=[0.1], low_fpr_target=0.1)
    assert list(report) == list(CRITERIA)
    labels = np.array([s.label for s in samples])
    for name, entry in report.items():
        values = np.array([s.score if name == "binoculars" else getattr(s.panel, name) for s in scores])
        check_criterion(name, entry, values, labels)
        assert entry["excluded_nan"] == 1 and entry["auroc"] > 0.6, name
        assert set(entry["thresholds"]) == {"accuracy", "low-fpr"}


def test_a_high_is_ai_criterion_flips_the_rule_not_the_auroc():
    samples, scores = synthetic(seed=3)
    flipped = [
        SampleScore(s.score, s.log_ppl, s.x_ppl, s.num_tokens, PanelScores(
            -s.panel.fast_detectgpt, s.panel.log_rank, s.panel.log_likelihood, s.panel.entropy))
        for s in scores
    ]  # fmt: skip
    report, negated = criteria_report(samples, scores), criteria_report(samples, flipped)
    # fast_detectgpt is high = AI: negated values with the same rule make a worse-than-chance detector
    assert negated["fast_detectgpt"]["auroc"] == pytest.approx(1 - report["fast_detectgpt"]["auroc"])


def test_scores_without_the_panel_cannot_be_calibrated_per_criterion():
    samples, scores = synthetic()
    with pytest.raises(CalibrationDataError, match="needs the detector panel"):
        criteria_report(samples, [SampleScore(s.score, 2.0, 2.0, 30) for s in scores])


def test_cli_writes_per_criterion_thresholds_and_the_multi_roc_figure(tiny_pair, tmp_path):
    """AI: the template stories the tiny models were trained on; human: the same words shuffled."""
    rng = random.Random(1)
    ai = story_corpus(12, seed=40)
    human = [" ".join(rng.sample(s.split(), len(s.split()))) for s in story_corpus(12, seed=41)]
    data = tmp_path / "labelled.jsonl"
    rows = [{"text": t, "label": "ai"} for t in ai] + [{"text": t, "label": "human"} for t in human]
    data.write_text("".join(json.dumps(row) + "\n" for row in rows))
    output = tmp_path / "cal.json"
    result = subprocess.run(
        [
            sys.executable,
            str(REPO / "scripts" / "calibrate.py"),
            f"--data-file={data}",
            f"--observer={tiny_pair.observer}",
            f"--performer={tiny_pair.performer}",
            "--max-samples=24",
            "--batch-size=4",
            f"--output={output}",
            "--low-fpr-target=0.1",
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(output.read_text())
    criteria = report["criteria"]
    assert list(criteria) == list(CRITERIA)
    assert criteria["binoculars"]["thresholds"] == report["thresholds"]
    assert criteria["binoculars"]["scale"] == pytest.approx(report["scale"], rel=1e-12)
    assert criteria["binoculars"]["auroc"] == pytest.approx(report["auroc"])
    labels = np.array([s["label"] for s in report["samples"]])
    for name in PANEL_CRITERIA:
        values = np.array([s["panel"][name] for s in report["samples"]], dtype=float)
        check_criterion(name, criteria[name], values, labels)
        assert f"  {name}" in result.stdout
    png = output.with_suffix(".criteria.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and str(png) in result.stdout
