"""The attack catalogue (binoculars_rl.attacks): each attack does what its description says, is deterministic
under a seed, and the attack benchmark's table agrees with an independent computation."""

from __future__ import annotations

import csv
import importlib.util
import json
import math
import random
import re
import statistics
import string
import sys
import unicodedata
from pathlib import Path

import pytest

from binoculars.testing.tiny import story_corpus
from binoculars_rl import attacks
from binoculars_rl.attacks import ATTACKS

ROOT = Path(__file__).resolve().parent.parent
TEXTS = story_corpus(num_stories=6, seed=3)
HUMAN = [
    "I have always thought that the best part of a journey is the moment you decide to go. "
    "Everything after that is logistics, and logistics never made anybody happy.",
    "My grandmother kept a jar of buttons on the kitchen shelf; none of them matched, and she "
    "would not part with a single one, because each had come off a coat somebody she loved had worn.",
]
LETTERS = set(string.ascii_letters)
DRAW_NOTHING = {"all_caps", "extra_punct", "repetition"}
WORD = re.compile(r"[A-Za-z]+")


def letter_count(text: str) -> int:
    return sum(ch in LETTERS for ch in text)


def differing_positions(a: str, b: str) -> list[int]:
    assert len(a) == len(b)
    return [i for i, (x, y) in enumerate(zip(a, b, strict=True)) if x != y]


# --- the catalogue -----------------------------------------------------------------------------------------


def test_catalogue_names_the_required_attacks_with_descriptions():
    required = {
        "homoglyphs_10", "homoglyphs_30", "zero_width", "format_chars", "typos_5", "typos_15", "all_caps",
        "random_caps", "emoji", "extra_punct", "word_shuffle", "rare_synonyms", "repetition", "gibberish",
        "foreign_sentence", "human_verbatim", "half_human",
    }  # fmt: skip
    assert required <= set(ATTACKS)
    for name, attack in ATTACKS.items():
        assert attack.name == name
        assert attack.description and "\n" not in attack.description


@pytest.mark.parametrize("name", sorted(ATTACKS))
def test_every_attack_is_deterministic_under_a_seed_and_changes_the_text(name):
    attack = ATTACKS[name]
    for text in TEXTS:
        first = attack(text, random.Random(7), human=HUMAN)
        assert first == attack(text, random.Random(7), human=HUMAN)
        assert first != text
    outputs = {attack(TEXTS[0], random.Random(seed), human=HUMAN) for seed in range(5)}
    # the attacks that draw nothing give one output; every other one depends on the seed
    assert (len(outputs) == 1) == (name in DRAW_NOTHING), outputs


@pytest.mark.parametrize("name", sorted(ATTACKS))
def test_attacks_do_not_mutate_a_shared_human_pool(name):
    human = list(HUMAN)
    ATTACKS[name](TEXTS[0], random.Random(0), human=human)
    assert human == HUMAN


def test_plagiarism_attacks_need_human_passages():
    for name in ("human_verbatim", "half_human"):
        with pytest.raises(ValueError, match="needs human passages"):
            ATTACKS[name](TEXTS[0], random.Random(0))


# --- character-level ---------------------------------------------------------------------------------------


def test_confusable_table_maps_latin_letters_to_cyrillic_or_greek_letters_of_the_same_case():
    table = attacks.latin_confusables()
    assert {"a", "e", "o", "c", "p"} <= set(table)  # the common letters with well-known Cyrillic twins
    for latin, lookalikes in table.items():
        for glyph in lookalikes:
            script = unicodedata.name(glyph).split()[0]
            assert script in ("CYRILLIC", "GREEK"), (latin, glyph, unicodedata.name(glyph))
            assert unicodedata.category(glyph) == unicodedata.category(latin)
    # independent of the package: the Cyrillic small a (U+0430) imitates the Latin a
    assert "\u0430" in table["a"]


@pytest.mark.parametrize("rate", [0.10, 0.30])
def test_homoglyphs_replace_the_stated_share_of_letters_with_their_lookalikes(rate):
    table = attacks.latin_confusables()
    for text in TEXTS:
        out = attacks.homoglyphs(text, random.Random(1), rate=rate)
        changed = differing_positions(text, out)
        expected = min(math.floor(rate * letter_count(text) + 0.5), sum(ch in table for ch in text))
        assert len(changed) == expected
        for i in changed:
            assert out[i] in table[text[i]]


