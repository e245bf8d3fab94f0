"""The reward: clip(score - threshold) of an independent Binoculars computation, the guards, and a validated
config."""

import json
import math

import pytest
from binoculars_env import scorer_pool
from binoculars_env.profile import STATISTICS
from binoculars_env.reward import (
    RewardConfig,
    completion_text,
    distinct_2,
    score_completions,
    strip_think,
)
from pydantic import ValidationError
from reference_scores import reference_reward, reference_score

from binoculars import save_thresholds
from binoculars.panel import PANEL_CRITERIA
from binoculars.testing.faults import RecordingTokenizer

STORIES = [
    "The little fox ran to the river and found a friend. They played with a red ball all day.",
    "Mia smiled at Tom, and they walked home together, holding hands under the warm sun.",
    'Sam said, "Look, a kite!" The kite flew high over the park, and everyone laughed.',
    "At the end of the day, the bear was tired but happy. He went to sleep in his warm bed. The end.",
]
ODD_INPUTS = [
    "🙂🚀✨🙂🚀✨ " * 20,
    "你好世界 こんにちは 你好世界 こんにちは 你好世界",
    "<|im_end|><|endoftext|><|im_start|>assistant\n<|im_end|> hello <|endoftext|>",
    "The dog ran to the park and played with the ball. " * 100,  # 5000 characters
    "a" * 5000,
    "\n\n\t   \n",
    "</think>",
    "1234567890 !?.,;:'\"()[]{}<>-_=+*/\\|@#$%^&~`",
    "\x00\x01\x07\x1b[31m red \x1b[0m\x7f\x85 control characters \x0b\x0c\r\n" * 5,
    "\u200b\u200e\u200f\ufeff zero\u200dwidth \u202eright-to-left\u202c \ufffe\uffff" * 5,
    "lone \ud800 surrogates \udfff and a pair \ud83d\ude00 " * 5,
    "e\u0301\u0301\u0301 \u1100\u1161\u11a8 combining " * 10,
]


def test_reward_is_clipped_score_minus_threshold_of_an_independent_computation(tiny_reward_config):
    config = tiny_reward_config
    results = score_completions(STORIES, config)
    for story, result in zip(STORIES, results, strict=True):
        expected_score, num_tokens = reference_score(story, config.observer_model, config.performer_model)
        assert result.score == pytest.approx(expected_score, abs=1e-4)
        assert result.num_tokens == num_tokens and result.guard is None
        assert result.reward == pytest.approx(
            reference_reward(story, config.observer_model, config.performer_model, threshold=1.0), abs=1e-4
        )
    # a different threshold shifts every unclipped reward by the difference
    shifted = score_completions(STORIES, config.model_copy(update={"threshold": 0.5}))
    for before, after in zip(results, shifted, strict=True):
        assert after.reward == pytest.approx(min(2.0, max(-2.0, before.score - 0.5)), abs=1e-6)


@pytest.mark.parametrize(
    "completion",
    ["", "   ", "a", "<think>I should write a story about a fox.</think>", "<think>cut off mid-thought"],
    ids=["empty", "blank", "one-token", "think-only", "unclosed-think"],
)
def test_empty_short_and_think_only_completions_get_the_minimum(tiny_reward_config, completion):
    [result] = score_completions([completion], tiny_reward_config)
    assert result.reward == -2.0 and result.guard in {"empty", "too_short"}
    assert all(math.isfinite(v) for v in result.metrics().values())
    assert result.metrics()["guard_failed"] == 1.0


def test_one_token_text_is_minimum_even_with_min_tokens_zero(tiny_reward_config):
    """The detector gives NaN under 2 tokens; NaN must never become a reward (max(-2, min(2, nan)) is +2)."""
    [result] = score_completions(["a"], tiny_reward_config.model_copy(update={"min_tokens": 0}))
    assert result.reward == -2.0 and math.isnan(result.score)


def test_odd_inputs_stay_within_the_reward_range(tiny_reward_config):
    for result in score_completions(ODD_INPUTS, tiny_reward_config):
        assert -2.0 <= result.reward <= 2.0
        assert all(math.isfinite(v) for v in result.metrics().values())


