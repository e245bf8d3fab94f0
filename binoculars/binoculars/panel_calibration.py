"""Per-criterion calibration of the detector panel: a threshold pair, AUROC and scale for every criterion, and
every criterion's ROC in one figure.

    report["criteria"] = criteria_report(samples, sample_scores)      # after calibration.build_report
    write_report(report, "results/calibration_data.json")
    plot_criteria_roc(report, criteria_plot_path_for("results/calibration_data.json"))

Each criterion is calibrated exactly as the Binoculars score is (`binoculars.calibration`: the balanced-accuracy
"accuracy" cut, the "low-fpr" cut at `low_fpr_target`, the pooled within-class standard deviation as `scale`),
on its values oriented so that low is AI-like (`binoculars.panel.ai_sign`); thresholds are written back in the
criterion's own units with its decision rule (`value < threshold` or `value > threshold` is AI). The
`binoculars` entry therefore repeats the report's top-level thresholds and scale.

    "criteria": {"fast_detectgpt": {"direction": "high", "decision_rule": "predicted AI-generated when
                 fast_detectgpt > threshold", "thresholds": {"accuracy": 1.9, "low-fpr": 3.2}, "scale": 0.8,
                 "auroc": 0.93, "target_fprs": [...], "roc": {"fpr": [...], "tpr": [...]}}, ...}
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from binoculars.calibration import (
    DEFAULT_LOW_FPR_TARGET,
    DEFAULT_TARGET_FPRS,
    CalibrationDataError,
    LabelledText,
    SampleScore,
    best_balanced_accuracy_cut,
    pooled_within_class_std,
    roc_points,
    target_fpr_point,
)
from binoculars.panel import CRITERIA, ai_sign, decision_rule


def criterion_values(sample_scores: Sequence[SampleScore]) -> dict[str, list[float]]:
    """criterion -> one value per sample (NaN where unscored); a CalibrationDataError when a sample has no panel."""
    if any(s.panel is None for s in sample_scores):
        raise CalibrationDataError(
            "per-criterion calibration needs the detector panel of every sample; these scores carry none "
            "(scored with Binoculars(panel=False), or resumed from a checkpoint written before the panel)"
        )
    values = {"binoculars": [s.score for s in sample_scores]}
    return values | {
        name: [s.panel.as_dict()[name] for s in sample_scores] for name in CRITERIA if name != "binoculars"
    }


def criterion_calibration(
    name: str,
    values: Sequence[float],
    labels: Sequence[int],
    target_fprs: Sequence[float] = DEFAULT_TARGET_FPRS,
    low_fpr_target: float = DEFAULT_LOW_FPR_TARGET,
) -> dict[str, Any]:
    """Thresholds, scale, AUROC, target-FPR points and ROC of one criterion (NaN values left out)."""
    from sklearn.metrics import roc_auc_score

    sign = ai_sign(name)
    finite = [i for i, v in enumerate(values) if math.isfinite(v)]
    oriented = np.array([sign * values[i] for i in finite], dtype=np.float64)
    finite_labels = np.array([labels[i] for i in finite], dtype=int)
    if len(set(finite_labels.tolist())) < 2:
        raise CalibrationDataError(f"criterion {name}: both classes need finite values")
    roc = roc_points(oriented, finite_labels)
    fpr, tpr, cuts = roc
    targets = sorted({*target_fprs, low_fpr_target})
    at_targets = []
    for target in targets:
        entry = target_fpr_point(oriented, finite_labels, target, roc)
        if entry["threshold"] is not None:
            entry["threshold"] = sign * entry["threshold"]
        at_targets.append(entry)
    thresholds = {"accuracy": sign * best_balanced_accuracy_cut(roc)}
    low_fpr = next(entry for entry in at_targets if entry["target_fpr"] == low_fpr_target)
    if low_fpr["supported"]:
        thresholds["low-fpr"] = low_fpr["threshold"]
    return {
        "direction": CRITERIA[name],
        "decision_rule": decision_rule(name),
        "thresholds": thresholds,
        "scale": pooled_within_class_std(oriented, finite_labels),
        "auroc": float(roc_auc_score(finite_labels, -oriented)),
        "excluded_nan": len(values) - len(finite),
        "target_fprs": at_targets,
        "roc": {"fpr": fpr.tolist(), "tpr": tpr.tolist(), "thresholds": (sign * cuts).tolist()},
    }


def criteria_report(
    samples: Sequence[LabelledText],
    sample_scores: Sequence[SampleScore],
    target_fprs: Sequence[float] = DEFAULT_TARGET_FPRS,
    low_fpr_target: float = DEFAULT_LOW_FPR_TARGET,
) -> dict[str, dict[str, Any]]:
    """`criterion_calibration` of every criterion of the panel: the calibration JSON's `criteria` object."""
    if len(samples) != len(sample_scores):
        raise ValueError(f"{len(samples)} samples but {len(sample_scores)} scores")
    labels = [s.label for s in samples]
    return {
        name: criterion_calibration(name, values, labels, target_fprs, low_fpr_target)
        for name, values in criterion_values(sample_scores).items()
    }


def criteria_plot_path_for(report_path: str | Path) -> Path:
    """Where calibrate.py puts the multi-ROC figure: beside the JSON, suffix .criteria.png."""
    return Path(report_path).with_suffix(".criteria.png")


def plot_criteria_roc(report: dict[str, Any], path: str | Path) -> None:
    """Every criterion's ROC curve (AI = positive class) in one figure, AUROC and accuracy cut in the legend."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(6.4, 5.6), layout="constrained")
    axes = figure.subplots()
    for name, entry in report["criteria"].items():
        rule = "<" if entry["direction"] == "low" else ">"
        axes.plot(
            entry["roc"]["fpr"],
            entry["roc"]["tpr"],
            linewidth=2.2 if name == "binoculars" else 1.4,
            label=f"{name}: AUROC {entry['auroc']:.3f} (AI if {rule} {entry['thresholds']['accuracy']:.4g})",
        )
    axes.plot([0, 1], [0, 1], color="grey", linestyle=":", linewidth=1)
    counts = report.get("counts", {})
    axes.set(
        xlabel="false-positive rate (human flagged as AI)",
        ylabel="true-positive rate (AI caught)",
        title=f"Detector panel ROC ({counts.get('ai', '?')} AI + {counts.get('human', '?')} human texts)",
        xlim=(0, 1),
        ylim=(0, 1.01),
    )
    axes.legend(loc="lower right", fontsize=8)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=120)