def test_named_homoglyph_attacks_use_their_rates():
    text = TEXTS[0]
    for name, rate in (("homoglyphs_10", 0.10), ("homoglyphs_30", 0.30)):
        assert ATTACKS[name](text, random.Random(2)) == attacks.homoglyphs(text, random.Random(2), rate=rate)


def test_invisible_format_characters_are_format_controls_without_bidi_reordering():
    pool = attacks.invisible_format_characters()
    assert "\u200b" in pool and "\u2060" in pool and "\u00ad" in pool  # ZWSP, word joiner, soft hyphen
    assert "\u202e" not in pool  # RIGHT-TO-LEFT OVERRIDE reorders visible text
    assert all(unicodedata.category(ch) == "Cf" for ch in pool)


def test_zero_width_puts_one_zwsp_inside_every_word_of_two_letters():
    for text in TEXTS:
        out = attacks.zero_width_spaces(text, random.Random(0))
        assert out.replace("\u200b", "") == text
        long_words = [w for w in WORD.findall(text) if len(w) >= 2]
        assert out.count("\u200b") == len(long_words)
        for piece in re.findall(r"[A-Za-z\u200b]+", out):
            assert not piece.startswith("\u200b") and not piece.endswith("\u200b")


def test_format_characters_follow_the_stated_share_of_letters():
    pool = set(attacks.invisible_format_characters())
    for text in TEXTS:
        out = attacks.format_characters(text, random.Random(0), rate=0.10)
        assert "".join(ch for ch in out if ch not in pool) == text
        inserted = [i for i, ch in enumerate(out) if ch in pool]
        assert len(inserted) == math.floor(0.10 * letter_count(text) + 0.5)
        assert all(out[i - 1] in LETTERS for i in inserted)


def test_case_attacks():
    for text in TEXTS:
        assert attacks.all_caps(text, random.Random(0)) == text.upper()
        out = attacks.random_capitalisation(text, random.Random(0))
        assert out.lower() == text.lower()
        letters = [ch for ch in out if ch in LETTERS]
        upper_share = sum(ch.isupper() for ch in letters) / len(letters)
        # each letter is upper-case with probability 1/2: within 4 binomial standard deviations
        assert abs(upper_share - 0.5) <= 4 * math.sqrt(0.25 / len(letters))


def test_gibberish_keeps_the_layout_and_replaces_the_letters():
    for text in TEXTS:
        out = attacks.gibberish(text, random.Random(0))
        assert len(out) == len(text)
        assert [m.span() for m in WORD.finditer(out)] == [m.span() for m in WORD.finditer(text)]
        assert all((a in LETTERS) == (b in LETTERS) for a, b in zip(text, out, strict=True))
        assert all(a == b for a, b in zip(text, out, strict=True) if a not in LETTERS)
        same = sum(a == b for a, b in zip(text, out, strict=True) if a in LETTERS)
        # random letters match the original by chance ~1/26 of the time (case folded: capitals stay capitals)
        assert same < 0.15 * letter_count(text)


# --- word-level --------------------------------------------------------------------------------------------


def is_single_typo(original: str, typed: str) -> bool:
    """True when `typed` is `original` with two adjacent letters swapped, one letter dropped or doubled."""
    if len(typed) == len(original) - 1:
        return any(original[:i] + original[i + 1 :] == typed for i in range(len(original)))
    if len(typed) == len(original) + 1:
        return any(original[:i] + original[i] + original[i:] == typed for i in range(len(original)))
    if len(typed) == len(original):
        diff = differing_positions(original, typed)
        return len(diff) == 2 and diff[1] == diff[0] + 1 and typed[diff[0]] == original[diff[1]]
    return False


