"""The canonical form and the human profile: each step and statistic on text whose answer is known by hand."""

import json

import pytest
from binoculars_env.canonical import (
    CANONICAL_STEPS,
    canonical_form,
    canonical_parts,
    collapse_punctuation_runs,
    inner_upper_share,
    obfuscation,
    sentence_case,
)
from binoculars_env.profile import (
    SHIPPED_BANDS,
    STATISTICS,
    bands_from_json,
    fit_bands,
    load_bands,
    outside_band,
    text_profile,
)

PLAIN = "The dog ran to the house. Lily smiled at him, and they played in the garden until dark."


def test_plain_ascii_prose_is_its_own_canonical_form():
    assert canonical_form(PLAIN) == PLAIN
    assert obfuscation(PLAIN, canonical_form(PLAIN)) == 0.0


@pytest.mark.parametrize(
    ("step", "raw", "canonical"),
    [
        ("nfkc", "Ｔｈｅ ﬁsh swam.", "The fish swam."),
        ("invisible", "The\u200b dog\u2060 ran\u00ad home\ufe0f.", "The dog ran home."),
        ("confusables", "Thе dоg rаn hоmе.", "The dog ran home."),  # Cyrillic е о а
        ("emoji", "The dog ran home. 😀 Then it slept. 🐶", "The dog ran home. Then it slept."),
        (
            "punctuation",
            "The dog ran home!!! Then... it slept,, well??",
            "The dog ran home! Then. it slept, well?",
        ),
        ("case", "THE DOg RAN HOME. I sAW iT.", "The dog ran home. I saw it."),  # ALL CAPS: also `shouting`
        ("case", "tHe DoG rAn HoMe.", "The dog ran home."),
        ("spelling", "The dog rann to the huose and smiiled.", "The dog ran to the house and smiled."),
        (  # capitalised, mixed-case, two-letter and apostrophe typos; a capital or sentence start stays capital
            "spelling",
            'Atfer lunch, hSe said "Taht\'s ot mine." Then SShe left.',
            'After lunch, he said "That\'s to mine." Then She left.',
        ),
        (  # a shouted word takes the text's other casing of it, else lower case; I'M keeps its capital I
            "shouting",
            "Lily saw a VERY big dog in the park with her mother. LILY ran to it, and I'M happy.",
            "Lily saw a very big dog in the park with her mother. Lily ran to it, and I'm happy.",
        ),
    ],
)
def test_each_step_undoes_its_surface_edit_and_only_when_switched_on(step, raw, canonical):
    assert canonical_form(raw, [step]) == canonical
    others = [s for s in CANONICAL_STEPS if s != step]
    assert canonical_form(raw, others) != canonical  # no other step does this step's work
    assert canonical_form(raw, []) == raw  # no steps: only spaces collapse


def test_the_spelling_step_reports_the_end_of_each_word_it_corrected():
    raw = "  The dog  rann to the huose, and Lily smiiled.  Teh end."
    parts = canonical_parts(raw)
    assert parts.text == canonical_form(raw) == "The dog ran to the house, and Lily smiled. The end."
    corrected = [parts.text[:end].split()[-1].strip(",.") for end in parts.corrected_ends]
    assert corrected == ["ran", "house", "smiled", "The"]
    assert parts.corrected_words() == 4
    assert parts.corrected_words(upto=parts.text.index("house") + len("house")) == 2  # "house" ends there
    assert parts.corrected_words(upto=parts.text.index("house")) == 1
    assert canonical_parts(raw, [s for s in CANONICAL_STEPS if s != "spelling"]).corrected_ends == ()
    assert canonical_parts(PLAIN).corrected_ends == ()


def test_shouting_is_undone_without_being_charged_as_obfuscation():
    raw = "SO the dog Quixby ran to the house. Lily was VERY happy, and QUIXBY played with NASA until dark. "
    raw += "It was a lovely long day, and they all went to sleep early."
    parts = canonical_parts(raw)
    assert parts.text == (  # Quixby: a name the text writes plainly; NASA: not a dictionary word, an acronym
        "So the dog Quixby ran to the house. Lily was very happy, and Quixby played with NASA until dark. "
        "It was a lovely long day, and they all went to sleep early."
    )
    assert parts.before_shouting == raw and parts.charged == raw
    assert obfuscation(raw, parts.charged) == 0.0 < obfuscation(raw, parts.text)
    assert canonical_parts(PLAIN).before_shouting is None and canonical_parts(PLAIN).charged == PLAIN
    # abnormal case overall (ALL CAPS) is the `case` step's, and charged
    shouted = PLAIN.upper()
    assert canonical_parts(shouted).charged == canonical_parts(shouted).text != shouted


