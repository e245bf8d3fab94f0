"""Surface attacks on AI-written text: cheap edits that may make the Binoculars detector call a text human.

Each attack is a pure function `attack(text, rng, human=()) -> str`: it reads nothing but its arguments, draws
every random choice from `rng` (a `random.Random`), so the same seed gives the same output, and returns a new
string. `human` is a pool of human-written passages, read only by the plagiarism baselines.

`ATTACKS` maps a name to an `Attack` (callable the same way, with a one-line `description`):

    import random
    from binoculars_rl.attacks import ATTACKS
    ATTACKS["typos_15"]("Once upon a time ...", random.Random(0))

`benchmarks/attacks.py` scores every attack against the reward; docs/attacks.md has the results.

Where the data comes from:
- homoglyphs: Unicode's confusables (UTS #39) as shipped by the `confusable-homoglyphs` package, restricted to
  Cyrillic and Greek letters of the same case as the Latin letter they imitate;
- format characters: every code point of Unicode general category Cf (format) with bidirectional class BN
  (boundary neutral): zero-width space/joiners, word joiner, soft hyphen, BOM, tag characters…; bidi
  controls (which visibly reorder text) are left out;
- emoji: the Emoticons block (U+1F600–U+1F64F), read from Python's `unicodedata`;
- rare synonyms and foreign sentences: small project-written tables below (no PyPI package ships an offline
  thesaurus: WordNet's Python readers download their data at run time).
"""

from __future__ import annotations

import random
import re
import string
import sys
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache

AttackFn = Callable[[str, random.Random, Sequence[str]], str]

_LETTER_RUN = re.compile(r"[A-Za-z]+")
_SENTENCE = re.compile(r".+?(?:[.!?]+[\"'”’]?(?=\s|$)|$)", re.DOTALL)
_SENTENCE_END = re.compile(r"[.!?]+[\"'”’]?(?=\s|$)")
_PUNCTUATION_RUN = re.compile(r"([.,!?])\1*(?=[\s\"'”’]|$)")

CONFUSABLE_SCRIPTS = ("CYRILLIC", "GREEK")
ZERO_WIDTH_SPACE = "\u200b"
EMOTICONS = tuple(
    chr(c)
    for c in range(0x1F600, 0x1F650)
    if unicodedata.category(chr(c)) == "So" and unicodedata.name(chr(c), "")
)
"""The Emoticons block of the Unicode version Python's `unicodedata` carries."""

# Common words of children's stories -> rare or archaic words of (near) the same meaning. Project-written:
# each replacement is a dictionary synonym far rarer in English than the word it replaces.
RARE_SYNONYMS: dict[str, tuple[str, ...]] = {
    "big": ("gargantuan", "brobdingnagian"),
    "small": ("diminutive", "lilliputian"),
    "little": ("wee", "minuscule"),
    "happy": ("felicitous", "blithe"),
    "sad": ("lachrymose", "dolorous"),
    "scared": ("timorous", "pusillanimous"),
    "angry": ("irascible", "choleric"),
    "tired": ("enervated", "lassitudinous"),
    "good": ("salubrious", "estimable"),
    "bad": ("nefarious", "baleful"),
    "pretty": ("pulchritudinous", "comely"),
    "beautiful": ("resplendent", "pulchritudinous"),
    "fast": ("fleet", "expeditious"),
    "quickly": ("expeditiously", "posthaste"),
    "slowly": ("languidly", "lumberingly"),
    "old": ("antediluvian", "hoary"),
    "new": ("newfangled", "nascent"),
    "funny": ("droll", "waggish"),
    "smart": ("sagacious", "perspicacious"),
    "kind": ("benevolent", "beneficent"),
    "friend": ("confidant", "comrade"),
    "friends": ("confidants", "comrades"),
    "house": ("domicile", "abode"),
    "home": ("abode", "domicile"),
    "dog": ("cur", "canine"),
    "cat": ("feline", "mouser"),
    "bird": ("fowl", "avian"),
    "tree": ("arbor", "bole"),
    "trees": ("arbors", "boles"),
    "walked": ("perambulated", "ambulated"),
    "ran": ("scampered", "scurried"),
    "looked": ("peered", "espied"),
    "saw": ("espied", "descried"),
    "said": ("opined", "averred"),
    "asked": ("queried", "inquired"),
    "smiled": ("beamed", "simpered"),
    "laughed": ("chortled", "guffawed"),
    "cried": ("blubbered", "wept"),
    "ate": ("devoured", "masticated"),
    "played": ("frolicked", "gambolled"),
    "play": ("frolic", "gambol"),
    "went": ("sojourned", "repaired"),
    "found": ("unearthed", "espied"),
    "wanted": ("coveted", "yearned"),
    "loved": ("adored", "cherished"),
    "liked": ("relished", "savoured"),
    "day": ("diurnal span", "morrow"),
    "night": ("eventide", "gloaming"),
    "very": ("exceedingly", "inordinately"),
    "toy": ("bauble", "trinket"),
    "ball": ("orb", "sphere"),
    "food": ("victuals", "viands"),
    "water": ("aqua", "brine"),
    "sun": ("orb of day", "sol"),
    "mom": ("matriarch", "progenitrix"),
    "dad": ("patriarch", "progenitor"),
    "help": ("succour", "abet"),
    "helped": ("succoured", "abetted"),
    "together": ("conjointly", "in concert"),
    "always": ("perpetually", "evermore"),
}

