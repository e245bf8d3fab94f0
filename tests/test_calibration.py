"""Calibration: labelled data -> scores -> ROC, thresholds, JSON and PNG (binoculars.calibration, calibrate.py).

The labelled fixture is separable by construction for the tiny pair: "AI" texts are the tiny performer's own
greedy continuations (lowest possible performer log-ppl), "human" texts are its anti-greedy continuations (each
next token the performer's *least* likely one), so Binoculars must rank every AI text below every human text.
Every number of the report is recomputed here from the saved per-sample scores without scikit-learn.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import shlex
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
from binoculars_env.data import INSTRUCTION, DataConfig, story_beginning

from binoculars import DEFAULT_OBSERVER, DEFAULT_PERFORMER, Binoculars, load_thresholds, save_thresholds
from binoculars.calibration import (
    SampleScore,
    balanced_sample,
    build_report,
    checkpoint_path_for,
    fluency_ceiling,
    roc_points,
    score_samples,
    text_key,
    write_report,
)
from binoculars.testing.tiny import story_corpus
from binoculars.utils import load_max_log_ppl, load_scale
from binoculars_rl import calibration_sources
from binoculars_rl.calibration_sources import (
    AI_CLASS,
    ALL_DOMAINS,
    GHOSTBUSTER_CREATIVE_DOMAIN,
    GHOSTBUSTER_DATASET,
    GHOSTBUSTER_DOMAIN_COLUMN,
    HUMAN_CLASS,
    CalibrationDataError,
    LabelledText,
    chat_continuations,
    load_labelled_file,
    load_labelled_hub,
    policy_vs_human,
)
from binoculars_rl.smoke.preflight import OFFLINE_VARIABLES, hub_problem, work_offline_if_hub_unreachable

REPO = Path(__file__).resolve().parents[1]
PER_CLASS = 30


def performer_texts(performer_path: Path, count: int, anti_greedy: bool) -> list[str]:
    """Greedy (most likely) or anti-greedy (least likely) 40-token continuations of random 2-token prompts."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, LogitsProcessor

    tokenizer = AutoTokenizer.from_pretrained(performer_path)
    model = AutoModelForCausalLM.from_pretrained(performer_path)
    special = sorted(set(tokenizer.all_special_ids))
    ordinary = torch.tensor([i for i in range(len(tokenizer)) if i not in special])

    class LeastLikely(LogitsProcessor):
        def __call__(self, input_ids, scores):
            flipped = -scores
            flipped[:, special] = -math.inf
            return flipped

    prompts = ordinary[torch.randint(len(ordinary), (count, 2), generator=torch.Generator().manual_seed(7))]
    output = model.generate(
        prompts,
        attention_mask=torch.ones_like(prompts),
        max_new_tokens=40,
        do_sample=False,
        suppress_tokens=special,
        pad_token_id=tokenizer.pad_token_id,
        logits_processor=[LeastLikely()] if anti_greedy else None,
    )
    return tokenizer.batch_decode(output, skip_special_tokens=True)


@pytest.fixture(scope="module")
def separable_file(tiny_pair, tmp_path_factory) -> Path:
    """jsonl with `text` and `label` ("ai" / "human"), plus a few unrelated rows of the other label spelling."""
    ai = performer_texts(tiny_pair.performer, PER_CLASS, anti_greedy=False)
    human = performer_texts(tiny_pair.performer, PER_CLASS, anti_greedy=True)
    path = tmp_path_factory.mktemp("calibration") / "separable.jsonl"
    rows = [{"text": t, "label": "ai"} for t in ai] + [{"text": t, "label": "human"} for t in human]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


@pytest.fixture(scope="module")
def bino(tiny_pair) -> Binoculars:
    return Binoculars(tiny_pair.observer, tiny_pair.performer, thresholds={"accuracy": 1.0, "low-fpr": 1.0})


# --- independent recomputations (no scikit-learn) -------------------------------------------------------------
def auroc_by_pairs(scores: np.ndarray, labels: np.ndarray) -> float:
    """P(an AI text scores lower than a human text), ties counting one half (Mann-Whitney)."""
    ai, human = scores[labels == AI_CLASS], scores[labels == HUMAN_CLASS]
    lower = (ai[:, None] < human[None, :]).sum() + 0.5 * (ai[:, None] == human[None, :]).sum()
    return float(lower / (ai.size * human.size))


def rates(scores: np.ndarray, labels: np.ndarray, threshold: float) -> tuple[float, float]:
    """(TPR, FPR) of "AI when score < threshold"."""
    predicted_ai = scores < threshold
    return float(predicted_ai[labels == AI_CLASS].mean()), float(predicted_ai[labels == HUMAN_CLASS].mean())


def candidate_thresholds(scores: np.ndarray) -> np.ndarray:
    """Every distinct decision the rule can make: below all, between neighbours, above all."""
    distinct = np.unique(scores)
    return np.concatenate([[distinct[0] - 1], (distinct[:-1] + distinct[1:]) / 2, [distinct[-1] + 1]])


