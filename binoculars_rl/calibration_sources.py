"""Labelled text for calibrating Binoculars thresholds (scripts/calibrate.py): human (0) vs AI-generated (1).

Three sources, each returning a list of `LabelledText`:
  - `load_labelled_file`: a local .json / .jsonl / .csv / .parquet file with a text column and a label column;
  - `load_labelled_hub`: a Hugging Face hub dataset (default: Ghostbuster, `GHOSTBUSTER_DATASET`, restricted to
    its creative-writing domain);
  - `policy_vs_human`: human text the user supplies (a file, or Debian fortunes) vs a policy's continuations of
    the environment's story prompts, asked through any OpenAI-compatible chat endpoint (vLLM, `transformers
    serve`, an embedded server).
TinyStories is never a human class here: it was written by GPT-3.5/GPT-4 (Eldan & Li, 2023). The stories only
supply the openings the policy continues, as in training.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from binoculars_env.data import DEFAULT_DATASET, DataConfig, StoryPrompt, story_beginning
from binoculars_env.reward import strip_think

from binoculars.calibration import AI_CLASS, HUMAN_CLASS, CalibrationDataError, LabelledText

# Ghostbuster (Verma et al. 2023, github.com/vivek3141/ghostbuster): human vs ChatGPT essays, creative writing
# and news. This hub copy is the one the project's seed calibrated on: columns `texts`, `labels` ("gpt" for
# AI-written, "human" otherwise) and `domains`; splits train/validation/test.
GHOSTBUSTER_DATASET = "jionghong94/GhostBuster_v3"
GHOSTBUSTER_TEXT_COLUMN = "texts"
GHOSTBUSTER_LABEL_COLUMN = "labels"
GHOSTBUSTER_DOMAIN_COLUMN = "domains"
# Ghostbuster's creative-writing domain (stories written for r/WritingPrompts), the closest to the env's stories;
# the name is Ghostbuster's own (its data folders: wp, reuter, essay). Calibration stops with the values present
# should this copy spell it differently.
GHOSTBUSTER_CREATIVE_DOMAIN = "wp"
ALL_DOMAINS = "all"

# Label values understood without configuration (strings compared case-insensitively).
DEFAULT_AI_VALUES = ("1", "ai", "gpt", "machine", "generated", "ai-generated", "true")
DEFAULT_HUMAN_VALUES = ("0", "human", "human-written", "false")

# Where the story openings the policy continues come from (the env's default dataset; AI-written itself, so
# only its openings are used, never its text as the human class).
STORY_PROMPTS_DATASET = DEFAULT_DATASET


class DataUnavailableError(CalibrationDataError):
    """The data cannot be had at all (no such file, hub unreachable or dataset unknown), as opposed to data
    that is there but unusable."""


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


def select_domain(
    records: Sequence[dict[str, Any]], domain_column: str, domain: str | None, source: str
) -> list[dict[str, Any]]:
    """The rows whose `domain_column` equals `domain` (all rows for None or `ALL_DOMAINS`); an unknown domain
    or a missing column is an error naming the values present."""
    if domain is None or domain == ALL_DOMAINS:
        return list(records)
    if records and domain_column not in records[0]:
        raise CalibrationDataError(
            f"--domain {domain!r}: {source} has no domain column {domain_column!r} (columns: "
            f"{sorted(records[0])}); choose it with --domain-column, or leave --domain out"
        )
    chosen = [row for row in records if str(row[domain_column]) == domain]
    if not chosen:
        present = sorted({str(row[domain_column]) for row in records})
        raise CalibrationDataError(
            f"--domain {domain!r}: no such value in {source} column {domain_column!r}; values present: "
            f"{present} (or --domain {ALL_DOMAINS})"
        )
    return chosen


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
    domain: str | None = None,
    domain_column: str = GHOSTBUSTER_DOMAIN_COLUMN,
) -> list[LabelledText]:
    """Labelled texts from a local file with a text column and a label column (only the rows of `domain` in
    `domain_column` when a domain other than None/`ALL_DOMAINS` is given)."""
    records = select_domain(read_records(path), domain_column, domain, str(path))
    return labelled_from_records(records, text_column, label_column, str(path), ai_values, human_values)


def load_labelled_hub(
    dataset_id: str = GHOSTBUSTER_DATASET,
    split: str = "train",
    text_column: str = GHOSTBUSTER_TEXT_COLUMN,
    label_column: str = GHOSTBUSTER_LABEL_COLUMN,
    ai_values: Iterable[str] = DEFAULT_AI_VALUES,
    human_values: Iterable[str] = DEFAULT_HUMAN_VALUES,
    config_name: str | None = None,
    domain: str | None = GHOSTBUSTER_CREATIVE_DOMAIN,
    domain_column: str = GHOSTBUSTER_DOMAIN_COLUMN,
) -> list[LabelledText]:
    """Labelled texts from a Hugging Face hub dataset (default: Ghostbuster's creative-writing domain; `domain`
    None or `ALL_DOMAINS` keeps every row)."""
    dataset = _load_hub_split(dataset_id, split, config_name)
    wanted = [text_column, label_column]
    if domain is not None and domain != ALL_DOMAINS:
        wanted.append(domain_column)
    missing = [c for c in wanted if c not in dataset.column_names]
    if missing:
        raise CalibrationDataError(
            f"hub dataset {dataset_id} has no column(s) {missing} (columns: {dataset.column_names}); "
            "choose them with --text-column / --label-column / --domain-column (or --domain all)"
        )
    source = f"{dataset_id}[{split}]"
    records = select_domain(dataset.select_columns(wanted).to_list(), domain_column, domain, source)
    return labelled_from_records(records, text_column, label_column, source, ai_values, human_values)


def _load_hub_split(dataset_id: str, split: str, config_name: str | None = None):
    from datasets import load_dataset

    try:
        return load_dataset(dataset_id, config_name, split=split)
    except (OSError, ConnectionError) as error:
        raise DataUnavailableError(
            f"cannot load hub dataset {dataset_id!r} split {split!r} ({type(error).__name__}: {error}); "
            "offline? use a local file instead (--data-file, or --stories-file for the story openings)"
        ) from None


def load_story_texts(
    dataset_id: str = STORY_PROMPTS_DATASET, split: str = "validation", data_file: str | Path | None = None
) -> list[str]:
    """Stories to cut prompt openings from: a local file's `text` column if `data_file` is given, else the hub
    dataset (TinyStories by default, itself AI-written: only the openings are used)."""
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


def policy_vs_human(
    human_texts: Sequence[str],
    stories: Sequence[str],
    generate: Callable[[list[str]], list[str]],
    num_pairs: int,
    seed: int = 0,
    opening_sentences: int = 2,
    prompt_template: str | None = None,
) -> list[LabelledText]:
    """Up to `num_pairs` human texts (label 0, a seeded sample of `human_texts`) and as many policy
    continuations (label 1) of story openings cut from `stories` as the env cuts them. The prompt is the env's
    own (`StoryPrompt.messages`) unless `prompt_template` (with `{opening}`) is given. `generate` maps prompts
    to completions (e.g. a partial of `chat_continuations`); empty completions are an error, not dropped."""
    import random

    if prompt_template is not None and "{opening}" not in prompt_template:
        raise CalibrationDataError("the prompt template must contain {opening}")
    human_texts = [text for text in human_texts if text.strip()]
    if not human_texts:
        raise CalibrationDataError("no human texts to calibrate against")
    count = min(num_pairs, len(human_texts))
    openings = [o for o in (_opening(story, opening_sentences) for story in stories) if o is not None]
    if len(openings) < count:
        raise CalibrationDataError(
            f"only {len(openings)} stories have more than {opening_sentences} sentences; {count} needed"
        )
    chosen = random.Random(seed).sample(openings, count)
    prompts = [
        prompt_template.format(opening=opening)
        if prompt_template is not None
        else StoryPrompt(beginning=opening, reference="").messages()[-1]["content"]
        for opening in chosen
    ]
    completions = generate(prompts)
    if len(completions) != count:
        raise CalibrationDataError(f"asked for {count} completions, got {len(completions)}")
    empty = sum(1 for c in completions if not c.strip())
    if empty:
        raise CalibrationDataError(
            f"{empty} of {len(completions)} policy completions are empty (after removing think blocks); "
            "raise --gen-max-tokens or check the server"
        )
    human = random.Random(seed).sample(human_texts, count)
    return [LabelledText(t, HUMAN_CLASS) for t in human] + [LabelledText(c, AI_CLASS) for c in completions]


def _opening(story: str, opening_sentences: int) -> str | None:
    """The env's own story cut (what the policy is shown in training), or None for a story too short to cut."""
    try:
        opening, rest = story_beginning(story.strip(), opening_sentences, DataConfig().prompt_max_words)
    except ValueError:
        return None
    return opening if opening and rest else None