# One plain sentence in each of several languages, project-written (translations of the same English sentence:
# "The children walked home slowly, talking about everything they had seen that day.").
FOREIGN_SENTENCES: tuple[str, ...] = (
    "Les enfants sont rentrés lentement à la maison en parlant de tout ce qu'ils avaient vu ce jour-là.",
    "Die Kinder gingen langsam nach Hause und sprachen über alles, was sie an diesem Tag gesehen hatten.",
    "Los niños caminaron despacio a casa, hablando de todo lo que habían visto ese día.",
    "I bambini tornarono a casa lentamente, parlando di tutto ciò che avevano visto quel giorno.",
    "As crianças voltaram para casa devagar, falando de tudo o que tinham visto naquele dia.",
    "De kinderen liepen langzaam naar huis en praatten over alles wat ze die dag hadden gezien.",
    "Дети медленно шли домой, разговаривая обо всём, что видели в тот день.",
    "Dzieci wracały powoli do domu, rozmawiając o wszystkim, co widziały tego dnia.",
    "Barnen gick långsamt hem och pratade om allt de hade sett den dagen.",
    "Çocuklar o gün gördükleri her şey hakkında konuşarak yavaşça eve yürüdüler.",
)


@cache
def latin_confusables() -> dict[str, tuple[str, ...]]:
    """ASCII letter -> its Cyrillic and Greek look-alikes of the same case (Unicode confusables data)."""
    from confusable_homoglyphs import categories, confusables

    table = {}
    for letter in string.ascii_letters:
        case = unicodedata.category(letter)
        lookalikes = sorted(
            {
                entry["c"]
                for entry in confusables.confusables_data.get(letter, [])
                if len(entry["c"]) == 1
                and categories.alias(entry["c"]) in CONFUSABLE_SCRIPTS
                and unicodedata.category(entry["c"]) == case
            }
        )
        if lookalikes:
            table[letter] = tuple(lookalikes)
    return table


@cache
def invisible_format_characters() -> tuple[str, ...]:
    """Every code point of general category Cf with bidirectional class BN (invisible, no reordering)."""
    return tuple(
        chr(c)
        for c in range(sys.maxunicode + 1)
        if unicodedata.category(chr(c)) == "Cf" and unicodedata.bidirectional(chr(c)) == "BN"
    )


def count_for(rate: float, population: int) -> int:
    """How many of `population` items an attack at `rate` edits: rate × population, rounded half up."""
    if not 0 <= rate <= 1:
        raise ValueError(f"rate must lie in [0, 1], got {rate}")
    return int(rate * population + 0.5)


# --- character-level -------------------------------------------------------------------------------------


def homoglyphs(text: str, rng: random.Random, rate: float) -> str:
    """`rate` of the text's ASCII letters (rounded half up; at most every letter that has a look-alike)
    replaced by a Cyrillic or Greek confusable."""
    table = latin_confusables()
    letters = sum(ch in string.ascii_letters for ch in text)
    candidates = [i for i, ch in enumerate(text) if ch in table]
    chosen = rng.sample(candidates, min(count_for(rate, letters), len(candidates)))
    chars = list(text)
    for i in sorted(chosen):
        chars[i] = rng.choice(table[chars[i]])
    return "".join(chars)