def scores_and_labels(report: dict) -> tuple[np.ndarray, np.ndarray]:
    scored = [s for s in report["samples"] if s["score"] is not None]
    return np.array([s["score"] for s in scored]), np.array([s["label"] for s in scored])


def pooled_std_by_statistics(report: dict) -> float:
    """sqrt(sum over classes of (n - 1) * sample variance / (n_ai + n_human - 2)), from the saved samples."""
    by_class = [
        [s["score"] for s in report["samples"] if s["label"] == label and s["score"] is not None]
        for label in (AI_CLASS, HUMAN_CLASS)
    ]
    squares = sum((len(values) - 1) * statistics.variance(values) for values in by_class)
    return math.sqrt(squares / (sum(len(values) for values in by_class) - 2))


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(REPO / "scripts" / "calibrate.py"), *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=600,
    )


# --- end to end ------------------------------------------------------------------------------------------------
def test_cli_calibrates_separable_jsonl_and_every_number_checks_out(
    tiny_pair, separable_file, bino, tmp_path
):
    output = tmp_path / "out" / "calibration.json"
    result = run_cli(
        f"--data-file={separable_file}",
        f"--observer={tiny_pair.observer}",
        f"--performer={tiny_pair.performer}",
        "--max-samples=40",
        "--batch-size=3",
        f"--output={output}",
        "--target-fpr",
        "0.01",
        "0.05",
        "--low-fpr-target=0.05",
    )
    assert result.returncode == 0, result.stderr
    assert "scoring" in result.stderr  # the tqdm bar
    report = json.loads(output.read_text())

    # 20 + 20 drawn from 30 + 30; every sample is one of the file's texts with its label.
    assert report["counts"] == {"total": 40, "ai": 20, "human": 20, "excluded_nan": 0}
    source = {(r["text"], r["label"]) for r in map(json.loads, separable_file.read_text().splitlines())}
    for sample in report["samples"]:
        assert (sample["text"], "ai" if sample["label"] == AI_CLASS else "human") in source
        assert sample["key"] == text_key(sample["text"])  # what a held-out evaluation matches texts by
    # Saved scores are the scorer's own scores of those texts (order kept despite length-sorted batching).
    texts = [s["text"] for s in report["samples"]]
    np.testing.assert_allclose([s["score"] for s in report["samples"]], bino.compute_score(texts), rtol=1e-6)
    assert report["models"]["observer"] == str(tiny_pair.observer)
    assert report["models"]["dtype"] == "float32" and report["models"]["max_token_observed"] == 512

    scores, labels = scores_and_labels(report)
    assert (
        report["auroc"] == pytest.approx(auroc_by_pairs(scores, labels)) == 1.0
    )  # separable by construction

    # Accuracy threshold: best balanced accuracy of every possible cut; here it must split the classes exactly.
    candidates = candidate_thresholds(scores)
    balanced = [(tpr + 1 - fpr) / 2 for tpr, fpr in (rates(scores, labels, t) for t in candidates)]
    accuracy_threshold = report["thresholds"]["accuracy"]
    tpr, fpr = rates(scores, labels, accuracy_threshold)
    assert (tpr + 1 - fpr) / 2 == pytest.approx(max(balanced)) == 1.0
    assert scores[labels == AI_CLASS].max() < accuracy_threshold < scores[labels == HUMAN_CLASS].min()
    assert report["best_accuracy"]["accuracy"] == 1.0 and report["best_accuracy"]["f1"] == 1.0

    # Target FPRs: 5% needs >= 20 human texts (supported), 1% needs >= 100 (not supported, and said so).
    by_target = {entry["target_fpr"]: entry for entry in report["target_fprs"]}
    low = by_target[0.05]
    assert low["supported"] and report["thresholds"]["low-fpr"] == low["threshold"]
    tpr, fpr = rates(scores, labels, low["threshold"])
    best_tpr = max(t for t, f in (rates(scores, labels, c) for c in candidates) if f <= 0.05)
    assert (low["tpr"], low["fpr"]) == (pytest.approx(tpr), pytest.approx(fpr))
    assert fpr <= 0.05 and tpr == best_tpr == 1.0
    unsupported = by_target[0.01]
    assert not unsupported["supported"] and unsupported["threshold"] is None and unsupported["tpr"] is None
    assert "100 human texts" in unsupported["note"]

    # The file is a thresholds file the scorer (and the environment's calibration_file) can load.
    assert load_thresholds(output) == report["thresholds"]
    assert load_scale(output) == report["scale"] == pytest.approx(pooled_std_by_statistics(report), rel=1e-12)
    assert set(report["thresholds"]) == {"accuracy", "low-fpr"}
    # 20 human texts: the human-profile bands fitted on exactly them, which the reward then reads
    from binoculars_env.profile import STATISTICS, fit_bands
    from binoculars_env.reward import RewardConfig

    human = [s["text"] for s in report["samples"] if s["label"] == HUMAN_CLASS]
    expected = fit_bands(human)
    assert report["profile_bands"] == {name: list(expected[name]) for name in STATISTICS}
    assert RewardConfig(calibration_file=str(output)).resolved_bands() == expected
    png = output.with_suffix(".png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    from matplotlib.image import imread

    height, width, _ = imread(png).shape
    assert width > height > 300


def test_cli_reports_bad_input_in_one_line(tiny_pair, tmp_path):
    data = tmp_path / "no_label.csv"
    data.write_text("text,kind\nhello there,ai\nhi,human\n")
    result = run_cli(
        f"--data-file={data}", f"--observer={tiny_pair.observer}", f"--performer={tiny_pair.performer}"
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("calibrate.py: error:")
    assert "no label column 'label'" in lines[0] and "--label-column" in lines[0]


# --- bad inputs ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("empty.jsonl", "", "is empty"),
        ("blank.csv", "\n\n", "is empty"),
        ("no_label.jsonl", '{"text": "a", "kind": 1}\n', "no label column 'label'"),
        ("no_text.csv", "body,label\nabc,1\n", "no text column 'text'"),
        ("odd_label.jsonl", '{"text": "a", "label": "maybe"}\n', "row 0: unknown label value 'maybe'"),
        ("non_text.jsonl", '{"text": 3, "label": 1}\n', "row 0: 'text' is 3, not a string"),
        ("data.txt", "text,label\n", "unsupported file type"),
    ],
)
def test_bad_files_raise_clear_errors(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(CalibrationDataError, match=message):
        load_labelled_file(path)


def test_missing_file_is_an_error(tmp_path):
    with pytest.raises(CalibrationDataError, match="not found"):
        load_labelled_file(tmp_path / "nope.jsonl")


def test_one_class_only_is_an_error(tmp_path):
    path = tmp_path / "ai_only.csv"
    path.write_text("text,label\nfirst,1\nsecond,1\n")
    with pytest.raises(CalibrationDataError, match="only one class: no human-written texts"):
        balanced_sample(load_labelled_file(path), max_samples=10, seed=0)


def test_labels_in_many_spellings_and_custom_values(tmp_path):
    path = tmp_path / "mixed.csv"
    path.write_text("body,who\nx,gpt\ny,Human\nz,1\nw,0\nv,True\n")
    samples = load_labelled_file(path, text_column="body", label_column="who")
    assert [s.label for s in samples] == [AI_CLASS, HUMAN_CLASS, AI_CLASS, HUMAN_CLASS, AI_CLASS]
    custom = tmp_path / "custom.jsonl"
    custom.write_text('{"text": "a", "label": "bot"}\n{"text": "b", "label": "person"}\n')
    samples = load_labelled_file(custom, ai_values=["bot"], human_values=["person"])
    assert [s.label for s in samples] == [AI_CLASS, HUMAN_CLASS]


def test_a_class_with_only_nan_scores_is_an_error():
    samples = [LabelledText("a", AI_CLASS), LabelledText("b", HUMAN_CLASS), LabelledText("c", HUMAN_CLASS)]
    scores = [
        SampleScore(math.nan, math.nan, math.nan, 1),
        SampleScore(1.0, 2.0, 2.0, 5),
        SampleScore(0.9, 1.8, 2.0, 5),
    ]
    with pytest.raises(CalibrationDataError, match="no AI-generated text has a finite score"):
        build_report(samples, scores, model_info={})


# --- pieces ----------------------------------------------------------------------------------------------------
def test_balanced_sample_is_balanced_capped_and_reproducible():
    samples = [LabelledText(f"ai{i}", AI_CLASS) for i in range(50)]
    samples += [LabelledText(f"human{i}", HUMAN_CLASS) for i in range(8)]
    chosen = balanced_sample(samples, max_samples=100, seed=3)
    assert sum(s.label for s in chosen) == 8 and len(chosen) == 16  # limited by the smaller class
    capped = balanced_sample(samples, max_samples=7, seed=3)
    assert [s.label for s in capped].count(AI_CLASS) == 3 and len(capped) == 6
    assert balanced_sample(samples, 10, seed=3) == balanced_sample(samples, 10, seed=3)
    assert balanced_sample(samples, 10, seed=3) != balanced_sample(samples, 10, seed=4)


def test_roc_thresholds_reproduce_each_roc_point():
    rng = np.random.default_rng(0)
    scores = np.round(rng.normal(size=60), 1)  # rounding makes ties
    labels = (rng.random(60) < 0.5).astype(int)
    for fpr, tpr, threshold in zip(*roc_points(scores, labels), strict=True):
        assert rates(scores, labels, threshold) == (pytest.approx(tpr), pytest.approx(fpr))


def test_report_keeps_nan_samples_out_of_the_roc_and_omits_unsupported_low_fpr(tmp_path):
    rng = np.random.default_rng(1)
    samples = [LabelledText(f"t{i}", i % 2) for i in range(40)] + [LabelledText("x", HUMAN_CLASS)]
    values = [float(rng.normal(0.8 + 0.1 * (s.label == HUMAN_CLASS), 0.05)) for s in samples[:-1]]
    scores = [SampleScore(v, v, 1.0, 10) for v in values] + [SampleScore(math.nan, math.nan, math.nan, 1)]
    report = build_report(samples, scores, {"observer": "o", "performer": "p"}, target_fprs=[0.0001, 0.01])
    assert report["counts"] == {"total": 41, "ai": 20, "human": 20, "excluded_nan": 1}
    assert report["samples"][-1]["score"] is None
    assert set(report["thresholds"]) == {"accuracy"}  # 1% FPR needs 100 human texts
    assert all(not entry["supported"] for entry in report["target_fprs"])
    json_path, png_path = write_report(report, tmp_path / "r.json")
    assert json.loads(json_path.read_text())["thresholds"] == report["thresholds"] and png_path.stat().st_size
    scores_arr, labels = scores_and_labels(report)
    assert report["auroc"] == pytest.approx(auroc_by_pairs(scores_arr, labels))


def test_report_scale_is_the_pooled_within_class_std_of_the_finite_scores(tmp_path):
    rng = np.random.default_rng(2)
    samples = [LabelledText(f"t{i}", i % 2) for i in range(31)] + [LabelledText("x", AI_CLASS)]
    # unequal class sizes and spreads, so pooling differs from both the overall and the mean class std
    values = [float(rng.normal(0.8 + 0.2 * s.label, 0.03 + 0.1 * s.label)) for s in samples[:-1]]
    scores = [SampleScore(v, v, 1.0, 10) for v in values] + [SampleScore(math.nan, math.nan, math.nan, 1)]
    report = build_report(samples, scores, {"observer": "o", "performer": "p"})
    assert report["counts"]["excluded_nan"] == 1  # the NaN text takes no part
    assert report["scale"] == pytest.approx(pooled_std_by_statistics(report), rel=1e-12)
    finite = np.array(values)
    assert report["scale"] != pytest.approx(float(finite.std(ddof=1)), rel=1e-3)  # not the overall spread
    json_path, _ = write_report(report, tmp_path / "r.json")
    assert load_scale(json_path) == report["scale"] == json.loads(json_path.read_text())["scale"]


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ([0.8, 1.0], "needs at least 3 finite scores, got 2"),  # one text per class: no spread left
        ([0.8, 1.0, 0.8, 1.0], "must be positive and finite"),  # every class constant: zero spread
    ],
    ids=["one-per-class", "zero-spread"],
)
def test_a_scale_that_cannot_be_positive_and_finite_fails_calibration(values, message):
    samples = [LabelledText(f"t{i}", i % 2) for i in range(len(values))]
    scores = [SampleScore(v, v, 1.0, 10) for v in values]
    with pytest.raises(CalibrationDataError, match=message):
        build_report(samples, scores, model_info={})


