"""Fit Binoculars decision thresholds on labelled text and keep the evidence.

Convention: the positive class is AI-generated text (label 1, `AI_CLASS`); human-written text is label 0.
A Binoculars score is low for AI text, so a text is **predicted AI when score < threshold**.

    samples = balanced_sample(labelled_texts, max_samples=500, seed=0)   # a list of LabelledText
    details = score_samples(bino, [s.text for s in samples], batch_size=8)
    report = build_report(samples, details, model_info={...})
    write_report(report, "results/calibration_data.json")     # + results/calibration_data.png

To survive an interruption, checkpoint the scores as they come and resume from them:

    checkpoint = ScoreCheckpoint("results/calibration_data.scores.jsonl", samples)
    checkpoint.start(settings)       # a fresh run (done = {}); to continue one: done = checkpoint.resume(settings)
    details = score_samples(bino, texts, 8, done=done, on_scored=checkpoint.append)

The report's `thresholds` mapping ({"accuracy": ..., "low-fpr": ...}) is what `binoculars.load_thresholds`
and the environment's `calibration_file` read:
  - "accuracy": the cut that maximises balanced accuracy (TPR + TNR) / 2 over the sample (= accuracy on a
    balanced sample); ties go to the lowest false-positive rate;
  - "low-fpr": the cut with the highest TPR whose false-positive rate on the human texts is at most
    `low_fpr_target` (default 1%). It is left out (with the reason in `target_fprs`) when the sample has fewer
    than 1/target human texts, because a smaller sample cannot show a false-positive rate that low.

The report's `scale` (read by `binoculars.load_scale` and the environment's reward) is the pooled
within-class standard deviation of the finite scores, `pooled_within_class_std`:

    scale = sqrt((sum_ai (s - mean_ai)^2 + sum_human (s - mean_human)^2) / (n_ai + n_human - 2))

i.e. sqrt(((n_ai - 1) var_ai + (n_human - 1) var_human) / (n_ai + n_human - 2)) with sample variances
(ddof 1). It is how far one text's score typically lies from its class mean, so `(score - threshold) / scale`
measures a completion's margin in units of the detector's own noise. It must be positive and finite: a sample
with fewer than 3 finite scores, or with every class's scores all equal, fails calibration.

The report's `max_log_ppl` (read by `binoculars.utils.load_max_log_ppl` and the environment's fluency guard) is
the fluency ceiling of this model pair, `fluency_ceiling`: the `FLUENCY_CEILING_QUANTILE` (99.5%) quantile of the
human texts' performer log-perplexities, taken as one of the values (an order statistic, never interpolated).
Text above it is less fluent than 99.5% of human text to this performer; a new human text from the same source
lands above it with probability about 0.5% (1/(n + 1) when the sample has under 200 human texts and the
ceiling is their maximum). The default pair's fixed ceiling (5.0) does not carry over to other pairs: each
model has its own perplexity scale.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from binoculars.panel import PanelScores

AI_CLASS = 1
HUMAN_CLASS = 0
DEFAULT_TARGET_FPRS = (0.0001, 0.01)
DEFAULT_LOW_FPR_TARGET = 0.01
FLUENCY_CEILING_QUANTILE = 0.995
REPORT_FORMAT = "binoculars-calibration/1"
CHECKPOINT_FORMAT = "binoculars-calibration-scores/1"


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
    panel: PanelScores | None = None
    """The other detectors' criteria (`binoculars.panel`), for per-criterion calibration; None when the scorer
    computed none."""


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
    bino: Any,
    texts: Sequence[str],
    batch_size: int,
    progress: bool = True,
    done: Mapping[int, SampleScore] | None = None,
    on_scored: Callable[[list[tuple[int, SampleScore]]], None] | None = None,
) -> list[SampleScore]:
    """Score texts with a tqdm progress bar, `batch_size` texts per call; `bino` is a `binoculars.Binoculars`.

    Texts go to the scorer longest first (less padding per batch); results come back in input order.
    `done` (index -> score, e.g. from `ScoreCheckpoint.resume`) are kept as they are; a batch whose texts are
    all done is skipped, any other is scored whole, so every text meets the same batch-mates as in one
    uninterrupted run with the same `batch_size`. `on_scored` gets each batch's new (index, score) pairs.
    """
    from tqdm.auto import tqdm

    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    done = dict(done or {})
    order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
    results: list[SampleScore | None] = [done.get(i) for i in range(len(texts))]
    with tqdm(total=len(texts), initial=len(done), desc="scoring", unit="text", disable=not progress) as bar:
        for start in range(0, len(order), batch_size):
            batch = order[start : start + batch_size]
            if all(i in done for i in batch):
                continue
            details = bino.score_details([texts[i] for i in batch])
            new = [(i, _sample_score(d)) for i, d in zip(batch, details, strict=True) if i not in done]
            for index, score in new:
                results[index] = score
            if on_scored is not None:
                on_scored(new)
            bar.update(len(new))
    return results  # type: ignore[return-value]


def _sample_score(details: Any) -> SampleScore:
    return SampleScore(
        float(details.score),
        float(details.log_ppl),
        float(details.x_ppl),
        int(details.num_tokens),
        details.panel,
    )


class CheckpointError(ValueError):
    """A score checkpoint that cannot be used for this run (other settings or samples, unreadable)."""


def text_key(text: str) -> str:
    """A short hash of a text: what a checkpointed score is matched by (with its index)."""
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:16]


def samples_fingerprint(samples: Sequence[LabelledText]) -> str:
    """A hash of the sample set: every text and label, in order."""
    digest = hashlib.sha256()
    for sample in samples:
        digest.update(f"{sample.label}:{text_key(sample.text)}\n".encode())
    return digest.hexdigest()


class ScoreCheckpoint:
    """Scores appended to a JSON-lines file as they are computed, so an interrupted run loses nothing.

    The first line is a header: the checkpoint format, the run's `settings` (model pair, max tokens, ...) and
    the sample set's fingerprint. Each further line is one text's score, keyed by its index in the sample set
    and `text_key` of its text (NaN written as null). Each batch is one write, flushed at once.
    """

    def __init__(self, path: str | Path, samples: Sequence[LabelledText]):
        self.path = Path(path)
        self.keys = [text_key(s.text) for s in samples]
        self.fingerprint = samples_fingerprint(samples)
        self.saved = 0  # scores in the file

    def start(self, settings: dict[str, Any]) -> None:
        """Create the file with its header; an existing file is never overwritten."""
        header = {
            "format": CHECKPOINT_FORMAT,
            "settings": settings,
            "samples": self.fingerprint,
            "num_samples": len(self.keys),
        }
        with self.path.open("x", encoding="utf-8") as file:
            file.write(json.dumps(header) + "\n")

    def resume(self, settings: dict[str, Any]) -> dict[int, SampleScore]:
        """The scores saved so far (index -> score), once the header matches `settings` and this sample set.

        A last line cut off mid-write (the process was killed) is removed from the file, and its text is
        scored again; any other unreadable or mismatched line is a CheckpointError."""
        lines = self._complete_lines()
        if not lines:
            raise CheckpointError(
                f"checkpoint {self.path} is empty (no header line): delete it to start over"
            )
        self._check_header(self._parse(lines[0], 1), settings)
        scores: dict[int, SampleScore] = {}
        for number, line in enumerate(lines[1:], start=2):
            index, score = self._entry(self._parse(line, number), number)
            if index in scores:
                raise CheckpointError(
                    f"checkpoint {self.path} line {number}: sample {index} is there twice (two runs writing "
                    "to one checkpoint?)"
                )
            scores[index] = score
        self.saved = len(scores)
        return scores

    def check_settings(self, settings: dict[str, Any]) -> None:
        """Compare more settings (known only later, e.g. the dtype models load in) with the header's."""
        lines = self._complete_lines()
        self._check_header(self._parse(lines[0], 1), settings)

    def append(self, scored: Sequence[tuple[int, SampleScore]]) -> None:
        """Add (index, score) pairs in one write, flushed to the operating system before returning."""
        text = "".join(
            json.dumps({"index": i, "text_key": self.keys[i], **_finite_or_none(asdict(s))}) + "\n"
            for i, s in scored
        )
        with self.path.open("a", encoding="utf-8") as file:
            file.write(text)
            file.flush()
        self.saved += len(scored)

    def _complete_lines(self) -> list[str]:
        data = self.path.read_bytes()
        complete = data[: data.rfind(b"\n") + 1]
        if len(complete) < len(data):
            with self.path.open("r+b") as file:
                file.truncate(len(complete))
        return complete.decode("utf-8").splitlines()

    def _parse(self, line: str, number: int) -> dict[str, Any]:
        try:
            value = json.loads(line)
        except json.JSONDecodeError as error:
            raise CheckpointError(f"checkpoint {self.path} line {number} is not JSON: {error}") from None
        if not isinstance(value, dict):
            raise CheckpointError(f"checkpoint {self.path} line {number} is not a JSON object")
        return value

    def _check_header(self, header: dict[str, Any], settings: dict[str, Any]) -> None:
        if header.get("format") != CHECKPOINT_FORMAT:
            raise CheckpointError(
                f"{self.path} is not a score checkpoint of this format ({CHECKPOINT_FORMAT}): first line "
                f"has format {header.get('format')!r}"
            )
        saved = header.get("settings", {})
        differ = [f"{k} {saved.get(k)!r} (now {v!r})" for k, v in settings.items() if saved.get(k) != v]
        if header.get("samples") != self.fingerprint:
            differ.append(f"another sample set ({header.get('num_samples')} texts; now {len(self.keys)})")
        if differ:
            raise CheckpointError(
                f"checkpoint {self.path} was made with {'; '.join(differ)}: resume with the same settings "
                "and data, or move the checkpoint away to start over"
            )

    def _entry(self, entry: dict[str, Any], number: int) -> tuple[int, SampleScore]:
        index = entry.get("index")
        if not isinstance(index, int) or not 0 <= index < len(self.keys):
            raise CheckpointError(f"checkpoint {self.path} line {number}: index {index!r} is out of range")
        if entry.get("text_key") != self.keys[index]:
            raise CheckpointError(
                f"checkpoint {self.path} line {number}: the text of sample {index} differs from the one scored"
            )
        try:
            values = {f: entry[f] for f in ("score", "log_ppl", "x_ppl", "num_tokens")}
        except KeyError as missing:
            raise CheckpointError(f"checkpoint {self.path} line {number} has no {missing}") from None
        panel = entry.get("panel")
        return index, SampleScore(
            *(math.nan if values[f] is None else float(values[f]) for f in ("score", "log_ppl", "x_ppl")),
            int(values["num_tokens"]),
            None
            if panel is None
            else PanelScores(**{k: math.nan if v is None else v for k, v in panel.items()}),
        )


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