def test_a_string_instead_of_a_list_is_a_type_error(tiny_reward_config):
    """A str is a sequence of characters: it used to be scored one character at a time."""
    with pytest.raises(TypeError, match=r"one str; pass \[text\]"):
        score_completions(STORIES[0], tiny_reward_config)


def test_lone_surrogates_do_not_sink_the_batch(tiny_reward_config):
    raw = tiny_reward_config.model_copy(update={"canonical_steps": []})  # the detector's own cleaning
    texts = ["\ud800", STORIES[0], STORIES[1] + " \ud800"]
    results = score_completions(texts, raw)
    assert results[0].guard == "too_short" and results[1] == score_completions([STORIES[0]], raw)[0]
    assert results[2] == score_completions([STORIES[1] + " \ufffd"], raw)[0]
    canonical = score_completions(texts, tiny_reward_config)  # the canonical form drops surrogates
    assert canonical[0].guard == "empty"
    assert canonical[2].score == score_completions([STORIES[1]], tiny_reward_config)[0].score


def test_a_text_the_tokenizer_rejects_alone_gets_the_unscorable_guard(tiny_reward_config, monkeypatch):
    alone = [score_completions([story], tiny_reward_config)[0] for story in STORIES]
    binoculars = scorer_pool.get_scorer(tiny_reward_config.scorer_spec()).binoculars
    monkeypatch.setattr(binoculars, "tokenizer", RecordingTokenizer(binoculars.tokenizer, reject="XPOISONX"))
    with pytest.warns(UserWarning, match="injected tokenizer failure"):
        results = score_completions(
            [
                *STORIES[:2],
                "A story about XPOISONX and the quiet garden where the children played every single day",
                *STORIES[2:],
            ],
            tiny_reward_config,
        )
    bad = results.pop(2)
    assert results == alone
    assert (bad.reward, bad.guard) == (-2.0, "unscorable")
    assert all(math.isfinite(v) for v in bad.metrics().values()) and bad.metrics()["guard_failed"] == 1.0


def test_a_group_scored_together_equals_each_scored_alone(tiny_reward_config):
    texts = STORIES + ODD_INPUTS[:4] + ["", "<think>x</think>" + STORIES[0]]
    together = score_completions(texts, tiny_reward_config)
    for text, result in zip(texts, together, strict=True):
        [alone] = score_completions([text], tiny_reward_config)
        assert alone.reward == pytest.approx(result.reward, abs=1e-5)
        assert alone.metrics() == pytest.approx(result.metrics(), abs=1e-5)


def test_think_blocks_are_removed_before_scoring(tiny_reward_config):
    assert strip_think("<think>plan</think>\nThe story.") == "The story."
    assert strip_think("plan the story</think>The story.") == "The story."
    assert strip_think("The story.<think>an afterthought") == "The story."
    plain, with_think = score_completions(
        [STORIES[0], "<think>Let me think about foxes.</think>\n" + STORIES[0]], tiny_reward_config
    )
    assert plain == with_think


def test_min_tokens_guard(tiny_reward_config):
    [scored] = score_completions([STORIES[0]], tiny_reward_config)
    at_limit = tiny_reward_config.model_copy(update={"min_tokens": scored.num_tokens})
    over_limit = tiny_reward_config.model_copy(update={"min_tokens": scored.num_tokens + 1})
    assert score_completions([STORIES[0]], at_limit)[0].reward == scored.reward
    [short] = score_completions([STORIES[0]], over_limit)
    assert (short.reward, short.guard) == (-2.0, "too_short")


def test_fluency_ceiling_guard(tiny_reward_config):
    [scored] = score_completions([STORIES[1]], tiny_reward_config)
    loose = tiny_reward_config.model_copy(update={"max_log_ppl": scored.log_ppl + 0.01})
    strict = tiny_reward_config.model_copy(update={"max_log_ppl": scored.log_ppl - 0.01})
    assert score_completions([STORIES[1]], loose)[0].reward == scored.reward
    [disfluent] = score_completions([STORIES[1]], strict)
    assert (disfluent.reward, disfluent.guard) == (-2.0, "disfluent")
    assert disfluent.score == scored.score  # the metrics still show what the detector said