def test_load_scale_reads_old_files_as_none_and_rejects_bad_values(tmp_path):
    old = tmp_path / "old.json"
    save_thresholds(old, {"accuracy": 0.9})  # a file from before calibration wrote a scale
    assert load_scale(old) is None
    for bad in (0, -0.1, math.nan, math.inf, None, True, "0.2"):
        with pytest.raises(ValueError, match="scale in .* must be a positive finite number"):
            save_thresholds(tmp_path / "bad.json", {"accuracy": 0.9}, scale=bad)
    assert not (tmp_path / "bad.json").exists()
    with pytest.raises(FileNotFoundError, match="missing.json"):
        load_scale(tmp_path / "missing.json")


def test_report_fluency_ceiling_is_an_order_statistic_of_the_human_log_ppls_only(tmp_path):
    rng = np.random.default_rng(3)
    samples = [LabelledText(f"t{i}", i % 2) for i in range(600)] + [LabelledText("x", HUMAN_CLASS)]
    log_ppls = [float(rng.normal(3.0 + 2.0 * s.label, 0.5)) for s in samples[:-1]]  # AI texts far above
    scores = [
        SampleScore(1.0 - 0.1 * s.label, v, 1.0, 10) for s, v in zip(samples[:-1], log_ppls, strict=True)
    ]
    scores.append(SampleScore(math.nan, 99.0, math.nan, 1))  # unscored: takes no part
    report = build_report(samples, scores, {"observer": "o", "performer": "p"})
    human = sorted(v for s, v in zip(samples[:-1], log_ppls, strict=True) if s.label == HUMAN_CLASS)
    assert len(human) == 300
    assert report["max_log_ppl"] == human[math.ceil(0.995 * (len(human) - 1))]  # the 299th of 300
    assert sum(v > report["max_log_ppl"] for v in human) == 1
    json_path, _ = write_report(report, tmp_path / "r.json")
    assert load_max_log_ppl(json_path) == report["max_log_ppl"]
    assert fluency_ceiling(human[:60]) == max(human[:60])  # a small sample: its maximum