@pytest.mark.parametrize("rate", [0.05, 0.15])
def test_typos_hit_the_stated_share_of_words_once_each(rate):
    kinds = set()
    for seed, text in enumerate(TEXTS * 3):
        out = attacks.typos(text, random.Random(seed), rate=rate)
        # a typo changes letters only, so the non-letter skeleton and the word count stay
        before, after = WORD.findall(text), WORD.findall(out)
        assert WORD.sub("", out) == WORD.sub("", text) and len(before) == len(after)
        eligible = [w for w in before if len(w) >= 2]
        changed = [(a, b) for a, b in zip(before, after, strict=True) if a != b]
        assert len(changed) == math.floor(rate * len(eligible) + 0.5)
        for a, b in changed:
            assert is_single_typo(a, b), (a, b)
            kinds.add(len(b) - len(a))
    assert kinds == {-1, 0, 1}  # drops, swaps and doubles all occur


def test_typo_of_a_word_without_two_different_adjacent_letters_still_changes_it():
    for seed in range(20):
        assert attacks.typo("oo", random.Random(seed)) in {"o", "ooo"}
    with pytest.raises(ValueError):
        attacks.typo("a", random.Random(0))


def test_rare_synonyms_replace_table_words_only_and_keep_capitals():
    text = "Big dog ran home. The big cat was happy and sat on a mat."
    out = attacks.rare_synonyms(text, random.Random(0))
    assert out != text
    table = attacks.RARE_SYNONYMS
    # the table's keys are rewritten, every other word stays
    kept = [w for w in WORD.findall(text) if w.lower() not in table]
    assert [w for w in WORD.findall(out) if w in kept] == kept
    assert out.startswith(tuple(s.capitalize() for s in table["big"]))
    for word in ("dog", "ran", "home", "cat", "happy"):
        assert any(option in out for option in table[word])
    for common, rare in table.items():
        assert common not in rare and all(option != common for option in rare)


def test_sentences_cover_the_whole_text():
    for text in [*TEXTS, "It cost 3.5 coins! Then what? Nothing", 'He said "Stop!" and left.']:
        assert " ".join(attacks.sentences(text)).split() == text.split()


def test_word_shuffle_permutes_words_within_each_sentence():
    for text in TEXTS:
        out = attacks.word_shuffle(text, random.Random(0))
        before, after = attacks.sentences(text), out.split(" ")
        assert sorted(out.split()) == sorted(text.split())
        position = 0
        for sentence in before:
            count = len(sentence.split())
            assert sorted(after[position : position + count]) == sorted(sentence.split())
            position += count


def test_repetition_loops_the_first_sentence_to_the_texts_length():
    for text in TEXTS:
        out = attacks.repetition(text, random.Random(0))
        first = attacks.sentences(text)[0]
        copies = out.count(first)
        assert out == " ".join([first] * copies)
        words, per_copy = len(text.split()), len(first.split())
        assert words <= copies * per_copy < words + per_copy


# --- additions and plagiarism ------------------------------------------------------------------------------


def test_emoji_follow_every_sentence_end():
    emoticons = set(attacks.EMOTICONS)
    assert all(0x1F600 <= ord(e) < 0x1F650 for e in emoticons)
    for text in TEXTS:
        out = attacks.emoji_after_sentences(text, random.Random(0))
        added = [ch for ch in out if ch in emoticons]
        assert len(added) == len(attacks.sentences(text))
        assert re.sub(" [\U0001f600-\U0001f64f]", "", out) == text


def test_extra_punctuation_stretches_marks_and_nothing_else():
    collapse = re.compile(r"([.,!?])\1+")
    for text in [*TEXTS, "It cost 3.5 coins, she said... Wow!"]:
        out = attacks.extra_punctuation(text, random.Random(0))
        assert collapse.sub(r"\1", out) == collapse.sub(r"\1", text)
        assert re.sub(r"[.,!?]", "", out) == re.sub(r"[.,!?]", "", text)
        assert all(len(run) == 3 for run in re.findall(r"[.,!?]+(?=[\s\"']|$)", out) if len(set(run)) == 1)
    assert "3.5" in attacks.extra_punctuation("It cost 3.5 coins.", random.Random(0))


def test_foreign_sentence_is_appended_in_another_language():
    for text in TEXTS:
        out = attacks.foreign_sentence(text, random.Random(0))
        assert out.startswith(text.rstrip() + " ")
        assert out[len(text.rstrip()) + 1 :] in attacks.FOREIGN_SENTENCES
    # each sentence is foreign: it shares no word with the English one it translates, except names/cognates
    english = {"the", "children", "walked", "home", "slowly", "talking", "about", "everything", "they", "had"}
    english |= {"seen", "that", "day"}
    for sentence in attacks.FOREIGN_SENTENCES:
        assert len(english & set(WORD.findall(sentence.lower()))) <= 1