def best_balanced_accuracy_cut(roc: tuple[np.ndarray, np.ndarray, np.ndarray]) -> float:
    """The threshold of `roc_points` output that maximises TPR - FPR, i.e. balanced accuracy; ties go to the
    first (lowest-FPR) cut. This is the calibration's "accuracy" threshold."""
    fpr, tpr, thresholds = roc
    return float(thresholds[np.argmax(tpr - fpr)])


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


def pooled_within_class_std(scores: np.ndarray, labels: np.ndarray) -> float:
    """The pooled within-class standard deviation of the scores (see the module docstring): the reward scale.

    A CalibrationDataError when it is undefined (fewer than 3 scores, so no degree of freedom is left after the
    two class means), zero (every class's scores all equal) or not finite."""
    classes = [scores[labels == label] for label in (AI_CLASS, HUMAN_CLASS)]
    degrees_of_freedom = sum(values.size - 1 for values in classes)
    if degrees_of_freedom < 1:
        raise CalibrationDataError(
            f"the reward scale (pooled within-class standard deviation) needs at least 3 finite scores, "
            f"got {scores.size} ({' + '.join(str(values.size) for values in classes)} AI + human)"
        )
    squares = sum(float(((values - values.mean()) ** 2).sum()) for values in classes)
    scale = math.sqrt(squares / degrees_of_freedom)
    if not (math.isfinite(scale) and scale > 0):
        raise CalibrationDataError(
            f"the reward scale (pooled within-class standard deviation of the scores) is {scale!r}; it must be "
            "positive and finite (are all the texts of each class the same?)"
        )
    return scale