def test_load_max_log_ppl_reads_old_files_as_none_and_rejects_bad_values(tmp_path):
    old = tmp_path / "old.json"
    save_thresholds(old, {"accuracy": 0.9})
    assert load_max_log_ppl(old) is None
    for bad in (0, -1.0, math.nan, math.inf, None, "5"):
        with pytest.raises(ValueError, match="max_log_ppl in .* must be a positive finite number"):
            save_thresholds(tmp_path / "bad.json", {"accuracy": 0.9}, max_log_ppl=bad)
    with pytest.raises(ValueError, match="fluency ceiling quantile"):
        fluency_ceiling([1.0, 2.0], quantile=0)
    with pytest.raises(CalibrationDataError, match="at least one human text with a finite log-ppl"):
        fluency_ceiling([math.nan])


def test_score_samples_keeps_input_order(bino):
    texts = [
        "a short one.",
        "Once upon a time there was a cat who liked the park a lot.",
        "x",
        "Tom and Lily.",
    ]
    got = score_samples(bino, texts, batch_size=3, progress=False)
    expected = bino.score_details(texts)
    assert [g.num_tokens for g in got] == [e.num_tokens for e in expected]
    np.testing.assert_allclose([g.score for g in got], [e.score for e in expected], rtol=1e-6)


