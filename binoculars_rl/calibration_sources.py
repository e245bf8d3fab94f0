"""Labelled text for calibrating Binoculars thresholds (scripts/calibrate.py): human (0) vs AI-generated (1).

Three sources, each returning a list of `LabelledText`:
  - `load_labelled_file`: a local .json / .jsonl / .csv / .parquet file with a text column and a label column;
  - `load_labelled_hub`: a Hugging Face hub dataset (default: Ghostbuster, `GHOSTBUSTER_DATASET`);
  - `tinystories_vs_policy`: human TinyStories endings vs endings a policy writes for the same story openings,
    asked through any OpenAI-compatible chat endpoint (vLLM, `transformers serve`, an embedded server).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from binoculars_env.data import DEFAULT_DATASET, DataConfig, story_beginning
from binoculars_env.reward import strip_think

from binoculars.calibration import AI_CLASS, HUMAN_CLASS, CalibrationDataError, LabelledText

# Ghostbuster (Verma et al. 2023, github.com/vivek3141/ghostbuster): human vs ChatGPT essays, creative writing
# and news. This hub copy is the one the project's seed calibrated on: columns `texts`, `labels` ("gpt" for
# AI-written, "human" otherwise) and `domains`; splits train/validation/test.
GHOSTBUSTER_DATASET = "jionghong94/GhostBuster_v3"
GHOSTBUSTER_TEXT_COLUMN = "texts"
GHOSTBUSTER_LABEL_COLUMN = "labels"

# Label values understood without configuration (strings compared case-insensitively).
DEFAULT_AI_VALUES = ("1", "ai", "gpt", "machine", "generated", "ai-generated", "true")
DEFAULT_HUMAN_VALUES = ("0", "human", "human-written", "false")

TINYSTORIES_DATASET = DEFAULT_DATASET


class DataUnavailableError(CalibrationDataError):
    """The data cannot be had at all (no such file, hub unreachable or dataset unknown), as opposed to data
    that is there but unusable."""


DEFAULT_CONTINUATION_PROMPT = (
    "Here is the beginning of a short story for young children:\n\n{opening}\n\n"
    "Continue the story from where it stops. Reply with the continuation only."
)


def label_from_value(
    value: Any,
    ai_values: Iterable[str] = DEFAULT_AI_VALUES,
    human_values: Iterable[str] = DEFAULT_HUMAN_VALUES,
) -> int:
    """Map a raw label (bool, 0/1, or a string such as "gpt"/"human") to AI_CLASS or HUMAN_CLASS."""
    if isinstance(value, bool):
        key = str(value).lower()
    elif isinstance(value, int | float) and not (isinstance(value, float) and math.isnan(value)):
        key = str(int(value)) if float(value).is_integer() else str(value)
    else:
        key = str(value).strip().lower()
    ai = {str(v).lower() for v in ai_values}
    human = {str(v).lower() for v in human_values}
    if key in ai and key in human:
        raise CalibrationDataError(f"label value {value!r} is listed both as AI and as human")
    if key in ai:
        return AI_CLASS
    if key in human:
        return HUMAN_CLASS
    raise CalibrationDataError(
        f"unknown label value {value!r}: AI values are {sorted(ai)}, human values are {sorted(human)} "
        "(set them with --ai-label / --human-label)"
    )


def labelled_from_records(
    records: Sequence[dict[str, Any]],
    text_column: str,
    label_column: str,
    source: str,
    ai_values: Iterable[str] = DEFAULT_AI_VALUES,
    human_values: Iterable[str] = DEFAULT_HUMAN_VALUES,
) -> list[LabelledText]:
    """Validate rows (dicts) and turn them into LabelledText; errors name the source and the row."""
    if not records:
        raise CalibrationDataError(f"{source} has no rows")
    columns = set(records[0])
    for column, what in ((text_column, "text"), (label_column, "label")):
        if column not in columns:
            raise CalibrationDataError(
                f"{source} has no {what} column {column!r} (columns: {sorted(columns)}); "
                f"choose it with --{what}-column"
            )
    samples = []
    for index, row in enumerate(records):
        text = row[text_column]
        if not isinstance(text, str):
            raise CalibrationDataError(f"{source} row {index}: {text_column!r} is {text!r}, not a string")
        try:
            label = label_from_value(row[label_column], ai_values, human_values)
        except CalibrationDataError as error:
            raise CalibrationDataError(f"{source} row {index}: {error}") from None
        samples.append(LabelledText(text, label))
    return samples


def read_records(path: str | Path) -> list[dict[str, Any]]:
    """Rows of a .json (records or JSON lines), .jsonl, .csv or .parquet file as dicts."""
    import pandas as pd

    path = Path(path)
    if not path.is_file():
        raise DataUnavailableError(f"data file not found: {path}")
    if path.stat().st_size == 0 or not path.read_bytes().strip():
        raise CalibrationDataError(f"{path} is empty")
    suffix = path.suffix.lower()
    try:
        if suffix == ".jsonl":
            frame = pd.read_json(path, lines=True)
        elif suffix == ".json":
            text = path.read_text().lstrip()
            frame = pd.read_json(path, lines=not text.startswith("["))
        elif suffix == ".csv":
            frame = pd.read_csv(path)
        elif suffix == ".parquet":
            frame = pd.read_parquet(path)
        else:
            raise CalibrationDataError(
                f"{path}: unsupported file type {suffix!r} (use .json, .jsonl, .csv, .parquet)"
            )
    except (ValueError, pd.errors.ParserError) as error:
        if isinstance(error, CalibrationDataError):
            raise
        raise CalibrationDataError(f"cannot parse {path}: {error}") from None
    return frame.to_dict(orient="records")


def load_labelled_file(
    path: str | Path,
    text_column: str = "text",
    label_column: str = "label",
    ai_values: Iterable[str] = DEFAULT_AI_VALUES,
    human_values: Iterable[str] = DEFAULT_HUMAN_VALUES,
) -> list[LabelledText]:
    """Labelled texts from a local file with a text column and a label column."""
    return labelled_from_records(
        read_records(path), text_column, label_column, str(path), ai_values, human_values
    )


def load_labelled_hub(
    dataset_id: str = GHOSTBUSTER_DATASET,
    split: str = "train",
    text_column: str = GHOSTBUSTER_TEXT_COLUMN,
    label_column: str = GHOSTBUSTER_LABEL_COLUMN,
    ai_values: Iterable[str] = DEFAULT_AI_VALUES,
    human_values: Iterable[str] = DEFAULT_HUMAN_VALUES,
    config_name: str | None = None,
) -> list[LabelledText]:
    """Labelled texts from a Hugging Face hub dataset (default: Ghostbuster)."""
    dataset = _load_hub_split(dataset_id, split, config_name)
    missing = [c for c in (text_column, label_column) if c not in dataset.column_names]
    if missing:
        raise CalibrationDataError(
            f"hub dataset {dataset_id} has no column(s) {missing} (columns: {dataset.column_names}); "
            "choose them with --text-column / --label-column"
        )
    records = dataset.select_columns([text_column, label_column]).to_list()
    return labelled_from_records(
        records, text_column, label_column, f"{dataset_id}[{split}]", ai_values, human_values
    )


def _load_hub_split(dataset_id: str, split: str, config_name: str | None = None):
    from datasets import load_dataset

    try:
        return load_dataset(dataset_id, config_name, split=split)
    except (OSError, ConnectionError) as error:
        raise DataUnavailableError(
            f"cannot load hub dataset {dataset_id!r} split {split!r} ({type(error).__name__}: {error}); "
            "offline? use a local file instead (--data-file, or --stories-file for TinyStories)"
        ) from None


def load_story_texts(
    dataset_id: str = TINYSTORIES_DATASET, split: str = "validation", data_file: str | Path | None = None
) -> list[str]:
    """Human-written stories: a local file's `text` column if `data_file` is given, else the hub dataset."""
    if data_file is not None:
        records = read_records(data_file)
        if "text" not in records[0]:
            raise CalibrationDataError(f"{data_file} has no 'text' column (columns: {sorted(records[0])})")
        return [str(r["text"]) for r in records]
    dataset = _load_hub_split(dataset_id, split)
    if "text" not in dataset.column_names:
        raise CalibrationDataError(f"hub dataset {dataset_id} has no 'text' column ({dataset.column_names})")
    return list(dataset["text"])