def test_the_auto_fluency_ceiling_is_the_calibration_files_else_the_default_pairs(
    tiny_reward_config, tmp_path
):
    from binoculars_env.reward import DEFAULT_MAX_LOG_PPL

    [scored] = score_completions([STORIES[1]], tiny_reward_config)
    below, above = tmp_path / "below.json", tmp_path / "above.json"
    save_thresholds(below, {"accuracy": 0.9}, max_log_ppl=scored.log_ppl - 0.01)
    save_thresholds(above, {"accuracy": 0.9}, max_log_ppl=scored.log_ppl + 0.01)
    auto = tiny_reward_config.model_copy(update={"max_log_ppl": "auto"})
    assert auto.resolved_max_log_ppl() == DEFAULT_MAX_LOG_PPL == 5.0  # no calibration file
    older = tmp_path / "older.json"
    save_thresholds(older, {"accuracy": 0.9})  # written before calibration had a ceiling
    assert auto.model_copy(update={"calibration_file": str(older)}).resolved_max_log_ppl() == 5.0
    [guarded] = score_completions([STORIES[1]], auto.model_copy(update={"calibration_file": str(below)}))
    [passed] = score_completions([STORIES[1]], auto.model_copy(update={"calibration_file": str(above)}))
    assert guarded.guard == "disfluent" and passed.guard is None
    explicit = auto.model_copy(update={"calibration_file": str(below), "max_log_ppl": scored.log_ppl + 0.01})
    assert score_completions([STORIES[1]], explicit)[0].guard is None  # a number beats the file
    off = auto.model_copy(update={"calibration_file": str(below), "max_log_ppl": None})
    assert off.resolved_max_log_ppl() is None and score_completions([STORIES[1]], off)[0].guard is None


@pytest.mark.parametrize("value", [0, -1.0, "5", None])
def test_a_calibration_file_with_a_bad_ceiling_is_a_clear_error(tmp_path, value):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"thresholds": {"accuracy": 0.9}, "max_log_ppl": value}))
    with pytest.raises(ValueError, match=r"max_log_ppl in .*bad.json must be a positive finite number"):
        RewardConfig(calibration_file=str(path)).resolved_max_log_ppl()


def test_repetition_guard(tiny_reward_config):
    looped = "The cat sat on the mat. " * 12
    varied = STORIES[0]
    assert distinct_2(looped) < 0.5 < distinct_2(varied)
    guarded = tiny_reward_config.model_copy(update={"min_distinct_2": 0.5})  # the knob, not the default
    [repetitive, fine] = score_completions([looped, varied], guarded)
    assert (repetitive.reward, repetitive.guard) == (-2.0, "repetitive")
    assert fine.guard is None
    [unguarded] = score_completions([looped], guarded.model_copy(update={"min_distinct_2": None}))
    assert unguarded.guard is None and unguarded.reward > -2.0
    assert repetitive.score == unguarded.score  # the metrics still show what the detector said


def test_repetition_guard_measures_the_scored_span_not_the_unscored_tail(tiny_reward_config):
    """The scorer sees only the first max_token_observed tokens: a looping head with a varied tail is looping."""
    looped = "The cat sat on the mat. " * 30
    tail = " ".join(f"word{i} other{i * 7}" for i in range(400))
    text = looped + tail
    assert distinct_2(text) > 0.6 > distinct_2(looped)
    config = tiny_reward_config.model_copy(update={"max_token_observed": 48, "min_distinct_2": 0.6})
    [result] = score_completions([text], config)
    assert (result.reward, result.guard) == (-2.0, "repetitive")
    assert result.num_tokens == 48
    [head] = score_completions([looped], config)
    assert result.distinct_2 == head.distinct_2 and result.score == head.score


