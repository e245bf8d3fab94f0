"""The human profile: cheap statistics of a text, each with a band calibrated on human-written text.

A completion that looks like nothing a human writes — too many non-ASCII or capital letters, punctuation on every
word, no function words, misspelled words everywhere, sentences in another language — can still fool the
detector. Each statistic below has a band [low, high] fitted on human text (`fit_bands`); a completion whose
canonical form (binoculars_env.canonical, the text the detector scores) lies outside a band gets the guard
`profile:<statistic>`.

Statistics (words = runs of letters and apostrophes; shares are 0.0 for a text without the counted units):
    non_ascii_letter_share  non-ASCII letters / letters (typographic quotes and dashes are not letters)
    upper_share             upper-case letters / letters
    capitalised_word_share  words starting with an upper-case letter / words
    punctuation_per_word    punctuation characters (Unicode P*) / words
    function_word_share     words in scikit-learn's English stop-word list / words
    misspelled_share        words `pyspellchecker`'s English dictionary does not know / words
    single_letter_share     one-letter words other than "a" and "I" / words (stray initials: "K.W.L. dog")
    digit_in_word_share     whitespace-separated tokens with a digit between two letters ("h3llo") / words;
                            human text has units and ordinals ("9mm", "6th", "MiG-25"), not digits inside words
    foreign_language_share  characters of the sentences (≥ `MIN_LANGUAGE_CHARS` long) that `py3langid` assigns to
                            another language than the expected one with probability ≥ `MIN_LANGUAGE_PROBABILITY`
                            / characters of all such sentences (0.0 when none)

Bands: the `BAND_QUANTILES` quantiles of the human values, widened on each side by `BAND_PADDING` times their
distance, and by at least `MIN_BAND_PADDING` (a statistic whose human values are all 0 still allows a little);
shares keep their [0, 1] bounds. The shipped bands (`human_profile_bands.json`) come from
Debian's fortunes prose (`uv run python scripts/profile_bands.py`); scripts/calibrate.py writes bands fitted on
its human texts into the calibration JSON.
"""

from __future__ import annotations

import json
import re
import sys
import unicodedata
from functools import cache
from pathlib import Path

import numpy as np

from binoculars_env.canonical import canonical_form, spell_checker

STATISTICS = (
    "non_ascii_letter_share",
    "upper_share",
    "capitalised_word_share",
    "punctuation_per_word",
    "function_word_share",
    "misspelled_share",
    "single_letter_share",
    "digit_in_word_share",
    "foreign_language_share",
)
BAND_QUANTILES = (0.005, 0.995)
BAND_PADDING = 0.5
MIN_BAND_PADDING = 0.02
MIN_FIT_TEXTS = 20
"""Fewer human texts than this cannot place a band's 0.5% and 99.5% quantiles anywhere meaningful."""
MIN_LANGUAGE_CHARS = 25
MIN_LANGUAGE_PROBABILITY = 0.9
"""Shorter sentences are not language-identified (too little evidence: "Oh no!" has no language)."""
SHIPPED_BANDS = Path(__file__).with_name("human_profile_bands.json")

_WORD = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)*")
_SENTENCE = re.compile(r"[^.!?\n]+[.!?]*")
_DIGIT_IN_WORD = re.compile(r"[^\W\d_]\d+[^\W\d_]")
_WORDS_OF_ONE_LETTER = frozenset({"a", "A", "I"})
Bands = dict[str, tuple[float, float]]


def text_profile(text: str, language: str = "en") -> dict[str, float]:
    """Every statistic of `STATISTICS` for `text`; `language` is the ISO 639-1 code the text should be in."""
    chars = [c for c in text if not c.isspace()]
    letters = [c for c in chars if c.isalpha()]
    words = _WORD.findall(text)
    lower_words = [w.lower() for w in words]
    return {
        "non_ascii_letter_share": share(sum(not c.isascii() for c in letters), len(letters)),
        "upper_share": share(sum(c.isupper() for c in letters), len(letters)),
        "capitalised_word_share": share(sum(w[0].isupper() for w in words), len(words)),
        "punctuation_per_word": share(
            sum(unicodedata.category(c).startswith("P") for c in chars), len(words)
        ),
        "function_word_share": share(sum(w in _stop_words() for w in lower_words), len(words)),
        "misspelled_share": share(_misspelled(lower_words), len(words)),
        "single_letter_share": share(
            sum(len(w) == 1 and w not in _WORDS_OF_ONE_LETTER for w in words), len(words)
        ),
        "digit_in_word_share": share(
            sum(bool(_DIGIT_IN_WORD.search(token)) for token in text.split()), len(words)
        ),
        "foreign_language_share": foreign_language_share(text, language),
    }