def fluency_ceiling(human_log_ppls: Sequence[float], quantile: float = FLUENCY_CEILING_QUANTILE) -> float:
    """The `quantile` of the human texts' finite log-perplexities, as one of them (numpy's "higher" order
    statistic): the calibrated `max_log_ppl` (see the module docstring)."""
    if not 0 < quantile <= 1:
        raise ValueError(f"fluency ceiling quantile must be in (0, 1], got {quantile}")
    values = np.array([v for v in human_log_ppls if math.isfinite(v)], dtype=np.float64)
    if values.size == 0:
        raise CalibrationDataError("the fluency ceiling needs at least one human text with a finite log-ppl")
    return float(np.quantile(values, quantile, method="higher"))


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
    `counts.excluded_nan`, but take no part in the ROC or the `scale`.
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

    scale = pooled_within_class_std(scores, labels)
    ceiling = fluency_ceiling([sample_scores[i].log_ppl for i in finite if samples[i].label == HUMAN_CLASS])
    roc = roc_points(scores, labels)
    fpr, tpr, thresholds = roc
    best_accuracy = operating_point(scores, labels, best_balanced_accuracy_cut(roc))
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
        "scale": scale,
        "max_log_ppl": ceiling,
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
            "scale": "pooled within-class standard deviation of the finite scores: sqrt((sum over AI texts of "
            "(score - AI mean)^2 + sum over human texts of (score - human mean)^2) / (n_ai + n_human - 2))",
            "max_log_ppl": f"fluency ceiling: the {FLUENCY_CEILING_QUANTILE:g} quantile (numpy 'higher', one of the "
            "values) of the human texts' performer log-perplexities",
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
            {
                "label": sample.label,
                **_finite_or_none(asdict(score)),
                "key": text_key(sample.text),
                "text": sample.text,
            }
            for sample, score in zip(samples, sample_scores, strict=True)
        ],
    }


