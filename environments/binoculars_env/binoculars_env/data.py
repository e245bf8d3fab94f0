"""Story prompts: the beginning of a TinyStories story, and the rest of it kept as the human reference.

The hub dataset is streamed (N prompts never download the 2M-row train split); local json/jsonl/parquet files
given as `data_files` go through the same streaming path. Everything is deterministic under `seed`.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

DEFAULT_DATASET = "roneneldan/TinyStories"
SAMPLE_DATA_FILE = Path(__file__).with_name("sample_stories.jsonl")
"""Project-written stories (a `text` column) shipped for tests and offline demos: `data_files=SAMPLE_DATA_FILE`."""

INSTRUCTION = (
    "Continue this children's story. Write the rest of it as plain prose: no title, no notes, no questions."
)
_FORMATS = {".json": "json", ".jsonl": "json", ".parquet": "parquet"}
_SENTENCE_END = re.compile(r"[.!?]+[\"'”’]?(?=\s|$)")
_WORD = re.compile(r"\S+")
logger = logging.getLogger(__name__)

Split = Literal["train", "eval"]
DataFiles = str | list[str] | dict[str, str | list[str]]


class DataConfig(BaseModel):
    """Where the stories come from and how a prompt is cut from each (same names in both verifiers stacks)."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True, allow_inf_nan=False)

    dataset_name: str = DEFAULT_DATASET
    """Hugging Face dataset with a `text` column (streamed)."""
    data_files: DataFiles | None = None
    """Local json/jsonl/parquet file(s) with a `text` column; replaces `dataset_name`. A single file (or list)
    is one split: eval prompts are then a seeded hold-out of `num_eval_examples` stories, disjoint from
    training. A dict `{"train": ..., "validation": ...}` names the splits."""
    train_split: str = "train"
    """Split the training prompts come from."""
    eval_split: str = "validation"
    """Split the evaluation prompts come from."""
    num_train_examples: int = Field(10_000, ge=1)
    """Training prompts to load."""
    num_eval_examples: int = Field(200, ge=1)
    """Evaluation prompts to load."""
    seed: int = 0
    """Shuffle seed: the same seed gives the same prompts."""
    shuffle_buffer: int = Field(10_000, ge=1)
    """Rows the streaming shuffle holds in memory."""
    prompt_sentences: int = Field(2, ge=1)
    """Sentences of the story the prompt shows (fewer if that would pass `prompt_max_words`)."""
    prompt_max_words: int = Field(40, ge=1)
    """Word cap of the story beginning; it never exceeds half the story either."""
    min_story_words: int = Field(20, ge=2)
    """Stories with fewer words are skipped (empty and near-empty rows)."""


@dataclass(frozen=True)
class StoryPrompt:
    beginning: str
    """The part of the story the policy sees."""
    reference: str
    """The rest of the dataset's story (for metrics and calibration; TinyStories is AI-written)."""

    def messages(self) -> list[dict[str, str]]:
        return [{"role": "user", "content": f"{INSTRUCTION}\n\nStory beginning:\n{self.beginning}"}]


