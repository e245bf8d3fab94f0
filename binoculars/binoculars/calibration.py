"""Fit Binoculars decision thresholds on labelled text and keep the evidence.

Convention: the positive class is AI-generated text (label 1, `AI_CLASS`); human-written text is label 0.
A Binoculars score is low for AI text, so a text is **predicted AI when score < threshold**.

    samples = balanced_sample(labelled_texts, max_samples=500, seed=0)   # a list of LabelledText
    details = score_samples(bino, [s.text for s in samples], batch_size=8)
    report = build_report(samples, details, model_info={...})
    write_report(report, "results/calibration_data.json")     # + results/calibration_data.png

The report's `thresholds` mapping ({"accuracy": ..., "low-fpr": ...}) is what `binoculars.load_thresholds`
and the environment's `calibration_file` read:
  - "accuracy": the cut that maximises balanced accuracy (TPR + TNR) / 2 over the sample (= accuracy on a
    balanced sample); ties go to the lowest false-positive rate;
  - "low-fpr": the cut with the highest TPR whose false-positive rate on the human texts is at most
    `low_fpr_target` (default 1%). It is left out (with the reason in `target_fprs`) when the sample has fewer
    than 1/target human texts, because a smaller sample cannot show a false-positive rate that low.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

AI_CLASS = 1
HUMAN_CLASS = 0
DEFAULT_TARGET_FPRS = (0.0001, 0.01)
DEFAULT_LOW_FPR_TARGET = 0.01
REPORT_FORMAT = "binoculars-calibration/1"


class CalibrationDataError(ValueError):
    """The labelled data cannot be used (missing column, unknown label, empty, one class only, ...)."""


@dataclass(frozen=True)
class LabelledText:
    text: str
    label: int  # AI_CLASS (1) or HUMAN_CLASS (0)


@dataclass(frozen=True)
class SampleScore:
    """What the scorer said about one text (NaN score when the text has fewer than 2 tokens)."""

    score: float
    log_ppl: float
    x_ppl: float
    num_tokens: int


def balanced_sample(
    samples: Sequence[LabelledText], max_samples: int | None, seed: int
) -> list[LabelledText]:
    """An equal number of AI and human texts (as many as the smaller class, capped at max_samples // 2),
    drawn reproducibly with `seed` and shuffled together."""
    by_label = {label: [s for s in samples if s.label == label] for label in (AI_CLASS, HUMAN_CLASS)}
    if not samples:
        raise CalibrationDataError("no labelled texts")
    for label, name in ((AI_CLASS, "AI-generated"), (HUMAN_CLASS, "human-written")):
        if not by_label[label]:
            raise CalibrationDataError(
                f"the data has only one class: no {name} texts among {len(samples)} (both are needed)"
            )
    per_class = min(len(by_label[AI_CLASS]), len(by_label[HUMAN_CLASS]))
    if max_samples is not None:
        if max_samples < 2:
            raise CalibrationDataError(f"max_samples must be at least 2 (one per class), got {max_samples}")
        per_class = min(per_class, max_samples // 2)
    rng = random.Random(seed)
    chosen = rng.sample(by_label[AI_CLASS], per_class) + rng.sample(by_label[HUMAN_CLASS], per_class)
    rng.shuffle(chosen)
    return chosen


def score_samples(
    bino: Any, texts: Sequence[str], batch_size: int, progress: bool = True
) -> list[SampleScore]:
    """Score texts with a tqdm progress bar, `batch_size` texts per call; `bino` is a `binoculars.Binoculars`.

    Texts go to the scorer longest first (less padding per batch); results come back in input order.
    """
    from tqdm.auto import tqdm

    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
    results: list[SampleScore | None] = [None] * len(texts)
    with tqdm(total=len(texts), desc="scoring", unit="text", disable=not progress) as bar:
        for start in range(0, len(order), batch_size):
            batch = order[start : start + batch_size]
            for index, details in zip(batch, bino.score_details([texts[i] for i in batch]), strict=True):
                results[index] = SampleScore(
                    float(details.score),
                    float(details.log_ppl),
                    float(details.x_ppl),
                    int(details.num_tokens),
                )
            bar.update(len(batch))
    return results  # type: ignore[return-value]


def operating_point(scores: np.ndarray, labels: np.ndarray, threshold: float) -> dict[str, float]:
    """Metrics of the rule "AI when score < threshold" (sklearn; AI is the positive class)."""
    from sklearn.metrics import (
        accuracy_score,
        balanced_accuracy_score,
        f1_score,
        precision_score,
        recall_score,
    )

    predicted = (scores < threshold).astype(int)
    human = labels == HUMAN_CLASS
    return {
        "threshold": float(threshold),
        "tpr": float(recall_score(labels, predicted, pos_label=AI_CLASS, zero_division=0)),
        "fpr": float(predicted[human].mean()),
        "accuracy": float(accuracy_score(labels, predicted)),
        "balanced_accuracy": float(balanced_accuracy_score(labels, predicted)),
        "precision": float(precision_score(labels, predicted, pos_label=AI_CLASS, zero_division=0)),
        "f1": float(f1_score(labels, predicted, pos_label=AI_CLASS, zero_division=0)),
    }


def roc_points(scores: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(fpr, tpr, thresholds) of every cut, from sklearn's roc_curve, with thresholds for "score < t".

    sklearn predicts positive when -score >= c, i.e. score <= s with s = -c; the equivalent strict cut is
    any t in (s, next larger score]: we take the midpoint, so new texts near a cut are split evenly.
    """
    from sklearn.metrics import roc_curve

    fpr, tpr, cuts = roc_curve(labels, -scores, pos_label=AI_CLASS, drop_intermediate=False)
    distinct = np.unique(scores)
    thresholds = np.empty_like(fpr)
    for i, cut in enumerate(cuts):
        if np.isinf(cut):  # sklearn's first point: nothing predicted positive
            thresholds[i] = distinct[0]
            continue
        s = -cut
        above = distinct[distinct > s]
        thresholds[i] = (s + above[0]) / 2 if above.size else np.nextafter(s, np.inf)
    return fpr, tpr, thresholds


def min_human_samples(target_fpr: float) -> int:
    """Human texts needed before a false-positive rate of `target_fpr` can be observed at all."""
    return math.ceil(1 / target_fpr - 1e-9)


def target_fpr_point(
    scores: np.ndarray, labels: np.ndarray, target_fpr: float, roc: tuple[np.ndarray, np.ndarray, np.ndarray]
) -> dict[str, Any]:
    """The highest-TPR cut with FPR <= target, or why the sample cannot support that target."""
    if not 0 < target_fpr < 1:
        raise ValueError(f"target FPR must lie in (0, 1), got {target_fpr}")
    num_human = int((labels == HUMAN_CLASS).sum())
    needed = min_human_samples(target_fpr)
    entry: dict[str, Any] = {"target_fpr": target_fpr, "min_human_samples": needed, "num_human": num_human}
    if num_human < needed:
        return entry | {
            "supported": False,
            "threshold": None,
            "tpr": None,
            "fpr": None,
            "note": f"not supported: FPR {target_fpr:g} needs at least {needed} human texts, the sample has "
            f"{num_human} (one false positive would already be an FPR of {1 / num_human:.3g})",
        }
    fpr, tpr, thresholds = roc
    allowed = np.flatnonzero(fpr <= target_fpr + 1e-12)
    best = allowed[np.argmax(tpr[allowed])]  # first maximum: the lowest FPR among equal TPRs
    point = operating_point(scores, labels, thresholds[best])
    return entry | {"supported": True} | point


def build_report(
    samples: Sequence[LabelledText],
    sample_scores: Sequence[SampleScore],
    model_info: dict[str, Any],
    target_fprs: Sequence[float] = DEFAULT_TARGET_FPRS,
    low_fpr_target: float = DEFAULT_LOW_FPR_TARGET,
    source_info: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Every number the calibration JSON holds, computed from per-sample scores and labels.

    Texts whose score is NaN (fewer than 2 tokens) stay in `samples` with `"score": null` and are counted in
    `counts.excluded_nan`, but take no part in the ROC.
    """
    if len(samples) != len(sample_scores):
        raise ValueError(f"{len(samples)} samples but {len(sample_scores)} scores")
    if low_fpr_target not in target_fprs:
        target_fprs = sorted({*target_fprs, low_fpr_target})
    finite = [i for i, s in enumerate(sample_scores) if math.isfinite(s.score)]
    scores = np.array([sample_scores[i].score for i in finite], dtype=np.float64)
    labels = np.array([samples[i].label for i in finite], dtype=int)
    counts = {
        "total": len(samples),
        "ai": int((labels == AI_CLASS).sum()),
        "human": int((labels == HUMAN_CLASS).sum()),
        "excluded_nan": len(samples) - len(finite),
    }
    for label, name in ((AI_CLASS, "AI-generated"), (HUMAN_CLASS, "human-written")):
        if not (labels == label).any():
            raise CalibrationDataError(
                f"no {name} text has a finite score ({counts['excluded_nan']} texts scored NaN: fewer than "
                "2 tokens); both classes are needed"
            )

    from sklearn.metrics import roc_auc_score

    roc = roc_points(scores, labels)
    fpr, tpr, thresholds = roc
    best_accuracy = operating_point(scores, labels, thresholds[np.argmax(tpr - fpr)])
    num_ai, num_human = counts["ai"], counts["human"]
    f1_values = 2 * tpr * num_ai / (tpr * num_ai + fpr * num_human + num_ai)
    best_f1 = operating_point(scores, labels, thresholds[np.argmax(f1_values)])
    at_targets = [target_fpr_point(scores, labels, target, roc) for target in sorted(target_fprs)]
    low_fpr = next(entry for entry in at_targets if entry["target_fpr"] == low_fpr_target)

    chosen = {"accuracy": best_accuracy["threshold"]}
    if low_fpr["supported"]:
        chosen["low-fpr"] = low_fpr["threshold"]

    def stats(label: int) -> dict[str, float]:
        values = scores[labels == label]
        return {
            "mean": float(values.mean()),
            "std": float(values.std()),
            "min": float(values.min()),
            "max": float(values.max()),
            "median": float(np.median(values)),
        }

    return {
        "thresholds": chosen,
        "format": REPORT_FORMAT,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "models": model_info,
        "source": source_info or {},
        "convention": {
            "positive_class": "AI-generated",
            "labels": {str(AI_CLASS): "AI-generated", str(HUMAN_CLASS): "human-written"},
            "decision_rule": "predicted AI-generated when score < threshold",
            "accuracy_threshold": "maximises balanced accuracy (TPR + TNR) / 2; ties -> lowest FPR",
            "low_fpr_threshold": f"highest TPR with FPR <= {low_fpr_target:g} on the human texts",
        },
        "counts": counts,
        "auroc": float(roc_auc_score(labels, -scores)),
        "score_stats": {"ai": stats(AI_CLASS), "human": stats(HUMAN_CLASS)},
        "best_accuracy": best_accuracy,
        "best_f1": best_f1,
        "low_fpr_target": low_fpr_target,
        "target_fprs": at_targets,
        "roc": {"fpr": fpr.tolist(), "tpr": tpr.tolist(), "thresholds": thresholds.tolist()},
        "samples": [
            {"label": sample.label, **_finite_or_none(asdict(score)), "text": sample.text}
            for sample, score in zip(samples, sample_scores, strict=True)
        ],
    }


def _finite_or_none(values: dict[str, Any]) -> dict[str, Any]:
    """JSON has no NaN: write null for non-finite floats."""
    return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in values.items()}


def write_report(report: dict[str, Any], path: str | Path) -> tuple[Path, Path]:
    """Write the JSON (via `binoculars.utils.save_thresholds`) and a PNG beside it; return both paths."""
    from binoculars.utils import save_thresholds

    path = Path(path)
    rest = {k: v for k, v in report.items() if k != "thresholds"}
    save_thresholds(path, report["thresholds"], **rest)
    plot_path = path.with_suffix(".png")
    plot_report(report, plot_path)
    return path, plot_path


def plot_report(report: dict[str, Any], path: str | Path) -> None:
    """ROC curve (with the chosen operating points) and the two score histograms (with the thresholds)."""
    from matplotlib.figure import Figure

    scored = [s for s in report["samples"] if s["score"] is not None]
    ai = [s["score"] for s in scored if s["label"] == AI_CLASS]
    human = [s["score"] for s in scored if s["label"] == HUMAN_CLASS]
    points = {"accuracy": report["best_accuracy"]}
    points |= {f"FPR≤{e['target_fpr']:g}": e for e in report["target_fprs"] if e["supported"]}
    colors = ["tab:green", "tab:red", "tab:purple", "tab:brown"]
    linestyles = ["--", ":", "-.", (0, (5, 1))]  # thresholds may coincide: keep each line visible

    figure = Figure(figsize=(12, 4.8), layout="constrained")
    roc_axes, hist_axes = figure.subplots(1, 2)
    roc_axes.plot(
        report["roc"]["fpr"], report["roc"]["tpr"], color="tab:blue", label=f"AUROC {report['auroc']:.4f}"
    )
    roc_axes.plot([0, 1], [0, 1], color="grey", linestyle=":", linewidth=1)
    for (name, point), color in zip(points.items(), colors, strict=False):
        roc_axes.scatter(
            [point["fpr"]],
            [point["tpr"]],
            color=color,
            zorder=3,
            label=f"{name} (t={point['threshold']:.4f})",
        )
    roc_axes.set(
        xlabel="false-positive rate (human flagged as AI)",
        ylabel="true-positive rate (AI caught)",
        title="ROC, AI = positive class",
        xlim=(0, 1),
        ylim=(0, 1.01),
    )
    roc_axes.legend(loc="lower right", fontsize=8)

    bins = np.histogram_bin_edges(ai + human, bins=40)
    hist_axes.hist(human, bins=bins, alpha=0.6, color="tab:blue", label=f"human (n={len(human)})")
    hist_axes.hist(ai, bins=bins, alpha=0.6, color="tab:orange", label=f"AI (n={len(ai)})")
    for (name, point), color, style in zip(points.items(), colors, linestyles, strict=False):
        hist_axes.axvline(
            point["threshold"],
            color=color,
            linestyle=style,
            linewidth=2,
            label=f"{name}: {point['threshold']:.4f}",
        )
    models = report.get("models", {})
    hist_axes.set(
        xlabel="Binoculars score (AI when score < threshold)",
        ylabel="texts",
        title=f"{_short(models.get('observer', '?'))} / {_short(models.get('performer', '?'))}",
    )
    hist_axes.legend(fontsize=8)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=120)


def _short(name_or_path: str) -> str:
    """A hub id as is; a local model directory by its last component."""
    return Path(name_or_path).name if name_or_path.startswith(("/", ".", "~")) else name_or_path