def word_count(text: str) -> int:
    """Words of `text` as the statistics count them (runs of letters and apostrophes)."""
    return len(_WORD.findall(text))


def foreign_language_share(text: str, language: str) -> float:
    """Share of the characters of `text`'s identifiable sentences that py3langid confidently assigns to another
    language than `language`."""
    sentences = [s.strip() for s in _SENTENCE.findall(text)]
    sentences = [s for s in sentences if len(s) >= MIN_LANGUAGE_CHARS]
    if not sentences:
        return 0.0
    identifier = _language_identifier()
    foreign = 0
    for sentence in sentences:
        found, probability = identifier.classify(sentence)
        if found != language and probability >= MIN_LANGUAGE_PROBABILITY:
            foreign += len(sentence)
    return foreign / sum(len(s) for s in sentences)


def outside_band(
    profile: dict[str, float], bands: Bands, statistics: tuple[str, ...] | list[str]
) -> str | None:
    """The first of `statistics` whose value lies outside its band, else None."""
    for name in statistics:
        low, high = bands[name]
        if not low <= profile[name] <= high:
            return name
    return None


def canonical_profiles(texts: list[str], language: str = "en") -> list[dict[str, float]]:
    """`text_profile` of each text's default canonical form (the form the reward profiles)."""
    return [text_profile(canonical_form(text), language) for text in texts]


def fit_bands(texts: list[str], language: str = "en") -> Bands:
    """Bands of every statistic from human-written `texts`, profiled in their default canonical form (the form the
    reward profiles; see the module docstring)."""
    if len(texts) < MIN_FIT_TEXTS:
        raise ValueError(
            f"fitting profile bands needs at least {MIN_FIT_TEXTS} human texts, got {len(texts)}"
        )
    profiles = canonical_profiles(texts, language)
    bands = {}
    for name in STATISTICS:
        values = np.array([p[name] for p in profiles])
        low, high = (float(q) for q in np.quantile(values, BAND_QUANTILES))
        pad = max(BAND_PADDING * (high - low), MIN_BAND_PADDING)
        high = min(1.0, high + pad) if name.endswith("_share") else high + pad
        bands[name] = (max(0.0, low - pad), high)  # every statistic is a count ratio: never negative
    return bands


def profile_bands_entry(human_texts: list[str], language: str = "en") -> dict:
    """`{"profile_bands": …}` fitted on the human texts (what a calibration JSON holds), or {} with a note on
    stderr when there are fewer than `MIN_FIT_TEXTS` (the reward then keeps the shipped bands)."""
    if len(human_texts) < MIN_FIT_TEXTS:
        print(
            f"note: no profile_bands written ({len(human_texts)} human texts, {MIN_FIT_TEXTS} needed); "
            "the reward keeps the shipped bands",
            file=sys.stderr,
        )
        return {}
    bands = fit_bands(human_texts, language)
    return {"profile_bands": {name: list(bands[name]) for name in STATISTICS}}


def bands_from_json(payload: dict, source: str) -> Bands:
    """The `profile_bands` object of a calibration or bands JSON, checked: every statistic, low <= high."""
    raw = payload.get("profile_bands")
    if not isinstance(raw, dict):
        raise ValueError(f"{source} has no `profile_bands` object")
    missing = set(STATISTICS) - set(raw)
    if missing:
        raise ValueError(
            f"{source}: profile_bands lacks {sorted(missing)} (written by an older version?); refit it "
            "with scripts/calibrate.py or scripts/profile_bands.py"
        )
    bands = {}
    for name in STATISTICS:
        low, high = (float(v) for v in raw[name])
        if not low <= high:
            raise ValueError(f"{source}: profile band {name} has low {low} > high {high}")
        bands[name] = (low, high)
    return bands


@cache
def load_bands(path: str | None) -> Bands:
    """Bands from a JSON file with a `profile_bands` object; None: the shipped bands."""
    file = SHIPPED_BANDS if path is None else Path(path)
    return bands_from_json(json.loads(file.read_text()), str(file))


def share(count: int, total: int) -> float:
    """count / total; 0.0 when there is nothing to count."""
    return count / total if total else 0.0


def _misspelled(lower_words: list[str]) -> int:
    unknown = spell_checker().unknown(lower_words)
    return sum(w in unknown for w in lower_words)


@cache
def _stop_words() -> frozenset[str]:
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    return frozenset(ENGLISH_STOP_WORDS)


@cache
def _language_identifier():
    """py3langid's model with normalised probabilities (its module-level `classify` gives raw log-scores)."""
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    return LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
