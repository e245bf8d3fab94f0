"""The canonical form of a completion: what a human writer's plain text would be, before the detector reads it.

Surface edits that change no word a reader sees — look-alike letters from other scripts, invisible characters,
emoji, runs of punctuation, odd capitalisation — move the Binoculars score (they are rare tokens to the models)
without making the writing any more human. The reward scores the canonical form instead, and measures how far
the completion was from it: a text far from its canonical form is obfuscated, whatever the detector says.

Steps, in order (each can be switched off by name, see `CANONICAL_STEPS`):
    nfkc         Unicode compatibility normalisation (NFKC): full-width, ligatures, super/subscripts, …
    invisible    format (Cf), control (Cc, except newline and tab), private-use, surrogate and unassigned code
                 points, and variation selectors, removed
    confusables  characters Unicode's confusables data (UTS #39, via `confusable-homoglyphs`) lists as
                 look-alikes of an ASCII letter or digit become that character (the Latin skeleton)
    emoji        emoji removed (the `emoji` package's Unicode emoji data)
    punctuation  a run of one repeated punctuation character becomes one (`!!!` -> `!`, `...` -> `.`)
    case         when more than `MAX_INNER_UPPER_SHARE` of the letters inside words are upper-case (ALL CAPS,
                 rAnDoM caps), the text is lower-cased and re-capitalised at sentence starts and for "I"
    spelling     a word of 2+ letters (not ALL CAPS: acronyms) whose lower-case form `pyspellchecker`'s English
                 dictionary does not know, but that is one edit from a word it knows, becomes that word (its
                 most frequent one-edit neighbour), capitalised when the word began with a capital or a sentence:
                 typos are a cheap way to raise perplexity. Of a word with an apostrophe (`that's`), the part
                 before it is corrected unless the dictionary knows the whole word. The dictionary (word
                 frequencies of subtitles) knows common names (`lily`, `timmy`), so names are rarely changed.
    shouting     in a text of normal case (the `case` step did not fire), each shouted word (2+ letters, all
                 capitals: "a VERY big dog") takes the case the text writes it in elsewhere ("Benny" for
                 BENNY), else, if the dictionary knows it, lower case, capitalised at a sentence start (unknown
                 ones written no other way are acronyms: NASA). Humans shout, so these edits are not charged as obfuscation
                 (`Canonical.charged`); the detector reads the word, not its emphasis.
Runs of spaces are collapsed to one and spaces beside a newline dropped before the spelling step (whitespace is
never counted as obfuscation). `canonical_parts` also returns where the spelling step corrected a word: the reward
charges each correction (`RewardConfig.spelling_charge`), since it cannot fix every typo (`knew` -> `new` is a word).

`obfuscation(text, canonical)` is the character edit distance (Levenshtein, `rapidfuzz`) between the text and its
canonical form, both with whitespace runs collapsed, divided by the text's length: 0 for plain ASCII prose. The
reward measures it against `Canonical.charged`, the canonical form before the uncharged `shouting` step.
"""

from __future__ import annotations

import re
import string
import unicodedata
from bisect import bisect_right
from functools import cache
from typing import NamedTuple

CANONICAL_STEPS = ("nfkc", "invisible", "confusables", "emoji", "punctuation", "case", "spelling", "shouting")
MAX_INNER_UPPER_SHARE = 0.2
"""Case is normalised when more than this share of the letters after a word's first letter are upper-case.
Human prose has only acronyms there (a few percent at most); ALL CAPS gives ~1, random caps ~0.5."""

_KEEP_CONTROLS = frozenset("\n\t")
_REMOVED_CATEGORIES = frozenset({"Cf", "Cc", "Co", "Cs", "Cn"})
_SPACE_RUN = re.compile(r"[^\S\n]+")
_SPACE_AROUND_NEWLINE = re.compile(r"[^\S\n]*\n[^\S\n]*")
_WORD = re.compile(r"[^\W\d_]+")
_SENTENCE_START = re.compile(r"(^|[.!?][\"'”’)]*\s+)([a-z])")
_SENTENCE_OPENING = re.compile(r"(?:^|[.!?][\"'”’)]*\s+)[\"'“‘(]*")
_LONE_I = re.compile(r"\bi\b")
_SPELLED_WORD = re.compile(r"(?<![\w'’])([A-Za-z]{2,})((?:['’][A-Za-z]+)?)(?![\w'’])")
_CASED_WORD = re.compile(r"(?<![\w'’])[^\W\d_]+(?:['’][^\W\d_]+)*(?![\w'’])")