def chat_continuations(
    prompts: Sequence[str],
    base_url: str,
    model: str,
    api_key: str = "EMPTY",
    max_tokens: int = 256,
    temperature: float = 0.7,
    concurrency: int = 8,
    disable_thinking: bool = True,
    progress: bool = True,
) -> list[str]:
    """One chat completion per prompt from an OpenAI-compatible server, think blocks stripped, in order."""
    from openai import OpenAI, OpenAIError
    from tqdm.auto import tqdm

    client = OpenAI(base_url=base_url, api_key=api_key)
    extra_body = {"chat_template_kwargs": {"enable_thinking": False}} if disable_thinking else None

    def complete(prompt: str) -> str:
        response = client.chat.completions.create(
            model=model,
            messages=[{"role": "user", "content": prompt}],
            max_tokens=max_tokens,
            temperature=temperature,
            extra_body=extra_body,
        )
        return strip_think(response.choices[0].message.content or "")

    try:
        with ThreadPoolExecutor(max_workers=max(1, concurrency)) as pool:
            results = pool.map(complete, prompts)
            return list(
                tqdm(results, total=len(prompts), desc="generating", unit="text", disable=not progress)
            )
    except OpenAIError as error:
        raise CalibrationDataError(
            f"policy generation through {base_url} (model {model!r}) failed: {type(error).__name__}: {error}"
        ) from None