def _finite_or_none(values: dict[str, Any]) -> dict[str, Any]:
    """JSON has no NaN: write null for non-finite floats (in nested objects too, e.g. a sample's panel)."""

    def plain(value: Any) -> Any:
        if isinstance(value, dict):
            return _finite_or_none(value)
        return None if isinstance(value, float) and not math.isfinite(value) else value

    return {k: plain(v) for k, v in values.items()}


def write_report(report: dict[str, Any], path: str | Path) -> tuple[Path, Path]:
    """Write the JSON (via `binoculars.utils.save_thresholds`) and a PNG beside it; return both paths."""
    from binoculars.utils import save_thresholds

    path = Path(path)
    rest = {k: v for k, v in report.items() if k != "thresholds"}
    save_thresholds(path, report["thresholds"], **rest)
    plot_path = plot_path_for(path)
    plot_report(report, plot_path)
    return path, plot_path


def plot_path_for(report_path: str | Path) -> Path:
    """Where `write_report` puts the PNG: beside the JSON, suffix .png."""
    return Path(report_path).with_suffix(".png")


def checkpoint_path_for(report_path: str | Path) -> Path:
    """Where calibrate.py checkpoints the scores of the report it is computing: beside it, .scores.jsonl."""
    return Path(report_path).with_suffix(".scores.jsonl")


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
