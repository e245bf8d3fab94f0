"""Prompts: message lists carrying a story's beginning (never the whole story), split and seed behaviour."""

import json

import pytest
from binoculars_env.data import (
    INSTRUCTION,
    SAMPLE_DATA_FILE,
    DataConfig,
    load_story_prompts,
    story_beginning,
)


def sample_stories() -> list[str]:
    return [json.loads(line)["text"] for line in SAMPLE_DATA_FILE.read_text().splitlines()]


def write_jsonl(path, texts):
    path.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts))
    return str(path)


def test_prompts_are_messages_with_a_story_beginning_not_the_whole_story():
    stories = {" ".join(s.split()) for s in sample_stories()}
    config = DataConfig(data_files=str(SAMPLE_DATA_FILE), num_train_examples=10, num_eval_examples=5)
    prompts = load_story_prompts(config, "train")
    assert len(prompts) == 10
    for prompt in prompts:
        [message] = prompt.messages()
        assert message["role"] == "user"
        assert message["content"].startswith(INSTRUCTION)
        assert message["content"].endswith(prompt.beginning)
        assert prompt.reference and len(prompt.beginning.split()) <= min(40, len(prompt.reference.split()))
        whole = " ".join(f"{prompt.beginning} {prompt.reference}".split())
        assert whole in stories
        assert whole not in message["content"]


def test_beginning_is_the_first_sentences_bounded_in_words():
    story = "Tom had a dog. The dog was big. They ran to the park. " + "They played all day long. " * 5
    assert story_beginning(story, max_sentences=2, max_words=40) == (
        "Tom had a dog. The dog was big.",
        story[len("Tom had a dog. The dog was big. ") :].strip(),
    )
    assert story_beginning(story, max_sentences=1, max_words=40)[0] == "Tom had a dog."
    long_first = "Once " + "upon " * 60 + "a time. The end is here."
    beginning, rest = story_beginning(long_first, max_sentences=2, max_words=10)
    assert beginning == "Once " + "upon " * 8 + "upon" and rest.startswith("upon")
    # never more than half the story
    assert story_beginning("One two three. Four five six.", 2, 40) == ("One two three.", "Four five six.")
    assert story_beginning("One two three four. Five six.", 2, 40) == ("One two three", "four. Five six.")


def test_empty_and_near_empty_stories_are_filtered():
    config = DataConfig(data_files=str(SAMPLE_DATA_FILE), num_train_examples=1000, num_eval_examples=1)
    train, held_out = load_story_prompts(config, "train"), load_story_prompts(config, "eval")
    usable = [s for s in sample_stories() if len(s.split()) >= config.min_story_words]
    assert len(usable) < len(sample_stories())  # the sample carries rows that must be dropped
    assert len(train) + len(held_out) == len(usable)


def test_eval_prompts_come_from_the_eval_split(tmp_path):
    train_file = write_jsonl(
        tmp_path / "train.jsonl", [f"Train story {i}. " + "It was a fine day. " * 8 for i in range(12)]
    )
    eval_file = write_jsonl(
        tmp_path / "val.jsonl", [f"Eval story {i}. " + "It was a fine day. " * 8 for i in range(5)]
    )
    config = DataConfig(data_files={"train": train_file, "validation": eval_file}, num_eval_examples=3)
    evals = load_story_prompts(config, "eval")
    trains = load_story_prompts(config, "train")
    assert len(evals) == 3 and all(p.beginning.startswith("Eval story") for p in evals)
    assert len(trains) == 12 and all(p.beginning.startswith("Train story") for p in trains)


def test_single_file_holds_out_a_disjoint_seeded_eval_set():
    config = DataConfig(
        data_files=str(SAMPLE_DATA_FILE), num_train_examples=1000, num_eval_examples=8, seed=3
    )
    whole = lambda prompts: [p.beginning + " " + p.reference for p in prompts]  # noqa: E731
    evals, trains = whole(load_story_prompts(config, "eval")), whole(load_story_prompts(config, "train"))
    assert len(evals) == 8 and not set(evals) & set(trains)
    assert evals == whole(load_story_prompts(config, "eval"))  # deterministic under seed
    other_seed = whole(load_story_prompts(config.model_copy(update={"seed": 4}), "eval"))
    assert other_seed != evals


def test_the_hold_out_is_logged(caplog):
    config = DataConfig(data_files=str(SAMPLE_DATA_FILE), num_eval_examples=5, seed=7)
    with caplog.at_level("INFO", logger="binoculars_env.data"):
        load_story_prompts(config, "eval")
    (record,) = [r for r in caplog.records if r.name == "binoculars_env.data"]
    assert "num_eval_examples=5" in record.getMessage() and "seed-7" in record.getMessage()
    caplog.clear()
    named = {"train": str(SAMPLE_DATA_FILE), "validation": str(SAMPLE_DATA_FILE)}
    with caplog.at_level("INFO", logger="binoculars_env.data"):  # named splits: nothing is held out
        load_story_prompts(config.model_copy(update={"data_files": named}), "eval")
    assert not [r for r in caplog.records if r.name == "binoculars_env.data"]


def test_holding_out_everything_is_a_clear_error():
    config = DataConfig(data_files=str(SAMPLE_DATA_FILE), num_eval_examples=1000)
    with pytest.raises(ValueError, match="no train stories .* left after holding out num_eval_examples"):
        load_story_prompts(config, "train")


def test_offline_hub_dataset_error_names_data_files():
    config = DataConfig(dataset_name="roneneldan/TinyStories", num_train_examples=2)
    with pytest.raises(ConnectionError, match="data_files"):
        load_story_prompts(config, "train")


@pytest.mark.parametrize("content", ["", "\n  \n"], ids=["zero-bytes", "blank-lines"])
def test_an_empty_data_file_is_a_clear_error_naming_it(tmp_path, content):
    """datasets raised a bare StopIteration for an empty file."""
    empty = tmp_path / "empty.jsonl"
    empty.write_text(content)
    with pytest.raises(
        ValueError, match=r"data_files entry .*empty\.jsonl is empty; give json/jsonl/parquet rows"
    ):
        load_story_prompts(DataConfig(data_files=str(empty)), "train")


def test_bad_local_files_are_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.jsonl"):
        load_story_prompts(DataConfig(data_files=str(tmp_path / "missing.jsonl")), "train")
    csv = tmp_path / "stories.csv"
    csv.write_text("text\nhello\n")
    with pytest.raises(ValueError, match="json"):
        load_story_prompts(DataConfig(data_files=str(csv)), "train")
    no_text = tmp_path / "no_text.jsonl"
    no_text.write_text(json.dumps({"story": "Once upon a time."}) + "\n")
    with pytest.raises(ValueError, match="`text` column"):
        load_story_prompts(DataConfig(data_files=str(no_text)), "train")