def test_length_term_penalises_short_completions_linearly(tiny_reward_config):
    config = tiny_reward_config.model_copy(update={"length_weight": 0.5, "length_target_tokens": 1000})
    for base, shaped in zip(
        score_completions(STORIES, tiny_reward_config), score_completions(STORIES, config), strict=True
    ):
        expected = base.score - 1.0 - 0.5 * (1 - base.num_tokens / 1000)
        assert shaped.reward == pytest.approx(min(2.0, max(-2.0, expected)), abs=1e-6)
    reached = config.model_copy(update={"length_target_tokens": 2})
    assert [r.reward for r in score_completions(STORIES, reached)] == [
        r.reward for r in score_completions(STORIES, tiny_reward_config)
    ]


def test_non_finite_score_gets_the_minimum(tiny_reward_config, monkeypatch):
    from binoculars import ScoreDetails

    class NaNScorer:
        def score_details(self, texts):
            return [ScoreDetails(float("nan"), float("nan"), float("nan"), 50, len(t)) for t in texts]

    monkeypatch.setattr("binoculars_env.reward.get_scorer", lambda spec: NaNScorer())
    [result] = score_completions([STORIES[0]], tiny_reward_config)
    assert (result.reward, result.guard) == (-2.0, "non_finite")


def test_monitoring_metrics(tiny_reward_config):
    text = "the cat sat on the mat and the cat sat on the rug"
    assert distinct_2(text) == pytest.approx(
        8 / 12
    )  # 12 bigrams, "the cat", "cat sat", "sat on", "on the" twice
    [result] = score_completions([text], tiny_reward_config)
    metrics = result.metrics()
    assert set(metrics) == {
        "binoculars_score", "log_ppl", "x_ppl", "num_tokens", "distinct_2", "flagged_as_ai", "guard_failed",
        "obfuscation", "corrected_share", *STATISTICS,
        *PANEL_CRITERIA,
    }  # fmt: skip
    assert metrics["obfuscation"] == 0.0  # plain lower-case ASCII prose is its own canonical form
    assert metrics["function_word_share"] == pytest.approx(7 / 13)  # the x4, on x2, and: stop words
    assert metrics["binoculars_score"] == result.score
    assert metrics["distinct_2"] == distinct_2(text)
    assert metrics["flagged_as_ai"] == float(result.score < 1.0)
    assert metrics["log_ppl"] / metrics["x_ppl"] == pytest.approx(result.score, rel=1e-4)


def test_threshold_from_calibration_file(tiny_reward_config, tmp_path):
    path = tmp_path / "calibration.json"
    save_thresholds(path, {"accuracy": 0.9, "low-fpr": 0.7})
    uncalibrated = tiny_reward_config.model_copy(update={"threshold": None})
    assert uncalibrated.resolved_threshold() == 1.0
    calibrated = uncalibrated.model_copy(update={"calibration_file": str(path)})
    assert calibrated.resolved_threshold() == 0.9
    assert calibrated.model_copy(update={"threshold_key": "low-fpr"}).resolved_threshold() == 0.7
    assert calibrated.model_copy(update={"threshold": 1.2}).resolved_threshold() == 1.2  # explicit wins
    [result] = score_completions([STORIES[0]], calibrated)
    assert result.reward == pytest.approx(min(2.0, max(-2.0, result.score - 0.9)))
    with pytest.raises(KeyError, match="has no 'best' threshold .*accuracy"):
        calibrated.model_copy(update={"threshold_key": "best"}).resolved_threshold()


def calibration_with_scale(path, stories, config) -> dict:
    """A real calibration report (binoculars.calibration) of the tiny pair's scores of `stories`, half labelled
    AI and half human, written to `path`: a file with thresholds and a `scale`."""
    from binoculars.calibration import LabelledText, SampleScore, build_report, write_report

    results = score_completions(stories, config)
    samples = [LabelledText(text, i % 2) for i, text in enumerate(stories)]
    scores = [SampleScore(r.score, r.log_ppl, r.x_ppl, r.num_tokens) for r in results]
    report = build_report(samples, scores, {"observer": config.observer_model})
    write_report(report, path)
    return report