# --- Ghostbuster domains ----------------------------------------------------------------------------------------
def domain_rows() -> list[dict]:
    """Two domains, both classes in each; the text names its domain so a filter's output can be checked."""
    return [
        {"text": f"{domain} text {i}", "label": label, GHOSTBUSTER_DOMAIN_COLUMN: domain}
        for domain in (GHOSTBUSTER_CREATIVE_DOMAIN, "essay")
        for i, label in enumerate(["gpt", "human", "gpt", "human"])
    ]


@pytest.fixture
def domain_file(tmp_path) -> Path:
    path = tmp_path / "domains.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in domain_rows()))
    return path


def test_file_source_keeps_only_the_chosen_domain(domain_file):
    chosen = load_labelled_file(domain_file, domain="essay")
    assert sorted(s.text for s in chosen) == sorted(
        r["text"] for r in domain_rows() if r["domains"] == "essay"
    )
    assert {s.label for s in chosen} == {AI_CLASS, HUMAN_CLASS}
    assert len(load_labelled_file(domain_file, domain=ALL_DOMAINS)) == len(domain_rows())
    assert len(load_labelled_file(domain_file)) == len(domain_rows())  # a file keeps every row by default


def test_an_unknown_domain_or_a_missing_domain_column_is_an_error_naming_the_choices(domain_file, tmp_path):
    with pytest.raises(CalibrationDataError, match="values present: \\['essay', 'wp'\\]") as error:
        load_labelled_file(domain_file, domain="poetry")
    assert "\n" not in str(error.value) and f"--domain {ALL_DOMAINS}" in str(error.value)
    plain = tmp_path / "plain.jsonl"
    plain.write_text('{"text": "a", "label": 1}\n{"text": "b", "label": 0}\n')
    with pytest.raises(CalibrationDataError, match="no domain column 'domains'"):
        load_labelled_file(plain, domain="essay")


def test_ghostbuster_from_the_hub_defaults_to_creative_writing(monkeypatch):
    """The hub path with a stand-in dataset: the default keeps the creative-writing rows, `all` every row."""
    from datasets import Dataset

    rows = [{"texts": r["text"], "labels": r["label"], "domains": r["domains"]} for r in domain_rows()]
    monkeypatch.setattr(calibration_sources, "_load_hub_split", lambda *args: Dataset.from_list(rows))
    creative = {r["texts"] for r in rows if r["domains"] == GHOSTBUSTER_CREATIVE_DOMAIN}
    assert {s.text for s in load_labelled_hub()} == creative
    assert len(load_labelled_hub(domain=ALL_DOMAINS)) == len(rows)
    script = load_calibrate_script()
    for argv, expected in (([], GHOSTBUSTER_CREATIVE_DOMAIN), (["--domain=essay"], "essay")):
        args = script.parse_args(argv)
        assert script.domain(args)["domain"] == expected
        assert {s.text for s in script.load_data(args)} == {
            r["texts"] for r in rows if r["domains"] == expected
        }