def tinystories_vs_policy(
    stories: Sequence[str],
    generate: Callable[[list[str]], list[str]],
    num_pairs: int,
    seed: int = 0,
    opening_sentences: int = 2,
    prompt_template: str = DEFAULT_CONTINUATION_PROMPT,
) -> list[LabelledText]:
    """Human endings of `num_pairs` random stories (label 0) and the policy's endings for the same openings
    (label 1). `generate` maps prompts to completions (e.g. a partial of `chat_continuations`); empty
    completions are an error, not silently dropped."""
    import random

    if "{opening}" not in prompt_template:
        raise CalibrationDataError("the prompt template must contain {opening}")
    splits = [s for s in (_opening_and_rest(story, opening_sentences) for story in stories) if s is not None]
    if len(splits) < num_pairs:
        raise CalibrationDataError(
            f"only {len(splits)} stories have more than {opening_sentences} sentences; {num_pairs} needed"
        )
    chosen = random.Random(seed).sample(splits, num_pairs)
    completions = generate([prompt_template.format(opening=opening) for opening, _ in chosen])
    if len(completions) != len(chosen):
        raise CalibrationDataError(f"asked for {len(chosen)} completions, got {len(completions)}")
    empty = sum(1 for c in completions if not c.strip())
    if empty:
        raise CalibrationDataError(
            f"{empty} of {len(completions)} policy completions are empty (after removing think blocks); "
            "raise --gen-max-tokens or check the server"
        )
    human = [LabelledText(rest, HUMAN_CLASS) for _, rest in chosen]
    return human + [LabelledText(c, AI_CLASS) for c in completions]


def _opening_and_rest(story: str, opening_sentences: int) -> tuple[str, str] | None:
    """The env's own story cut (what the policy is shown in training), or None for a story too short to cut."""
    try:
        opening, rest = story_beginning(story.strip(), opening_sentences, DataConfig().prompt_max_words)
    except ValueError:
        return None
    return (opening, rest) if opening and rest else None