def by_hand(result, threshold: float, scale: float | None, length_weight: float, target: int) -> float:
    """The documented reward from a result's raw score and token count."""
    margin = result.score - threshold if scale is None else (result.score - threshold) / scale
    shortfall = max(0.0, 1.0 - result.num_tokens / target)
    return min(2.0, max(-2.0, margin - length_weight * shortfall))


def test_the_calibrated_scale_divides_the_margin_but_not_the_length_term(tiny_reward_config, tmp_path):
    path = tmp_path / "calibration.json"
    report = calibration_with_scale(path, STORIES + ODD_INPUTS[:4], tiny_reward_config)
    config = tiny_reward_config.model_copy(
        update={
            "threshold": None,
            "calibration_file": str(path),
            "length_weight": 0.5,
            "length_target_tokens": 1000,
        }
    )
    assert (
        config.resolved_scale() == report["scale"]
        and config.resolved_threshold() == report["thresholds"]["accuracy"]
    )
    raw = score_completions(STORIES, tiny_reward_config)
    scaled = score_completions(STORIES, config)
    for before, after in zip(raw, scaled, strict=True):
        assert after.score == before.score and after.metrics()["binoculars_score"] == before.score  # kept raw
        assert after.flagged_as_ai == (before.score < report["thresholds"]["accuracy"])
        expected = by_hand(after, report["thresholds"]["accuracy"], report["scale"], 0.5, 1000)
        assert after.reward == expected
    # an explicit threshold still takes the file's scale
    explicit_threshold = config.model_copy(update={"threshold": 0.5})
    for result in score_completions(STORIES, explicit_threshold):
        assert result.reward == by_hand(result, 0.5, report["scale"], 0.5, 1000)


def test_an_explicit_scale_overrides_the_file_and_works_without_one(tiny_reward_config, tmp_path):
    path = tmp_path / "calibration.json"
    report = calibration_with_scale(path, STORIES + ODD_INPUTS[:4], tiny_reward_config)
    explicit = report["scale"] / 3
    from_file = tiny_reward_config.model_copy(update={"threshold": None, "calibration_file": str(path)})
    overridden = from_file.model_copy(update={"scale": explicit})
    assert overridden.resolved_scale() == explicit
    threshold = report["thresholds"]["accuracy"]
    results = score_completions(STORIES, overridden)
    for result in results:
        assert result.reward == by_hand(result, threshold, explicit, 0.0, 64)
    alone = tiny_reward_config.model_copy(update={"scale": explicit})  # no calibration file at all
    for result in score_completions(STORIES, alone):
        assert result.reward == by_hand(result, 1.0, explicit, 0.0, 64)


def test_without_a_scale_the_reward_is_unchanged(tiny_reward_config, tmp_path):
    unscaled = [by_hand(r, 1.0, None, 0.0, 64) for r in score_completions(STORIES, tiny_reward_config)]
    assert tiny_reward_config.resolved_scale() is None
    assert [r.reward for r in score_completions(STORIES, tiny_reward_config)] == unscaled
    # a calibration file written before calibration had a scale: thresholds only
    old = tmp_path / "old.json"
    save_thresholds(old, {"accuracy": 1.0})
    config = tiny_reward_config.model_copy(update={"threshold": None, "calibration_file": str(old)})
    assert config.resolved_scale() is None
    assert [r.reward for r in score_completions(STORIES, config)] == unscaled
    # a file with a scale, but use_calibrated_scale=False
    new = tmp_path / "new.json"
    save_thresholds(new, {"accuracy": 1.0}, scale=0.1)
    opted_out = config.model_copy(update={"calibration_file": str(new), "use_calibrated_scale": False})
    assert opted_out.resolved_scale() is None
    assert [r.reward for r in score_completions(STORIES, opted_out)] == unscaled


@pytest.mark.parametrize("value", [0, 0.0, -0.5])
def test_a_scale_that_is_not_positive_is_rejected_naming_the_field(value):
    with pytest.raises(ValidationError, match="(?s)scale.*greater than 0"):
        RewardConfig(scale=value)