class Canonical(NamedTuple):
    """A canonical form and where its spelling step changed a word."""

    text: str
    corrected_ends: tuple[int, ...] = ()
    """End offset in `text` of each word the `spelling` step corrected, ascending."""
    before_shouting: str | None = None
    """`text` before the `shouting` step, when that step changed it."""

    @property
    def charged(self) -> str:
        """The form obfuscation is measured against: `text` without the uncharged `shouting` step's edits."""
        return self.text if self.before_shouting is None else self.before_shouting

    def corrected_words(self, upto: int | None = None) -> int:
        """Words the spelling step corrected that end within the first `upto` characters (None: all)."""
        return len(self.corrected_ends) if upto is None else bisect_right(self.corrected_ends, upto)


def canonical_form(text: str, steps: tuple[str, ...] | list[str] = CANONICAL_STEPS) -> str:
    """`text` after the named steps of `CANONICAL_STEPS` (applied in that order), spaces collapsed."""
    return canonical_parts(text, steps).text


def canonical_parts(text: str, steps: tuple[str, ...] | list[str] = CANONICAL_STEPS) -> Canonical:
    """`canonical_form(text, steps)` and the offsets of the words its spelling step corrected."""
    unknown = set(steps) - set(CANONICAL_STEPS)
    if unknown:
        raise ValueError(f"unknown canonical steps {sorted(unknown)}; known: {list(CANONICAL_STEPS)}")
    if "confusables" in steps:  # also before NFKC, which folds some look-alikes (lunate sigma) into letters
        text = text.translate(ascii_skeleton_table())  # the data does not list as confusable with Latin
    if "nfkc" in steps:
        text = unicodedata.normalize("NFKC", text)
    if "invisible" in steps:
        text = "".join(c for c in text if not _invisible(c))
    if "confusables" in steps:
        text = text.translate(ascii_skeleton_table())
    if "emoji" in steps:
        import emoji

        text = emoji.replace_emoji(text, replace="")
    if "punctuation" in steps:
        text = collapse_punctuation_runs(text)
    abnormal_case = "case" in steps and inner_upper_share(text) > MAX_INNER_UPPER_SHARE
    if abnormal_case:
        text = sentence_case(text)
    # Spaces first: later steps neither read nor change whitespace, and the spelling offsets are then final.
    parts = Canonical(collapse_spaces(text))
    if "spelling" in steps:
        parts = spelling_corrections(parts.text)
    # After spelling, which leaves ALL-CAPS words (acronyms) alone.
    if "shouting" in steps and not abnormal_case:
        quiet = unshouted(parts.text)
        if quiet != parts.text:  # same length: the spelling offsets stay valid
            parts = parts._replace(text=quiet, before_shouting=parts.text)
    return parts


def obfuscation(text: str, canonical: str) -> float:
    """Character edit distance between `text` and `canonical` (whitespace runs collapsed in both) per character
    of `text`; 0.0 for an empty text."""
    from rapidfuzz.distance import Levenshtein

    plain = collapse_spaces(text)
    return Levenshtein.distance(plain, canonical) / len(plain) if plain else 0.0


def collapse_spaces(text: str) -> str:
    """Runs of horizontal whitespace -> one space, none beside a newline; leading/trailing whitespace removed."""
    return _SPACE_RUN.sub(" ", _SPACE_AROUND_NEWLINE.sub("\n", text)).strip()


def collapse_punctuation_runs(text: str) -> str:
    """Each run of one repeated punctuation character (Unicode category P*) -> that character once."""
    out: list[str] = []
    for char in text:
        if out and char == out[-1] and unicodedata.category(char).startswith("P"):
            continue
        out.append(char)
    return "".join(out)


def inner_upper_share(text: str) -> float:
    """Upper-case share of the letters after each word's first letter (0.0 when there are none)."""
    inner = [c for word in _WORD.findall(text) for c in word[1:]]
    return sum(c.isupper() for c in inner) / len(inner) if inner else 0.0


def sentence_case(text: str) -> str:
    """Lower-cased, with the first letter of each sentence and the word "I" upper-cased."""
    text = _SENTENCE_START.sub(lambda m: m.group(1) + m.group(2).upper(), text.lower())
    return _LONE_I.sub("I", text)