def story_beginning(text: str, max_sentences: int, max_words: int) -> tuple[str, str]:
    """Split a story into (beginning, rest): up to `max_sentences` sentences, at most `max_words` words and
    at most half the story's words, cut at a word boundary when the first sentence alone is too long."""
    words = list(_WORD.finditer(text))
    word_cap = min(max_words, len(words) // 2)
    if word_cap < 1:
        raise ValueError(f"story too short to split into a beginning and a rest: {text!r}")
    end = None
    for count, sentence_end in enumerate(_SENTENCE_END.finditer(text), start=1):
        if count > max_sentences or len(_WORD.findall(text[: sentence_end.end()])) > word_cap:
            break
        end = sentence_end.end()
    if end is None:  # the first sentence alone is over the cap: cut it at a word boundary
        end = words[word_cap - 1].end()
    return text[:end].strip(), text[end:].strip()


def load_story_prompts(config: DataConfig, split: Split) -> list[StoryPrompt]:
    """`num_train_examples` / `num_eval_examples` prompts of a split, streamed, filtered, shuffled by `seed`."""
    prompts = []
    for text in _story_stream(config, split):
        beginning, reference = story_beginning(text, config.prompt_sentences, config.prompt_max_words)
        prompts.append(StoryPrompt(beginning=beginning, reference=reference))
    if not prompts:
        raise ValueError(
            f"no {split} stories with at least {config.min_story_words} words"
            + (" left after holding out num_eval_examples for eval" if split == "train" else "")
        )
    return prompts


def _story_stream(config: DataConfig, split: Split) -> list[str]:
    wanted = config.num_train_examples if split == "train" else config.num_eval_examples
    split_name = config.train_split if split == "train" else config.eval_split
    available = _local_splits(config.data_files)
    holdout = available is not None and config.eval_split not in available
    if holdout:  # one local split: eval is a seeded hold-out carved from the front of the shuffled stream
        split_name = config.train_split
        logger.info(
            "data_files is one split (%r, no %r): eval prompts are the first num_eval_examples=%d stories of its "
            "seed-%d shuffle, training prompts the stories after them; loading %s prompts",
            split_name,
            config.eval_split,
            config.num_eval_examples,
            config.seed,
            split,
        )
    if available is not None and split_name not in available:
        raise ValueError(f"data_files has no {split_name!r} split (it has {sorted(available)})")

    rows = _open_stream(config, split_name)
    rows = rows.filter(lambda row: len(_WORD.findall(_text(row))) >= config.min_story_words)
    rows = rows.shuffle(seed=config.seed, buffer_size=config.shuffle_buffer)
    if holdout and split == "train":
        rows = rows.skip(config.num_eval_examples)
    return [_text(row).strip() for row in rows.take(wanted)]


def _text(row: dict) -> str:
    if "text" not in row:
        raise ValueError(f"the story data needs a `text` column; a row has only {sorted(row)}")
    return row["text"] or ""


def _local_splits(data_files: DataFiles | None) -> set[str] | None:
    """Split names of local data files (None for a hub dataset); a plain file or list is datasets' `train`."""
    if data_files is None:
        return None
    return set(data_files) if isinstance(data_files, dict) else {"train"}


def _local_format(data_files: DataFiles) -> str:
    if isinstance(data_files, dict):
        paths = [p for v in data_files.values() for p in ([v] if isinstance(v, str) else v)]
    else:
        paths = [data_files] if isinstance(data_files, str) else list(data_files)
    formats = {_FORMATS.get(Path(p).suffix.lower()) for p in paths}
    if None in formats or len(formats) != 1:
        raise ValueError(f"data_files must all be .json/.jsonl or all .parquet, got {paths}")
    for path in paths:
        if not Path(path).exists():
            raise FileNotFoundError(f"data_files entry not found: {path}")
        if _is_blank(Path(path)):
            raise ValueError(
                f"data_files entry {path} is empty; give json/jsonl/parquet rows with a `text` column "
                "(one story per row), or leave it out of data_files"
            )
    return formats.pop()


def _is_blank(path: Path, chunk_bytes: int = 1 << 16) -> bool:
    """True when the file holds only whitespace (reads no further than its first non-blank chunk)."""
    with path.open("rb") as file:
        while chunk := file.read(chunk_bytes):
            if chunk.strip():
                return False
    return True


def _open_stream(config: DataConfig, split_name: str):
    from datasets import load_dataset

    if config.data_files is not None:
        data_files = config.data_files
        if not isinstance(data_files, dict):
            data_files = {"train": data_files}
        rows = load_dataset(
            _local_format(data_files), data_files=data_files, split=split_name, streaming=True
        )
    else:
        try:
            rows = load_dataset(config.dataset_name, split=split_name, streaming=True)
        except (ConnectionError, OSError) as error:  # offline: datasets raises ConnectionError (an OSError)
            raise ConnectionError(
                f"could not reach the Hugging Face dataset {config.dataset_name!r} ({error}). Offline, pass "
                "local json/jsonl/parquet files with a `text` column as data_files=... (e.g. "
                f"binoculars_env.data.SAMPLE_DATA_FILE = {SAMPLE_DATA_FILE})"
            ) from error
    return rows