@pytest.mark.parametrize("value", ["0", "-1.5", "NaN", "Infinity", "-Infinity", "null", "true", '"0.2"'])
def test_a_calibration_file_with_a_bad_scale_is_a_clear_error(tmp_path, value):
    path = tmp_path / "calibration.json"
    path.write_text(f'{{"thresholds": {{"accuracy": 0.9}}, "scale": {value}}}')
    config = RewardConfig(calibration_file=str(path))
    with pytest.raises(ValueError, match="scale in .*calibration.json must be a positive finite number"):
        config.resolved_scale()
    assert config.model_copy(update={"use_calibrated_scale": False}).resolved_scale() is None


def test_completion_text_reads_every_message_shape():
    class Message:  # like verifiers' pydantic AssistantMessage
        role, content = "assistant", "from an object"

    assert completion_text("plain") == "plain"
    assert completion_text([{"role": "assistant", "content": "from a dict"}]) == "from a dict"
    assert completion_text([Message()]) == "from an object"
    parts = [
        {"type": "text", "text": "one "},
        {"type": "image_url", "image_url": {}},
        {"type": "text", "text": "two"},
    ]
    assert completion_text([{"role": "assistant", "content": parts}]) == "one two"
    assert completion_text([{"role": "assistant", "content": None}]) == ""
    assert completion_text([]) == ""


def test_one_scorer_per_configuration_loaded_lazily(tiny_reward_config):
    before = scorer_pool.loaded_scorer_count()
    same_scorer = tiny_reward_config.model_copy(
        update={"threshold": 0.3, "min_tokens": 1, "length_weight": 1}
    )
    score_completions([STORIES[0]], tiny_reward_config)
    score_completions([STORIES[0]], same_scorer)
    assert scorer_pool.loaded_scorer_count() <= before + 1
    other = tiny_reward_config.model_copy(update={"scorer_batch_size": 3})
    count = scorer_pool.loaded_scorer_count()
    score_completions([STORIES[0]], other)
    assert scorer_pool.loaded_scorer_count() == count + 1


def test_unloadable_scorer_is_a_clear_error(tiny_reward_config, tmp_path):
    from binoculars import ModelLoadError

    config = tiny_reward_config.model_copy(update={"observer_model": str(tmp_path / "no-such-model")})
    with pytest.raises(ModelLoadError, match="no-such-model"):
        score_completions([STORIES[0]], config)


def test_a_scorer_that_does_not_report_its_scored_span_is_a_clear_error(tiny_reward_config, monkeypatch):
    from binoculars import ScoreDetails

    class OldScorer:
        def score_details(self, texts):
            return [ScoreDetails(0.9, 2.0, 2.2, 50) for _ in texts]

    monkeypatch.setattr("binoculars_env.reward.get_scorer", lambda spec: OldScorer())
    with pytest.raises(ValueError, match="scored_chars"):
        score_completions([STORIES[0]], tiny_reward_config)


FLOAT_FIELDS = [name for name, field in RewardConfig.model_fields.items() if "float" in str(field.annotation)]


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
@pytest.mark.parametrize("name", FLOAT_FIELDS)
def test_every_float_field_rejects_nan_and_inf_naming_the_field(name, value):
    with pytest.raises(ValidationError, match=f"(?s){name}.*finite number"):
        RewardConfig(**{name: value})


def test_float_fields_are_the_expected_ones():
    assert set(FLOAT_FIELDS) == {
        "threshold", "scale", "max_log_ppl", "min_distinct_2", "length_weight", "batch_window_s",
        "scorer_timeout_s", "max_obfuscation", "spelling_charge",
    }  # fmt: skip


@pytest.mark.parametrize("device", ["banana", "cuda:x", "cuda:-1", "gpu"])
def test_unparseable_scorer_device_is_rejected_at_config_time(device):
    with pytest.raises(ValidationError, match=f"(?s)scorer_device.*{device!r} is not a device"):
        RewardConfig(scorer_device=device)
    assert RewardConfig(scorer_device="cuda:1").scorer_device == "cuda:1"  # format only: no GPU needed here
