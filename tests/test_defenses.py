"""Each reward defense on the attack it answers (binoculars_rl.attacks): the canonical form undoes the surface edit,
the obfuscation and human-profile guards fire on the attacked text and not on the clean one, and each defense's
knob switches it off."""

from __future__ import annotations

import random

import pytest
from binoculars_env.canonical import canonical_form, obfuscation
from binoculars_env.profile import STATISTICS, outside_band, text_profile
from binoculars_env.reward import score_completions

from binoculars.testing.tiny import story_corpus
from binoculars_rl.attacks import ATTACKS

STORIES = story_corpus(num_stories=4, seed=3)
HUMAN = [
    "Nothing in this passage is read by the attacks below; the plagiarism baselines are not tested here."
]


def attacked(name: str, story: str, seed: int = 0) -> str:
    return ATTACKS[name](story, random.Random(seed), HUMAN)


@pytest.mark.parametrize(
    ("attack", "step"),
    [
        ("homoglyphs_10", "confusables"),
        ("homoglyphs_30", "confusables"),
        ("zero_width", "invisible"),
        ("format_chars", "invisible"),
        ("emoji", "emoji"),
        ("extra_punct", "punctuation"),
    ],
)
def test_the_canonical_form_undoes_the_surface_attack(attack, step):
    for seed, story in enumerate(STORIES):
        text = attacked(attack, story, seed)
        assert text != story
        assert canonical_form(text) == canonical_form(story)
        without = [
            s for s in ("nfkc", "invisible", "confusables", "emoji", "punctuation", "case") if s != step
        ]
        assert canonical_form(text, without) != canonical_form(story, without)  # that step did the work


@pytest.mark.parametrize("attack", ["all_caps", "random_caps"])
def test_abnormal_case_is_normalised(attack):
    for seed, story in enumerate(STORIES):
        text = canonical_form(attacked(attack, story, seed))
        assert text.lower() == canonical_form(story).lower()
        assert sum(c.isupper() for c in text) <= sum(c.isupper() for c in story) + 1


@pytest.mark.parametrize("attack", ["typos_5", "typos_15"])
def test_spelling_correction_repairs_most_lower_case_non_words(attack):
    """Typos that make a non-word of a lower-case word; typos that make another real word ("went" -> "wet") or
    touch a capitalised word (a name to the checker) are out of its reach."""
    from binoculars_env.canonical import spell_checker

    non_words = repaired = 0
    for seed, story in enumerate(STORIES):
        text = attacked(attack, story, seed)
        fixed = canonical_form(text).split()
        for typo, original, out in zip(text.split(), story.split(), fixed, strict=True):
            word = typo.strip('.,!?"')
            if typo != original and word.isalpha() and word.islower() and word not in spell_checker():
                non_words += 1
                repaired += out == original
    assert non_words >= 3 and repaired >= 0.6 * non_words, (non_words, repaired)


def test_shouted_words_are_read_as_plain_words_and_not_charged():
    """`caps_words_15` (a held-out attack): the canonical form has the clean story's words in normal case, and the
    shouting is not counted as obfuscation (humans shout)."""
    from binoculars_env.canonical import canonical_parts

    for seed, story in enumerate(STORIES):
        text = attacked("caps_words_15", story, seed)
        parts = canonical_parts(text)
        assert text != story and parts.text.lower() == canonical_form(story).lower()
        assert sum(c.isupper() for c in parts.text) <= sum(c.isupper() for c in story) + 1
        assert obfuscation(text, parts.charged) == obfuscation(story, canonical_form(story))


@pytest.mark.parametrize(
    ("attack", "budget"), [("homoglyphs_10", 0.03), ("zero_width", 0.03), ("all_caps", 0.03)]
)
def test_heavy_surface_edits_are_beyond_the_obfuscation_budget(attack, budget):
    for seed, story in enumerate(STORIES):
        text = attacked(attack, story, seed)
        assert obfuscation(text, canonical_form(text)) > budget >= obfuscation(story, canonical_form(story))


@pytest.mark.parametrize(
    ("attack", "statistics"),
    [
        # a Cyrillic sentence is half-mapped to Latin by the skeleton: no language then, but non-ASCII letters
        ("foreign_sentence", {"foreign_language_share", "non_ascii_letter_share"}),
        ("gibberish", {"function_word_share", "misspelled_share"}),
        # held-out attacks, caught by statistics of what human prose does not have
        ("dotted_initials", {"single_letter_share", "upper_share", "capitalised_word_share"}),
        ("leetspeak", {"digit_in_word_share", "single_letter_share"}),
    ],
)
def test_the_human_profile_catches_what_the_canonical_form_keeps(attack, statistics, shipped_bands):
    for seed, story in enumerate(STORIES):
        assert outside_band(text_profile(canonical_form(story)), shipped_bands, STATISTICS) is None
        profile = text_profile(canonical_form(attacked(attack, story, seed)))
        assert outside_band(profile, shipped_bands, STATISTICS) in statistics


@pytest.mark.parametrize(
    ("attack", "statistic"),
    [("dotted_initials", "single_letter_share"), ("leetspeak", "digit_in_word_share")],
)
def test_each_new_statistic_alone_catches_its_held_out_attack(attack, statistic, shipped_bands):
    for seed, story in enumerate(STORIES):
        assert outside_band(text_profile(canonical_form(story)), shipped_bands, [statistic]) is None
        profile = text_profile(canonical_form(attacked(attack, story, seed)))
        assert outside_band(profile, shipped_bands, [statistic]) == statistic


@pytest.fixture(scope="module")
def shipped_bands():
    from binoculars_env.profile import load_bands

    return load_bands(None)