def unshouted(text: str) -> str:
    """Each word of 2+ letters written in capitals takes the text's most frequent other casing of that word (the
    first seen on a tie); else, when the dictionary knows it, lower case with a capital at a sentence start; every
    other character (and an unknown all-caps word written no other way: an acronym) stays."""
    casings: dict[str, dict[str, int]] = {}
    for word in _CASED_WORD.findall(text):
        if not _shouted(word):
            counts = casings.setdefault(word.lower(), {})
            counts[word] = counts.get(word, 0) + 1
    sentence_starts = {m.end() for m in _SENTENCE_OPENING.finditer(text)}

    def quiet(match: re.Match) -> str:
        word = match.group(0)
        if not _shouted(word):
            return word
        if counts := casings.get(word.lower()):  # a name the text also writes plainly ("Benny")
            return max(counts, key=counts.__getitem__)  # dicts keep first-seen order: ties go to the first
        if word.lower().replace("’", "'") not in spell_checker():
            return word  # an acronym
        lower = _LONE_I.sub("I", word.lower())  # I'M -> I'm
        return lower[0].upper() + lower[1:] if match.start() in sentence_starts else lower

    return _CASED_WORD.sub(quiet, text)


def _shouted(word: str) -> bool:
    return word.isupper() and sum(c.isalpha() for c in word) >= 2


def spelling_corrections(text: str) -> Canonical:
    """`text` with every misspelled word replaced by its correction (the `spelling` step), and the end offset of
    each corrected word in the result."""
    sentence_starts = {m.end() for m in _SENTENCE_OPENING.finditer(text)}
    ends: list[int] = []
    shift = 0  # how much longer the result is than `text` so far

    def replace(match: re.Match) -> str:
        nonlocal shift
        stem, suffix = match.group(1), match.group(2)
        fixed = _correction(stem, suffix, match.start() in sentence_starts)
        if fixed is None:
            return match.group(0)
        word = fixed + suffix
        shift += len(word) - len(match.group(0))
        ends.append(match.end() + shift)
        return word

    return Canonical(_SPELLED_WORD.sub(replace, text), tuple(ends))


def _correction(stem: str, suffix: str, starts_sentence: bool) -> str | None:
    """The corrected stem of a word (`stem` + `suffix`, an apostrophe part), or None when it stays."""
    if stem.isupper() or (suffix and (stem + suffix).lower().replace("’", "'") in spell_checker()):
        return None
    fixed = corrected(stem.lower())
    if fixed == stem.lower():
        return None
    if stem[0].isupper() or starts_sentence:
        fixed = fixed[0].upper() + fixed[1:]
    return fixed


def corrected(word: str) -> str:
    """`word` if the English dictionary knows it (or no known word is one edit away), else its most frequent
    one-edit neighbour (ties: alphabetical, so the result does not depend on set ordering)."""
    checker = spell_checker()
    if word in checker:
        return word
    candidates = checker.known(checker.edit_distance_1(word))
    if not candidates:
        return word
    return max(sorted(candidates), key=checker.word_usage_frequency)


@cache
def spell_checker():
    """pyspellchecker's English dictionary (loaded once per process)."""
    from spellchecker import SpellChecker

    return SpellChecker(language="en", distance=1)


@cache
def ascii_skeleton_table() -> dict[int, str]:
    """Non-ASCII code point -> the ASCII letter or digit Unicode's confusables data says it looks like.

    The package's data is not symmetric (`c` lists Greek final sigma among its look-alikes, the sigma's entry does
    not list `c`), so both directions are read. Where a character has several ASCII look-alikes, the one of the
    same case (then the first in code-point order) is taken: the table does not depend on the data's ordering."""
    from confusable_homoglyphs import confusables

    ascii_alnum = set(string.ascii_letters + string.digits)
    lookalikes: dict[str, set[str]] = {}
    for char, entries in confusables.confusables_data.items():
        for other in (entry["c"] for entry in entries):
            for source, target in ((char, other), (other, char)):
                if len(source) == 1 and not source.isascii() and target in ascii_alnum:
                    lookalikes.setdefault(source, set()).add(target)
    table = {}
    for char, candidates in lookalikes.items():
        ordered = sorted(candidates)
        same_case = [c for c in ordered if c.isupper() == char.isupper()]
        table[ord(char)] = (same_case or ordered)[0]
    return table


def _invisible(char: str) -> bool:
    if char in _KEEP_CONTROLS:
        return False
    return unicodedata.category(char) in _REMOVED_CATEGORIES or "VARIATION SELECTOR" in unicodedata.name(
        char, ""
    )