def test_names_and_normal_capitals_are_left_alone():
    text = "Tim and NASA went to Paris. Mr. Brown said the Qwxl was gone."
    assert inner_upper_share(text) == pytest.approx(3 / 33)  # ASA of NASA among the 33 non-initial letters
    assert canonical_form(text) == text  # acronyms are not spell-checked; names it knows or cannot fix stay
    assert (
        canonical_form("I couldn't go. OK, the TV was on.", ["spelling"])
        == "I couldn't go. OK, the TV was on."
    )


def test_obfuscation_is_edit_distance_per_character_ignoring_whitespace():
    assert obfuscation("ab  cd", "ab cd") == 0.0
    assert obfuscation("abcd", "abce") == pytest.approx(1 / 4)
    assert obfuscation("", "") == 0.0


def test_helpers():
    assert collapse_punctuation_runs("wait!!! what?? ok...") == "wait! what? ok."
    assert sentence_case("HELLO THERE. i AM HERE! yes") == "Hello there. I am here! Yes"


def test_unknown_steps_are_rejected():
    with pytest.raises(ValueError, match="unknown canonical steps \\['upper'\\]"):
        canonical_form("x", ["upper"])


def test_profile_statistics_by_hand():
    text = "Thé DOG ran, and the cat hid! Xqzt blorf."
    profile = text_profile(text)
    assert set(profile) == set(STATISTICS)
    letters = "ThéDOGranandthecathidXqztblorf"
    assert profile["non_ascii_letter_share"] == pytest.approx(1 / len(letters))
    assert profile["upper_share"] == pytest.approx(sum(c.isupper() for c in letters) / len(letters))
    words = ["Thé", "DOG", "ran", "and", "the", "cat", "hid", "Xqzt", "blorf"]
    assert profile["capitalised_word_share"] == pytest.approx(3 / 9)
    assert profile["punctuation_per_word"] == pytest.approx(3 / 9)
    assert profile["function_word_share"] == pytest.approx(2 / 9)  # and, the
    assert profile["misspelled_share"] == pytest.approx(3 / len(words))  # thé, xqzt, blorf
    assert profile["foreign_language_share"] == 0.0  # no sentence of 25+ characters
    assert profile["single_letter_share"] == profile["digit_in_word_share"] == 0.0


def test_stray_letters_and_digits_inside_words_by_hand():
    profile = text_profile("K. W. the d0g ran 4 miles, I said, and a c4t hid in 9mm.")
    # words (letter runs): K W the d g ran miles I said and a c t hid in mm
    assert profile["single_letter_share"] == pytest.approx(6 / 16)  # K W d g c t; not I or a
    assert profile["digit_in_word_share"] == pytest.approx(2 / 16)  # d0g c4t; not 4 or the unit 9mm


def test_a_confident_foreign_sentence_counts_by_its_characters():
    english = "The children walked home slowly and talked about everything they had seen that day."
    german = "Die Kinder gingen langsam nach Hause und sprachen über alles, was sie gesehen hatten."
    assert text_profile(english)["foreign_language_share"] == 0.0
    share = text_profile(f"{english} {german}")["foreign_language_share"]
    assert share == pytest.approx(len(german) / (len(english) + len(german)))
    assert text_profile(german, language="de")["foreign_language_share"] == 0.0


def test_bands_are_padded_quantiles_of_the_human_values():
    texts = [f"The dog number {'very ' * i}happily ran home to see the cat." for i in range(30)]
    bands = fit_bands(texts)
    import numpy as np

    values = np.array([text_profile(canonical_form(t))["function_word_share"] for t in texts])
    low, high = np.quantile(values, [0.005, 0.995])
    pad = max(0.5 * (high - low), 0.02)
    assert bands["function_word_share"] == pytest.approx((max(0.0, low - pad), min(1.0, high + pad)))
    inside = text_profile(texts[3])
    assert outside_band(inside, bands, STATISTICS) is None
    assert outside_band({**inside, "upper_share": 0.9}, bands, STATISTICS) == "upper_share"
    with pytest.raises(ValueError, match="at least 20 human texts"):
        fit_bands(texts[:5])


def test_bands_json_is_checked(tmp_path):
    good = {"profile_bands": {name: [0.0, 1.0] for name in STATISTICS}}
    assert bands_from_json(good, "x")["upper_share"] == (0.0, 1.0)
    with pytest.raises(ValueError, match="lacks \\['upper_share'\\]"):
        bands_from_json({"profile_bands": {n: [0, 1] for n in STATISTICS if n != "upper_share"}}, "x")
    with pytest.raises(ValueError, match="low 0.5 > high 0.1"):
        bands_from_json({"profile_bands": {**good["profile_bands"], "upper_share": [0.5, 0.1]}}, "x")
    with pytest.raises(ValueError, match="no `profile_bands` object"):
        bands_from_json({}, "x")


def test_the_shipped_bands_load_and_record_how_they_were_made():
    payload = json.loads(SHIPPED_BANDS.read_text())
    assert load_bands(None) == bands_from_json(payload, "shipped")
    assert payload["command"] == "uv run python scripts/profile_bands.py"
    assert payload["split_half_guarded_share"] <= 0.02