def zero_width_spaces(text: str, rng: random.Random) -> str:
    """A zero-width space (U+200B) at a random interior point of every word of two or more letters."""

    def split(match: re.Match) -> str:
        word = match.group()
        if len(word) < 2:
            return word
        cut = rng.randrange(1, len(word))
        return word[:cut] + ZERO_WIDTH_SPACE + word[cut:]

    return _LETTER_RUN.sub(split, text)


def format_characters(text: str, rng: random.Random, rate: float) -> str:
    """A random invisible format character (Unicode Cf, bidi class BN) after `rate` of the ASCII letters."""
    pool = invisible_format_characters()
    letters = [i for i, ch in enumerate(text) if ch in string.ascii_letters]
    after = set(rng.sample(letters, count_for(rate, len(letters))))
    return "".join(ch + (rng.choice(pool) if i in after else "") for i, ch in enumerate(text))


def all_caps(text: str, rng: random.Random) -> str:
    """Every letter upper-cased."""
    return text.upper()


def random_capitalisation(text: str, rng: random.Random, probability: float = 0.5) -> str:
    """Each ASCII letter upper-cased with `probability`, else lower-cased."""
    return "".join(
        (ch.upper() if rng.random() < probability else ch.lower()) if ch in string.ascii_letters else ch
        for ch in text
    )


def gibberish(text: str, rng: random.Random) -> str:
    """Every ASCII word replaced by random letters of the same length (capitalised where it was)."""

    def scramble(match: re.Match) -> str:
        word = match.group()
        letters = "".join(rng.choice(string.ascii_lowercase) for _ in word)
        return letters.capitalize() if word[0].isupper() else letters

    return _LETTER_RUN.sub(scramble, text)


# --- word-level --------------------------------------------------------------------------------------------


def _edit_words(text: str, rng: random.Random, rate: float, edit: Callable[[str], str]) -> str:
    """`edit` applied to `rate` of the words of two or more ASCII letters (rounded half up, seeded choice)."""
    words = [m for m in _LETTER_RUN.finditer(text) if len(m.group()) >= 2]
    chosen = sorted(rng.sample(range(len(words)), count_for(rate, len(words))))
    pieces, end = [], 0
    for index in chosen:
        match = words[index]
        pieces += [text[end : match.start()], edit(match.group())]
        end = match.end()
    return "".join(pieces) + text[end:]


def typo(word: str, rng: random.Random) -> str:
    """One typing error in a word of two or more letters: adjacent letters swapped, a letter dropped or a
    letter doubled (always a different word: a swap needs two different adjacent letters)."""
    if len(word) < 2:
        raise ValueError(f"a typo needs a word of at least 2 letters, got {word!r}")
    swappable = [i for i in range(len(word) - 1) if word[i] != word[i + 1]]
    kind = rng.choice(("swap", "drop", "double") if swappable else ("drop", "double"))
    if kind == "swap":
        i = rng.choice(swappable)
        return word[:i] + word[i + 1] + word[i] + word[i + 2 :]
    i = rng.randrange(len(word))
    return word[:i] + word[i + 1 :] if kind == "drop" else word[:i] + word[i] + word[i:]


def typos(text: str, rng: random.Random, rate: float) -> str:
    """One typo (swap, drop or double) in `rate` of the words of two or more ASCII letters."""
    return _edit_words(text, rng, rate, lambda word: typo(word, rng))


def rare_synonyms(text: str, rng: random.Random) -> str:
    """Every word found in `RARE_SYNONYMS` (case-insensitively) replaced by one of its rare synonyms, keeping
    a capital initial."""

    def replace(match: re.Match) -> str:
        word = match.group()
        options = RARE_SYNONYMS.get(word.lower())
        if options is None:
            return word
        choice = rng.choice(options)
        return choice.capitalize() if word[0].isupper() else choice

    return _LETTER_RUN.sub(replace, text)


def sentences(text: str) -> list[str]:
    """The text's sentences (ending in . ! or ?, with a closing quote), stripped; a trailing fragment counts."""
    return [s.strip() for s in _SENTENCE.findall(text) if s.strip()]