# --- held-out attacks ------------------------------------------------------------------------------------


def eligible_words(text: str) -> list[str]:
    return [w for w in WORD.findall(text) if len(w) >= 2]


def expected_count(rate: float, population: int) -> int:
    return math.floor(rate * population + 0.5)


def test_caps_words_shout_the_stated_share_of_words_and_change_nothing_else():
    for seed, text in enumerate(TEXTS):
        assert not any(w.isupper() for w in eligible_words(text))
        out = attacks.caps_words(text, random.Random(seed), rate=0.15)
        assert out.lower() == text.lower()
        changed = [(a, b) for a, b in zip(WORD.findall(text), WORD.findall(out), strict=True) if a != b]
        assert len(changed) == expected_count(0.15, len(eligible_words(text)))
        assert all(b == a.upper() and len(a) >= 2 for a, b in changed)


def test_dotted_initials_and_numbers_insert_tokens_before_the_stated_share_of_words():
    dotted, number = re.compile(r"(?:[A-Z]\.){2,5} "), re.compile(r"\b\d{1,4} ")
    for seed, text in enumerate(TEXTS):
        assert not re.search(r"\d|(?:[A-Z]\.){2}", text)
        want = expected_count(0.10, len(eligible_words(text)))
        for fn, token in ((attacks.dotted_initials, dotted), (attacks.numbers, number)):
            out = fn(text, random.Random(seed), rate=0.10)
            assert len(token.findall(out)) == want and token.sub("", out) == text


def test_leetspeak_swaps_the_stated_share_of_candidate_letters_for_digits():
    table = dict(zip("aeiostAEIOST", "431057431057", strict=True))
    for seed, text in enumerate(TEXTS):
        out = attacks.leetspeak(text, random.Random(seed), rate=0.10)
        changed = differing_positions(text, out)
        assert len(changed) == expected_count(0.10, sum(ch in table for ch in text))
        assert all(out[i] == table[text[i]] for i in changed)


def test_word_drop_deletes_the_stated_share_of_words_keeping_the_order():
    for seed, text in enumerate(TEXTS):
        before, after = text.split(), attacks.word_drop(text, random.Random(seed), rate=0.15).split()
        assert len(before) - len(after) == expected_count(0.15, len(before))
        remaining = iter(before)
        assert all(word in remaining for word in after)  # a subsequence of the original words


def test_inserted_words_add_common_words_after_the_stated_share_of_words():
    pool = set(attacks.common_words())
    assert len(pool) == 3000 and all(len(w) >= 3 and w.isalpha() for w in pool)
    for seed, text in enumerate(TEXTS):
        before = WORD.findall(text)
        after = WORD.findall(attacks.inserted_words(text, random.Random(seed), rate=0.10))
        assert len(after) - len(before) == expected_count(0.10, len(eligible_words(text)))
        extra = list(after)
        for word in before:  # remove the original words in order; what is left was inserted
            extra.remove(word)
        assert all(word in pool for word in extra)


def test_sentence_shuffle_keeps_every_sentence_intact():
    for seed, text in enumerate(TEXTS):
        out = attacks.sentence_shuffle(text, random.Random(seed))
        assert sorted(attacks.sentences(out)) == sorted(attacks.sentences(text))


