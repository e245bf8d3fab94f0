"""binoculars_rl.human_text: prose passages from fortune files, and a user's own human text file."""

from __future__ import annotations

import json

import pytest

from binoculars_rl.human_text import HumanTextError, fortune_passages, read_human_file

PROSE = (
    "The ferry left an hour late because the captain\n"
    "had gone looking for his reading glasses, which were, as\n"
    "everyone on the pier could have told him, on top of his head.\n"
    "\n"
    "Nobody said a word. It was that kind of town, and the\n"
    "fish would still be there in the afternoon anyway."
)
VERSE = (
    "There was a young lady of Niger\n"
    "Who smiled as she rode on a tiger;\n"
    "They returned from the ride\n"
    "With the lady inside,\n"
    "And the smile on the face of the tiger."
)
LONG_VERSE = (
    "Across the silent valley where the morning light is falling\n"
    "Beyond the ancient river where the distant birds are calling\n"
    "Upon the hills of heather where the shepherds leave their sorrow\n"
    "Beneath the sky of amber we will wander on tomorrow"
)
DIALOGUE = (
    "Q: How many programmers does it take to change a light bulb, if the bulb is not broken?\n"
    "A: None, that is a hardware problem, and the hardware people are all at lunch today.\n"
    "Q: And when they come back from their long lunch, what will they do about the bulb?\n"
    "A: They will file a ticket with the programmers, of course, and close it as expected."
)
ART = "  /\\_/\\   ____  ||||  ====  ####  ////  \\\\\\\\  ----  ++++  ____  ||||  ====  ####  ////\n" * 4
ATTRIBUTED = PROSE + '\n\t\t-- A. Traveller, "Notes from the Coast"'


def write_fortunes(directory, *passages: str, name: str = "stories") -> None:
    directory.mkdir(exist_ok=True)
    (directory / name).write_text("\n%\n".join(passages) + "\n%\n")


def joined(text: str) -> str:
    """The passage as fortune_passages should give it: wrapped lines joined, paragraphs kept."""
    return "\n\n".join(" ".join(paragraph.split()) for paragraph in text.split("\n\n"))


def test_prose_passages_are_joined_and_verse_dialogue_art_dropped(tmp_path):
    write_fortunes(tmp_path, VERSE, PROSE, DIALOGUE, ART, LONG_VERSE)
    assert fortune_passages(min_words=10, directory=tmp_path) == [joined(PROSE)]


def test_attribution_lines_are_cut_and_overstrikes_resolved(tmp_path):
    struck = PROSE.replace("Nobody", "_\b_\b_\b_\b_\b_\bNobody")
    write_fortunes(tmp_path, ATTRIBUTED, struck)
    assert fortune_passages(min_words=10, directory=tmp_path) == [joined(PROSE), joined(PROSE)]


def test_word_bounds_and_deterministic_order_across_files(tmp_path):
    words = len(PROSE.split())
    other = PROSE.replace("ferry", "bus")
    write_fortunes(tmp_path, other, name="b-file")
    write_fortunes(tmp_path, PROSE, name="a-file")
    (tmp_path / "a-file.dat").write_bytes(b"\x00\x01index")  # strfile's index files are skipped
    assert fortune_passages(min_words=words, max_words=words, directory=tmp_path) == [
        joined(PROSE),
        joined(other),
    ]
    with pytest.raises(HumanTextError, match="no prose passages"):
        fortune_passages(min_words=words + 1, directory=tmp_path)
    with pytest.raises(ValueError, match="min_words <= max_words"):
        fortune_passages(min_words=50, max_words=10, directory=tmp_path)


def test_a_missing_fortune_directory_names_the_packages(tmp_path):
    with pytest.raises(HumanTextError, match="apt-get install fortunes fortunes-min"):
        fortune_passages(directory=tmp_path / "absent")


def test_debian_fortunes_give_prose_passages_within_bounds():
    """Needs `apt-get install fortunes fortunes-min` (.ci/run installs them)."""
    passages = fortune_passages()
    assert len(passages) >= 60
    assert all(60 <= len(p.split()) <= 250 for p in passages)
    assert passages == fortune_passages(), "same order every call"
    assert not any("\b" in p or p.lstrip().startswith("Q:") for p in passages)


def test_read_human_file_txt_and_jsonl(tmp_path):
    txt = tmp_path / "human.txt"
    txt.write_text("First text.\n\n  \nSecond text.\n")
    assert read_human_file(txt) == ["First text.", "Second text."]
    jsonl = tmp_path / "human.jsonl"
    jsonl.write_text(json.dumps({"text": "One."}) + "\n\n" + json.dumps({"text": "Two", "id": 2}) + "\n")
    assert read_human_file(jsonl) == ["One.", "Two"]


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("bad.jsonl", '{"text": "ok"}\nnot json\n', "bad.jsonl:2: not JSON"),
        ("bad.jsonl", '{"story": "no text field"}\n', "string 'text' field"),
        ("empty.txt", "\n  \n", "holds no texts"),
        ("data.csv", "text\nhello\n", "expected .txt"),
    ],
)
def test_bad_human_files_are_one_clear_error(tmp_path, name, content, message):
    (tmp_path / name).write_text(content)
    with pytest.raises(HumanTextError, match=message):
        read_human_file(tmp_path / name)
    with pytest.raises(HumanTextError, match="does not exist"):
        read_human_file(tmp_path / "missing.txt")