@pytest.fixture
def defended(tiny_reward_config):
    """The tiny pair with the surface defenses at their defaults (the shared fixture turns them off)."""
    from binoculars_env.reward import RewardConfig

    defaults = RewardConfig()
    return tiny_reward_config.model_copy(
        update={
            "max_obfuscation": defaults.max_obfuscation,
            "profile_statistics": defaults.profile_statistics,
        }
    )


def test_the_reward_guards_attacks_and_each_knob_switches_its_guard_off(defended):
    story = STORIES[0]
    homoglyphs, foreign = attacked("homoglyphs_30", story), attacked("foreign_sentence", story, 1)
    clean, *guarded = score_completions([story, homoglyphs, foreign], defended)
    assert clean.guard is None and clean.obfuscation == 0.0
    assert [r.guard for r in guarded] == ["obfuscated", "profile:foreign_language_share"]
    assert guarded[0].score == clean.score  # scored as its canonical form: the clean story
    off = defended.model_copy(update={"max_obfuscation": None, "profile_statistics": []})
    assert [r.guard for r in score_completions([homoglyphs, foreign], off)] == [None, None]
    raw = off.model_copy(update={"canonical_steps": []})
    assert score_completions([homoglyphs], raw)[0].score != clean.score  # the detector sees the homoglyphs


def test_each_spelling_correction_is_charged_in_score_units(defended):
    """The margin is score - threshold - spelling_charge * corrected_share (before any scale); the share is
    counted here independently: the words where the canonical form with and without its spelling step differ."""
    import re

    without_spelling = [step for step in defended.canonical_steps if step != "spelling"]
    texts = [attacked("typos_15", story, seed) for seed, story in enumerate(STORIES)]
    unguarded = {"threshold": 0.0, "length_weight": 0.0, "max_obfuscation": None, "profile_statistics": []}
    charged = score_completions(texts, defended.model_copy(update=unguarded))
    free = score_completions(texts, defended.model_copy(update={**unguarded, "spelling_charge": 0.0}))
    for text, with_charge, without in zip(texts, charged, free, strict=True):
        before, after = canonical_form(text, without_spelling).split(), canonical_form(text).split()
        words = len(re.findall(r"[^\W\d_]+(?:'[^\W\d_]+)*", canonical_form(text)))
        share = sum(a != b for a, b in zip(before, after, strict=True)) / words
        assert share > 0 and with_charge.corrected_share == pytest.approx(share)
        assert with_charge.score == without.score and with_charge.guard is without.guard is None
        expected = min(2.0, max(-2.0, without.score - defended.spelling_charge * share))
        assert with_charge.reward == pytest.approx(expected, abs=1e-9)
        assert without.reward == pytest.approx(min(2.0, max(-2.0, without.score)), abs=1e-9)
    [clean] = score_completions([STORIES[0]], defended)
    assert clean.corrected_share == 0.0


def test_the_spelling_charge_counts_only_the_scored_span(defended):
    """Typos in a tail the detector never saw are neither scored nor charged."""
    config = defended.model_copy(update={"max_token_observed": 24})
    tail = " " + attacked("typos_15", " ".join(STORIES), 1)
    [head_only] = score_completions([STORIES[0]], config)
    [with_tail] = score_completions([STORIES[0] + tail], config)
    assert with_tail.score == head_only.score and with_tail.corrected_share == 0.0


def test_profile_bands_come_from_the_bands_file_then_the_calibration_file_then_the_package(
    defended, tmp_path
):
    import json

    from binoculars_env.profile import load_bands

    narrow = {name: [0.0, 0.0] for name in STATISTICS}
    calibration = tmp_path / "calibration.json"
    calibration.write_text(json.dumps({"thresholds": {"accuracy": 1.0}, "profile_bands": narrow}))
    wide = tmp_path / "bands.json"
    wide.write_text(json.dumps({"profile_bands": {name: [0.0, 1.0e9] for name in STATISTICS}}))
    assert defended.resolved_bands() == load_bands(None)
    with_calibration = defended.model_copy(update={"calibration_file": str(calibration), "threshold": 1.0})
    assert with_calibration.resolved_bands()["upper_share"] == (0.0, 0.0)
    assert score_completions([STORIES[0]], with_calibration)[0].guard.startswith("profile:")
    with_file = with_calibration.model_copy(update={"profile_bands_file": str(wide)})
    assert score_completions([STORIES[0]], with_file)[0].guard is None


@pytest.mark.real_model
@pytest.mark.parametrize("attack", ["typos_5", "typos_15"])
def test_typos_do_not_pay_on_smollm2(attack):
    """SmolLM2 as detector, with its committed calibration (threshold, scale, ceiling, bands): typos on the
    first 12 committed SmolLM2 stories earn less, on average, than the clean stories (docs/attacks.md measures
    all 40), and without the spelling charge they would earn more."""
    import json
    import statistics

    from binoculars_env.reward import RewardConfig

    from binoculars_rl.real_model import SMOLLM2_CALIBRATION, smollm2_dir

    stories_file = SMOLLM2_CALIBRATION.with_name("smollm2_stories.jsonl")
    stories = [json.loads(line)["text"] for line in stories_file.read_text().splitlines()][:12]
    typos = [attacked(attack, story, seed) for seed, story in enumerate(stories)]
    model = str(smollm2_dir())
    config = RewardConfig(
        observer_model=model,
        performer_model=model,
        scorer_device="cpu",
        calibration_file=str(SMOLLM2_CALIBRATION),
    )

    def mean_reward(texts, config):
        return statistics.fmean(r.reward for r in score_completions(texts, config))

    clean = mean_reward(stories, config)
    assert mean_reward(typos, config) < clean
    assert mean_reward(typos, config.model_copy(update={"spelling_charge": 0.0})) > clean