def test_plagiarism_baselines():
    for seed, text in enumerate(TEXTS):
        assert attacks.human_verbatim(text, random.Random(seed), HUMAN) in HUMAN
        out = attacks.half_human(text, random.Random(seed), HUMAN).split()
        ai = text.split()[: len(text.split()) // 2]
        assert out[: len(ai)] == ai
        assert any(out[len(ai) :] == h.split()[len(h.split()) // 2 :] for h in HUMAN)


# --- the benchmark (benchmarks/attacks.py) end to end on the tiny pair ------------------------------------

BENCHMARK_COLUMNS = [
    "condition", "n", "mean_score", "mean_log_ppl", "mean_reward", "gain", "judged_human", "guarded", "guards",
    "rose",
]  # fmt: skip
SEED = 5


def load_benchmark():
    spec = importlib.util.spec_from_file_location("attacks_benchmark", ROOT / "benchmarks" / "attacks.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the file executes
    spec.loader.exec_module(module)
    return module


def write_jsonl(path: Path, texts: list[str]) -> Path:
    path.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts))
    return path


@pytest.fixture(scope="module")
def benchmark_run(tiny_pair, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("attack_bench")
    ai = story_corpus(num_stories=4, seed=11)
    args = [
        "--observer", str(tiny_pair.observer), "--performer", str(tiny_pair.performer), "--device", "cpu",
        "--ai-file", str(write_jsonl(tmp / "ai.jsonl", ai)),
        "--human-file", str(write_jsonl(tmp / "human.jsonl", HUMAN)),
        "--seed", str(SEED), "--out-dir", str(tmp / "out"),
    ]  # fmt: skip
    assert load_benchmark().main(args) == 0
    with (tmp / "out" / "attacks.csv").open() as f:
        table = {row["condition"]: row for row in csv.DictReader(f)}
    with (tmp / "out" / "attacks.csv").open() as f:
        header = next(csv.reader(f))
    run = json.loads((tmp / "out" / "attacks.json").read_text())
    return {"ai": ai, "table": table, "header": header, "run": run, "out": tmp / "out", "pair": tiny_pair}


def test_benchmark_writes_one_row_per_condition_with_the_documented_columns(benchmark_run):
    assert benchmark_run["header"] == BENCHMARK_COLUMNS
    assert list(benchmark_run["table"]) == ["clean_ai", "clean_human", *ATTACKS]
    assert {row["n"] for name, row in benchmark_run["table"].items() if name != "clean_human"} == {"4"}
    out = benchmark_run["out"]
    markdown = (out / "attacks.md").read_text()
    assert all(f"| {name} |" in markdown for name in benchmark_run["table"])
    assert (out / "attacks.png").read_bytes().startswith(b"\x89PNG")
    assert benchmark_run["run"]["num_ai"] == 4 and benchmark_run["run"]["num_human"] == len(HUMAN)


def test_benchmark_numbers_equal_an_independent_computation(benchmark_run):
    from binoculars_env.reward import RewardConfig, score_completions

    pair, threshold = benchmark_run["pair"], benchmark_run["run"]["threshold"]
    config = RewardConfig(
        observer_model=str(pair.observer), performer_model=str(pair.performer), scorer_device="cpu",
        threshold=threshold,
    )  # fmt: skip
    clean = score_completions(benchmark_run["ai"], config)
    attacked_texts = [
        ATTACKS["typos_15"](text, random.Random(f"{SEED}/typos_15/{i}"), HUMAN)
        for i, text in enumerate(benchmark_run["ai"])
    ]
    attacked = score_completions(attacked_texts, config)
    row, clean_row = benchmark_run["table"]["typos_15"], benchmark_run["table"]["clean_ai"]
    clean_mean = statistics.fmean(r.reward for r in clean)
    assert float(clean_row["mean_reward"]) == pytest.approx(clean_mean, abs=1e-9)
    assert float(row["mean_reward"]) == pytest.approx(statistics.fmean(r.reward for r in attacked), abs=1e-9)
    assert float(row["gain"]) == pytest.approx(float(row["mean_reward"]) - clean_mean, abs=1e-9)
    assert float(row["mean_score"]) == pytest.approx(statistics.fmean(r.score for r in attacked), abs=1e-9)
    assert float(row["mean_log_ppl"]) == pytest.approx(
        statistics.fmean(r.log_ppl for r in attacked), abs=1e-9
    )
    assert float(row["judged_human"]) == sum(r.score >= threshold for r in attacked) / len(attacked)
    assert float(row["guarded"]) == sum(r.guard is not None for r in attacked) / len(attacked)
    rose = [a.reward - c.reward > 0.25 for a, c in zip(attacked, clean, strict=True)]
    assert float(row["rose"]) == sum(rose) / len(rose)
    assert row["guards"] == " ".join(
        f"{g}:{sum(r.guard == g for r in attacked) / len(attacked):.2f}"
        for g in sorted({r.guard for r in attacked if r.guard})
    )


def test_benchmark_threshold_is_the_best_balanced_accuracy_cut_of_the_clean_classes(benchmark_run):
    with (benchmark_run["out"] / "attacks_per_text.csv").open() as f:
        rows = list(csv.DictReader(f))
    ai = [float(r["score"]) for r in rows if r["condition"] == "clean_ai"]
    human = [float(r["score"]) for r in rows if r["condition"] == "clean_human"]

    def balanced_accuracy(cut: float) -> float:  # AI when score < cut
        return (sum(s < cut for s in ai) / len(ai) + sum(s >= cut for s in human) / len(human)) / 2

    values = sorted(set(ai + human))
    cuts = [values[0], *((a + b) / 2 for a, b in zip(values, values[1:], strict=False)), values[-1] + 1]
    threshold = benchmark_run["run"]["threshold"]
    assert balanced_accuracy(threshold) == max(balanced_accuracy(c) for c in cuts)
    assert "fitted" in benchmark_run["run"]["threshold_source"]


def test_benchmark_rejects_bad_arguments_with_one_line(capsys):
    with pytest.raises(SystemExit) as exit_info:
        load_benchmark().main(["--max-texts", "0", "--observer", "x"])
    assert exit_info.value.code == 2
    assert "--max-texts must be >= 1" in capsys.readouterr().err


def test_benchmark_takes_a_seeded_subset_in_file_order():
    bench = load_benchmark()
    texts = [f"text {i}" for i in range(10)]
    assert bench.seeded_subset(texts, 20, seed=0) == texts
    subset = bench.seeded_subset(texts, 4, seed=1)
    assert subset == bench.seeded_subset(texts, 4, seed=1)
    assert len(set(subset)) == 4 and subset == sorted(subset, key=texts.index)


def test_benchmark_with_a_calibration_file_rewards_as_the_environment_does_on_held_out_human_text(
    tiny_pair, tmp_path
):
    from binoculars_env.reward import RewardConfig, score_completions

    from binoculars import save_thresholds

    ai = story_corpus(num_stories=3, seed=12)
    calibration = tmp_path / "calibration.json"
    from binoculars.calibration import text_key

    seen = [{"label": 0, "key": text_key(HUMAN[0])}, {"label": 1, "text": "an AI story of an older file"}]
    save_thresholds(calibration, {"accuracy": 0.93}, scale=0.05, max_log_ppl=9.0, samples=seen)
    args = [
        "--observer", str(tiny_pair.observer), "--performer", str(tiny_pair.performer), "--device", "cpu",
        "--ai-file", str(write_jsonl(tmp_path / "ai.jsonl", ai)),
        "--human-file", str(write_jsonl(tmp_path / "human.jsonl", HUMAN)),
        "--calibration-file", str(calibration), "--out-dir", str(tmp_path / "out"),
    ]  # fmt: skip
    assert load_benchmark().main(args) == 0
    run = json.loads((tmp_path / "out" / "attacks.json").read_text())
    assert (run["threshold"], run["scale"], run["max_log_ppl"]) == (0.93, 0.05, 9.0)
    assert run["num_human"] == 1 and run["human_texts_in_calibration_left_out"] == 1
    with (tmp_path / "out" / "attacks.csv").open() as f:
        table = {row["condition"]: row for row in csv.DictReader(f)}
    config = RewardConfig(
        observer_model=str(tiny_pair.observer), performer_model=str(tiny_pair.performer), scorer_device="cpu",
        calibration_file=str(calibration),
    )  # fmt: skip
    for condition, texts in (("clean_ai", ai), ("clean_human", HUMAN[1:])):
        expected = statistics.fmean(r.reward for r in score_completions(texts, config))
        assert float(table[condition]["mean_reward"]) == pytest.approx(expected, abs=1e-9)


def test_benchmark_takes_either_a_threshold_or_a_calibration_file(capsys, tmp_path):
    with pytest.raises(SystemExit) as exit_info:
        load_benchmark().main(["--threshold", "1.0", "--calibration-file", str(tmp_path / "c.json")])
    assert exit_info.value.code == 2
    assert "--threshold and --calibration-file exclude each other" in capsys.readouterr().err
    (tmp_path / "plain.json").write_text('{"thresholds": {"accuracy": 1.0}}')
    with pytest.raises(SystemExit, match="has no `samples` list"):
        load_benchmark().calibration_keys(tmp_path / "plain.json")