def word_shuffle(text: str, rng: random.Random) -> str:
    """The whitespace-separated words of each sentence in a random order (sentences keep their order)."""
    shuffled = []
    for sentence in sentences(text):
        words = sentence.split()
        rng.shuffle(words)
        shuffled.append(" ".join(words))
    return " ".join(shuffled)


def repetition(text: str, rng: random.Random) -> str:
    """The first sentence looped until the result has at least as many words as the text."""
    first = sentences(text)[0] if text.strip() else ""
    if not first:
        return text
    needed, per_copy = len(text.split()), len(first.split())
    return " ".join([first] * -(-needed // per_copy))


# --- additions ---------------------------------------------------------------------------------------------


def emoji_after_sentences(text: str, rng: random.Random) -> str:
    """A random emoticon (Unicode Emoticons block) after every sentence end."""
    return _SENTENCE_END.sub(lambda m: f"{m.group()} {rng.choice(EMOTICONS)}", text)


def extra_punctuation(text: str, rng: random.Random, times: int = 3) -> str:
    """Every run of `.`, `,`, `!` or `?` before a space, a quote or the end stretched to `times` marks
    ("." -> "...", "!" -> "!!!"; "3.5" stays)."""
    return _PUNCTUATION_RUN.sub(lambda m: m.group(1) * times, text)


def foreign_sentence(text: str, rng: random.Random) -> str:
    """One sentence in another language (from `FOREIGN_SENTENCES`) appended."""
    return f"{text.rstrip()} {rng.choice(FOREIGN_SENTENCES)}"


# --- held-out attacks: written after the defenses, to judge them (docs/attacks.md) -----------------------


def caps_words(text: str, rng: random.Random, rate: float) -> str:
    """`rate` of the words of two or more letters in CAPITALS (shouted emphasis: "a VERY big dog")."""
    return _edit_words(text, rng, rate, str.upper)


def dotted_initials(text: str, rng: random.Random, rate: float) -> str:
    """A run of 2-5 dotted random capitals ("K.W.L.") before `rate` of the words."""
    return _edit_words(
        text,
        rng,
        rate,
        lambda word: (
            "".join(f"{rng.choice(string.ascii_uppercase)}." for _ in range(rng.randint(2, 5))) + " " + word
        ),
    )


def numbers(text: str, rng: random.Random, rate: float) -> str:
    """A random number of 1-4 digits before `rate` of the words."""
    return _edit_words(text, rng, rate, lambda word: f"{rng.randint(0, 10 ** rng.randint(1, 4) - 1)} {word}")


def leetspeak(text: str, rng: random.Random, rate: float) -> str:
    """`rate` of the letters a, e, i, o, s, t (either case) replaced by the digit they resemble (4 3 1 0 5 7)."""
    table = dict(zip("aeiostAEIOST", "431057431057", strict=True))
    candidates = [i for i, ch in enumerate(text) if ch in table]
    chosen = set(rng.sample(candidates, count_for(rate, len(candidates))))
    return "".join(table[ch] if i in chosen else ch for i, ch in enumerate(text))


def word_drop(text: str, rng: random.Random, rate: float) -> str:
    """`rate` of the whitespace-separated words deleted (telegraphic text)."""
    words = text.split()
    dropped = set(rng.sample(range(len(words)), count_for(rate, len(words))))
    return " ".join(word for i, word in enumerate(words) if i not in dropped)


@cache
def common_words(count: int = 3000) -> tuple[str, ...]:
    """The `count` most frequent words of pyspellchecker's English dictionary (3+ letters)."""
    from binoculars_env.canonical import spell_checker

    frequent = spell_checker().word_frequency.dictionary.most_common()
    return tuple(word for word, _ in frequent if len(word) >= 3 and word.isalpha())[:count]


def inserted_words(text: str, rng: random.Random, rate: float) -> str:
    """A random common English word (`common_words`) after `rate` of the words (real words, wrong places)."""
    pool = common_words()
    return _edit_words(text, rng, rate, lambda word: f"{word} {rng.choice(pool)}")


def sentence_shuffle(text: str, rng: random.Random) -> str:
    """The sentences in a random order (each sentence intact)."""
    parts = sentences(text)
    rng.shuffle(parts)
    return " ".join(parts)


# --- plagiarism baselines ----------------------------------------------------------------------------------


def _human_passage(rng: random.Random, human: Sequence[str]) -> str:
    if not human:
        raise ValueError("this attack needs human passages (human=[...]); none were given")
    return rng.choice(list(human))


def human_verbatim(text: str, rng: random.Random, human: Sequence[str]) -> str:
    """A random human passage, returned verbatim instead of the text (plagiarism baseline)."""
    return _human_passage(rng, human)


def half_human(text: str, rng: random.Random, human: Sequence[str]) -> str:
    """The first half of the text's words followed by the second half of a random human passage's words."""
    ai_words, human_words = text.split(), _human_passage(rng, human).split()
    return " ".join(ai_words[: len(ai_words) // 2] + human_words[len(human_words) // 2 :])


# --- the catalogue -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Attack:
    """A named attack: `attack(text, rng, human=())`."""

    name: str
    description: str
    fn: AttackFn
    needs_human: bool = False

    def __call__(self, text: str, rng: random.Random, human: Sequence[str] = ()) -> str:
        if self.needs_human and not human:
            raise ValueError(f"attack {self.name!r} needs human passages (human=[...]); none were given")
        return self.fn(text, rng, human)


def _plain(fn: Callable[..., str], **kwargs) -> AttackFn:
    return lambda text, rng, human: fn(text, rng, **kwargs)


def _catalogue(*attacks: Attack) -> dict[str, Attack]:
    return {attack.name: attack for attack in attacks}


ATTACKS: dict[str, Attack] = _catalogue(
    Attack("homoglyphs_10", "10% of letters -> Cyrillic/Greek look-alikes", _plain(homoglyphs, rate=0.10)),
    Attack("homoglyphs_30", "30% of letters -> Cyrillic/Greek look-alikes", _plain(homoglyphs, rate=0.30)),
    Attack("zero_width", "a zero-width space inside every word", _plain(zero_width_spaces)),
    Attack(
        "format_chars",
        "an invisible format character after 10% of letters",
        _plain(format_characters, rate=0.10),
    ),
    Attack("typos_5", "a typo (swap/drop/double) in 5% of words", _plain(typos, rate=0.05)),
    Attack("typos_15", "a typo (swap/drop/double) in 15% of words", _plain(typos, rate=0.15)),
    Attack("all_caps", "ALL CAPS", _plain(all_caps)),
    Attack("random_caps", "each letter upper-case with probability 1/2", _plain(random_capitalisation)),
    Attack("emoji", "an emoticon after every sentence", _plain(emoji_after_sentences)),
    Attack("extra_punct", "every . , ! ? tripled", _plain(extra_punctuation)),
    Attack("word_shuffle", "words shuffled within each sentence", _plain(word_shuffle)),
    Attack("rare_synonyms", "common story words -> rare synonyms", _plain(rare_synonyms)),
    Attack("repetition", "the first sentence looped to the text's length", _plain(repetition)),
    Attack("gibberish", "every word -> random letters of the same length", _plain(gibberish)),
    Attack("foreign_sentence", "a sentence in another language appended", _plain(foreign_sentence)),
    # held-out attacks (written after the defenses)
    Attack("caps_words_15", "15% of words in CAPITALS", _plain(caps_words, rate=0.15)),
    Attack(
        "dotted_initials", 'dotted capitals ("K.W.") before 10% of words', _plain(dotted_initials, rate=0.10)
    ),
    Attack("numbers", "a random number before 10% of words", _plain(numbers, rate=0.10)),
    Attack("leetspeak", "10% of a/e/i/o/s/t -> 4/3/1/0/5/7", _plain(leetspeak, rate=0.10)),
    Attack("word_drop", "15% of words deleted", _plain(word_drop, rate=0.15)),
    Attack("inserted_words", "a random common word after 10% of words", _plain(inserted_words, rate=0.10)),
    Attack("sentence_shuffle", "sentences in a random order", _plain(sentence_shuffle)),
    Attack("human_verbatim", "plagiarism: a human passage verbatim", human_verbatim, needs_human=True),
    Attack(
        "half_human",
        "plagiarism: first half AI + second half of a human passage",
        half_human,
        needs_human=True,
    ),
)