def test_cli_file_source_reports_an_unknown_domain_in_one_line(domain_file, tiny_pair):
    result = run_cli(
        f"--data-file={domain_file}",
        "--domain=poetry",
        f"--observer={tiny_pair.observer}",
        f"--performer={tiny_pair.performer}",
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("calibrate.py: error:") and "'essay'" in lines[0]


# --- human text vs policy continuations through an OpenAI-compatible server --------------------------------------
def human_texts(count: int) -> list[str]:
    """Stand-in human texts, unlike the stories and the fake policy's replies."""
    return [f"Note {i}: the kettle whistled twice while the rain kept on against the kitchen window." for i in
            range(count)]  # fmt: skip


class FakeChatServer:
    """A minimal OpenAI-compatible server: one model; replies echo the story opening's first word (the opening
    is the prompt's last line), behind a think block that the client side must strip."""

    model = "tiny-policy"

    def __init__(self):
        self.prompts: list[str] = []
        self.bodies: list[dict] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _send(self, payload):
                body = json.dumps(payload).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self):
                self._send({"object": "list", "data": [{"id": server.model, "object": "model", "created": 0,
                                                        "owned_by": "test"}]})  # fmt: skip

            def do_POST(self):
                request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                server.bodies.append(request)
                prompt = request["messages"][-1]["content"]
                server.prompts.append(prompt)
                opening = prompt.splitlines()[-1]
                content = f"<think>plan</think>\n{opening.split()[0]} went home and slept. The end."
                message = {"role": "assistant", "content": content}
                self._send({"id": "c", "object": "chat.completion", "created": 0, "model": server.model,
                            "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
                            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}})  # fmt: skip

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base_url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()


@pytest.fixture
def chat_server():
    server = FakeChatServer()
    yield server
    server.close()


def test_policy_vs_human_pairs_given_human_text_with_policy_continuations(chat_server):
    stories, human_pool = story_corpus(20), human_texts(10)

    def generate(prompts):
        return chat_continuations(
            prompts, chat_server.base_url, chat_server.model, concurrency=3, progress=False
        )

    samples = policy_vs_human(human_pool, stories, generate, num_pairs=6, seed=1)
    human = [s.text for s in samples if s.label == HUMAN_CLASS]
    ai = [s.text for s in samples if s.label == AI_CLASS]
    assert len(human) == len(ai) == 6
    assert set(human) <= set(human_pool)  # the human class is the given human text only
    assert not any(text in story for text in human for story in stories)  # never the (AI-written) stories
    assert all(text.endswith("went home and slept. The end.") and "<think>" not in text for text in ai)
    assert all(body["chat_template_kwargs"] == {"enable_thinking": False} for body in chat_server.bodies)
    # The prompt is the env's: its instruction, then an opening cut as the env cuts its prompts.
    assert all(prompt.startswith(INSTRUCTION) for prompt in chat_server.prompts)
    cuts = {story_beginning(s, 2, DataConfig().prompt_max_words)[0] for s in stories}
    assert {prompt.splitlines()[-1] for prompt in chat_server.prompts} <= cuts
    # fewer human texts than pairs: as many continuations as human texts, no more
    chat_server.prompts.clear()
    assert len(policy_vs_human(human_pool[:2], stories, generate, num_pairs=6, seed=1)) == 4
    assert len(chat_server.prompts) == 2


def load_calibrate_script():
    spec = importlib.util.spec_from_file_location("calibrate_script", REPO / "scripts" / "calibrate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_cli_policy_source_needs_a_base_url_and_human_text(tiny_pair, chat_server, tmp_path, capsys):
    stories = tmp_path / "stories.jsonl"
    stories.write_text("".join(json.dumps({"text": s}) + "\n" for s in story_corpus(30)))
    human_file = tmp_path / "human.txt"
    human_file.write_text("\n".join(human_texts(12)) + "\n")
    output = tmp_path / "policy.json"
    common = [
        "--source=policy",
        f"--base-url={chat_server.base_url}",
        f"--stories-file={stories}",
        f"--observer={tiny_pair.observer}",
        f"--performer={tiny_pair.performer}",
        "--max-samples=16",
        f"--output={output}",
    ]
    script = load_calibrate_script()
    assert script.main(common) == 2  # no human text
    assert "needs human text: --human-file" in capsys.readouterr().err
    assert script.main([*common, f"--human-file={human_file}"]) == 0
    report = json.loads(output.read_text())
    assert report["source"]["kind"] == "policy-vs-human"
    assert report["source"]["policy_model"] == "tiny-policy"  # found via /v1/models
    assert report["counts"]["ai"] == report["counts"]["human"] == 8
    assert {s["text"] for s in report["samples"] if s["label"] == HUMAN_CLASS} <= set(human_texts(12))
    assert len(chat_server.prompts) == 8
    assert 'no "low-fpr" threshold written' in capsys.readouterr().err


def test_tinystories_source_is_gone_with_one_line_saying_why_and_what_instead(capsys):
    with pytest.raises(SystemExit) as stopped:
        load_calibrate_script().parse_args(["--source=tinystories"])
    assert stopped.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("calibrate.py: error:")
    assert "GPT-3.5/GPT-4" in lines[0] and "--source policy" in lines[0] and "--human-file" in lines[0]


# --- the documented command, checkpoints and --resume --------------------------------------------------------------
def documented_command() -> list[str]:
    """The arguments of README's `uv run scripts/calibrate.py ...` line, exactly as documented."""
    lines = [line for line in (REPO / "README.md").read_text().splitlines() if "scripts/calibrate.py" in line]
    words = shlex.split(lines[0].split("#")[0])
    assert words[:3] == ["uv", "run", "scripts/calibrate.py"], lines[0]
    return words[3:]


DOCUMENTED = documented_command()
DOCUMENTED_OUTPUT = Path(next(w for w in DOCUMENTED if w.startswith("--output=")).removeprefix("--output="))
# a copy of scripts/calibrate.py's run whose scorer sleeps before each batch, so that a test can stop it midway
SLOW_SCORER = """
import runpy, sys, time
from binoculars.detector import Binoculars
score_details = Binoculars.score_details
Binoculars.score_details = lambda self, texts: time.sleep(0.2) or score_details(self, texts)
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name="__main__")
"""


def local_flags(tiny_pair, data_file: Path) -> list[str]:
    return [
        f"--data-file={data_file}",
        f"--observer={tiny_pair.observer}",
        f"--performer={tiny_pair.performer}",
    ]


def without_timestamp(report: dict) -> dict:
    return {key: value for key, value in report.items() if key != "created"}


def checkpoint_entries(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()[1:]]


@pytest.fixture(scope="module")
def documented_run(tiny_pair, separable_file, tmp_path_factory) -> dict:
    """The user's documented command on the tiny pair and the separable file, run once, uninterrupted, from
    a fresh directory (so its --output=results/... is kept as written)."""
    workdir = tmp_path_factory.mktemp("documented")
    result = subprocess.run(
        [
            sys.executable,
            str(REPO / "scripts" / "calibrate.py"),
            *DOCUMENTED,
            *local_flags(tiny_pair, separable_file),
        ],
        capture_output=True,
        text=True,
        cwd=workdir,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    return {"workdir": workdir, "stdout": result.stdout}


def test_the_documented_command_runs_as_written(documented_run, bino):
    assert DOCUMENTED[:2] == ["--max-samples=500", "--batch-size=1"]
    output = documented_run["workdir"] / DOCUMENTED_OUTPUT
    report = json.loads(output.read_text())
    assert report["source"]["max_samples"] == 500 and report["models"]["batch_size"] == 1
    # 500 asked, 30 + 30 available: every text of the file, each scored as the scorer scores it alone
    assert report["counts"]["total"] == 2 * PER_CLASS
    texts = [s["text"] for s in report["samples"]]
    np.testing.assert_allclose([s["score"] for s in report["samples"]], bino.compute_score(texts), rtol=1e-6)
    assert output.with_suffix(".png").is_file()
    assert not checkpoint_path_for(output).exists()  # the report holds every score; the checkpoint is gone
    assert f"wrote {DOCUMENTED_OUTPUT}" in documented_run["stdout"]


def test_a_killed_run_keeps_its_scores_and_resume_gives_the_same_report(
    tiny_pair, separable_file, documented_run, tmp_path, monkeypatch
):
    reference = json.loads((documented_run["workdir"] / DOCUMENTED_OUTPUT).read_text())
    args = [*DOCUMENTED, *local_flags(tiny_pair, separable_file)]
    checkpoint = tmp_path / checkpoint_path_for(DOCUMENTED_OUTPUT)
    run = subprocess.Popen(
        [sys.executable, "-c", SLOW_SCORER, str(REPO / "scripts" / "calibrate.py"), *args],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 300
        while not (checkpoint.exists() and len(checkpoint.read_text().splitlines()) >= 4):
            assert run.poll() is None and time.monotonic() < deadline, run.communicate()
            time.sleep(0.05)
        run.send_signal(signal.SIGTERM)
        _, stderr = run.communicate(timeout=60)
    finally:
        run.kill()
    assert run.returncode == 130, stderr
    saved = checkpoint_entries(checkpoint)
    assert 3 <= len(saved) < reference["counts"]["total"]
    assert (
        f"{len(saved)} of {reference['counts']['total']} scores are saved in" in stderr
        and "--resume" in stderr
    )
    assert not (tmp_path / DOCUMENTED_OUTPUT).exists()
    # every finished score is on disk, for the right text
    for entry in saved:
        sample = reference["samples"][entry["index"]]
        assert entry["score"] == sample["score"] and entry["text_key"] == text_key(sample["text"])

    scored: list[str] = []
    score_details = Binoculars.score_details
    monkeypatch.setattr(
        Binoculars, "score_details", lambda self, t: scored.extend(t) or score_details(self, t)
    )
    monkeypatch.chdir(tmp_path)
    assert load_calibrate_script().main([*args, "--resume"]) == 0

    resumed = json.loads((tmp_path / DOCUMENTED_OUTPUT).read_text())
    assert without_timestamp(resumed) == without_timestamp(
        reference
    )  # thresholds, AUROC, every sample's score
    assert len(scored) == reference["counts"]["total"] - len(saved)  # only the rest was scored
    assert {text_key(t) for t in scored}.isdisjoint(entry["text_key"] for entry in saved)
    assert not checkpoint.exists()


def test_resume_refuses_a_checkpoint_of_other_settings_and_recovers_a_cut_line(
    tiny_pair, separable_file, tmp_path, monkeypatch, capsys
):
    script = load_calibrate_script()
    output = tmp_path / "cal.json"
    args = [
        *local_flags(tiny_pair, separable_file),
        "--max-samples=20",
        "--batch-size=2",
        f"--output={output}",
    ]
    calls = []
    score_details = Binoculars.score_details

    def interrupted_on_third_batch(self, texts):
        calls.append(texts)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return score_details(self, texts)

    with monkeypatch.context() as patch:
        patch.setattr(Binoculars, "score_details", interrupted_on_third_batch)
        assert script.main(args) == 130
    checkpoint = checkpoint_path_for(output)
    assert len(checkpoint_entries(checkpoint)) == 4  # two batches of two
    capsys.readouterr()

    refusals = {
        (): "holds the scores of an unfinished run: add --resume",
        ("--resume", "--max-tokens=256"): "max_token_observed 512 (now 256)",
        ("--resume", f"--performer={tiny_pair.observer}"): "performer",
        ("--resume", "--seed=1"): "another sample set",
        ("--resume", "--max-samples=10"): "another sample set (20 texts; now 10)",
    }
    for extra, message in refusals.items():
        assert script.main([*args, *extra]) == 2, extra
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("calibrate.py: error:") and message in err[0], (extra, err)
    assert len(checkpoint_entries(checkpoint)) == 4  # untouched by the refusals

    with checkpoint.open("a") as file:  # killed in the middle of writing a line
        file.write('{"index": 3, "text_key": "ab')
    assert script.main([*args, "--resume"]) == 0
    assert json.loads(output.read_text())["counts"]["total"] == 20 and not checkpoint.exists()


@pytest.mark.parametrize("where", ["under_a_file", "a_directory"])
def test_an_unwritable_output_is_reported_before_anything_loads(
    tiny_pair, separable_file, tmp_path, where, capsys
):
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    output = blocker / "cal.json" if where == "under_a_file" else tmp_path
    missing_model = tmp_path / "no-such-model"  # would fail first if models were looked at before the output
    exit_code = load_calibrate_script().main(
        [f"--data-file={separable_file}", f"--observer={missing_model}", f"--output={output}"]
    )
    assert exit_code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--output" in err[0] and str(output) in err[0] and "no-such-model" not in err[0]


def test_resume_without_a_checkpoint_is_an_error(separable_file, tmp_path, capsys):
    output = tmp_path / "cal.json"
    assert (
        load_calibrate_script().main([f"--data-file={separable_file}", f"--output={output}", "--resume"]) == 2
    )
    assert f"no checkpoint {checkpoint_path_for(output)}" in capsys.readouterr().err


# --- offline -------------------------------------------------------------------------------------------------------
def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_offline_without_hf_hub_offline_names_every_missing_piece_in_a_few_lines(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")}
    env |= {"HF_HOME": str(tmp_path / "hf"), "HF_ENDPOINT": f"http://127.0.0.1:{closed_port()}"}
    result = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "calibrate.py"), f"--output={tmp_path / 'cal.json'}"],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=env,
        timeout=600,
    )
    assert result.returncode == 1
    text = result.stdout + result.stderr
    assert len(text.strip().splitlines()) < 10, text
    assert "Retrying" not in text and "Traceback" not in text
    for flag, value in (
        ("--observer", DEFAULT_OBSERVER),
        ("--performer", DEFAULT_PERFORMER),
        ("--dataset", GHOSTBUSTER_DATASET),
    ):
        assert f"({flag}) '{value}'" in text
    assert "HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1" in text and "--data-file /path/to/" in text
    assert not (tmp_path / "cal.json").exists()


def test_hub_check_tells_an_answer_from_none(chat_server, monkeypatch):
    monkeypatch.setenv("HF_ENDPOINT", chat_server.base_url.removesuffix("/v1"))
    assert hub_problem() is None  # any HTTP answer (here 501 to HEAD) means the hub is reachable
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{closed_port()}")
    started = time.monotonic()
    assert "ConnectError" in hub_problem(timeout_s=2.0)
    assert time.monotonic() - started < 3


def test_an_unreachable_hub_turns_offline_mode_on_once(monkeypatch):
    import datasets.config
    import huggingface_hub.constants

    for name in OFFLINE_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(datasets.config, "HF_DATASETS_OFFLINE", False)
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{closed_port()}")
    assert "ConnectError" in work_offline_if_hub_unreachable()
    assert all(os.environ[name] == "1" for name in OFFLINE_VARIABLES)
    assert huggingface_hub.constants.is_offline_mode() and datasets.config.HF_DATASETS_OFFLINE
    assert work_offline_if_hub_unreachable() is None  # already offline: no second check
