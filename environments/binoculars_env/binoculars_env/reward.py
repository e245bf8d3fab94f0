"""The reward: how human the Binoculars detector finds a completion, with guards against gaming it.

    reward = clip((score - threshold - spelling_charge * corrected_share) / scale - length_weight * shortfall, -2, 2)

`score` is the Binoculars score of the completion's canonical form (higher looks more human), `threshold` the
detector's decision boundary, `corrected_share` the share of the scored words the canonical form's spelling step
corrected, `shortfall` how far the text falls short of `length_target_tokens` (0..1).
`scale` is the calibrated spread of the scores (`scale`, else the calibration file's, see
`RewardConfig.resolved_scale`); without one the score margin is not divided (as if scale were 1). The length
term is in reward units, never divided by the scale: `length_weight` is the most a short text loses either way.
Guards give the worst reward, -2, never the top: empty text (also after `<think>` blocks are removed), text the
scorer's tokenizer rejects (that text alone; the rest of the batch is scored as usual), fewer than `min_tokens`
tokens, a non-finite score, text whose performer log-perplexity is above the fluency ceiling `max_log_ppl`
(calibrated per model pair; gibberish has high perplexity, and high perplexity fools Binoculars into "human"),
and repetitive text (distinct-2 below `min_distinct_2`). Guards that read the text read the span the scorer scored (its first `max_token_observed`
tokens), never a tail the detector did not see.

Defenses against surface attacks (each a knob, default on; docs/attacks.md measures them):
- the detector scores the completion's canonical form (`binoculars_env.canonical`: NFKC, invisible characters
  removed, look-alike letters mapped to Latin, emoji removed, punctuation runs collapsed, abnormal case and
  misspelled words fixed; `canonical_steps`), and a completion farther than `max_obfuscation` (edit distance per
  character) from its canonical form gets the guard `obfuscated`;
- every word the spelling step corrected is charged: typos raise perplexity, and the ones the corrector misses
  or mis-fixes (`knew` -> `new` is a word) would still pay; `spelling_charge` (score units per unit of corrected
  share) is set so that on average they do not;
- a completion whose canonical form falls outside the human profile (`binoculars_env.profile`: non-ASCII letters,
  capitals, punctuation, function words, misspellings, foreign-language sentences; bands fitted on human text)
  gets the guard `profile:<statistic>`.

`reward_criteria` / `ensemble` optionally reward several detectors of the panel at once (`ensemble.py`): the
margin (score - threshold) / scale is then the min (or mean) of each rewarded criterion's calibrated margin. The
panel's criteria are always logged as weight-0 metrics.

`score_completions(texts, config)` is the one synchronous entry point; both verifiers stacks and a trainer
that calls the reward directly use it.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from binoculars.defaults import DEFAULT_OBSERVER, DEFAULT_PERFORMER
from binoculars.panel import PANEL_CRITERIA, PanelScores, human_margin
from binoculars_env.canonical import CANONICAL_STEPS, canonical_parts, obfuscation
from binoculars_env.ensemble import BINOCULARS_ONLY, RewardCriteria, reward_margin
from binoculars_env.profile import (
    STATISTICS,
    Bands,
    bands_from_json,
    load_bands,
    outside_band,
    share,
    text_profile,
    word_count,
)
from binoculars_env.remote_scorer import RemoteScorerSpec, get_remote_scorer
from binoculars_env.scorer_pool import ScorerSpec, get_scorer

if TYPE_CHECKING:
    from binoculars import ScoreDetails

MIN_REWARD, MAX_REWARD = -2.0, 2.0
DEFAULT_THRESHOLD = 1.0
DEFAULT_MAX_LOG_PPL = 5.0
"""The fluency ceiling of the default pair (Qwen2.5-0.5B performer) when no calibration file gives one."""
DEFAULT_SPELLING_CHARGE = 2.0
"""Score units charged per unit of corrected-word share. Measured with SmolLM2 (docs/attacks.md): typos on 5% /
15% of words raise the score of the uncorrected text by ~2 per unit of typo share and, after correction (which
catches ~3/4 of them), the canonical text's by ~1.1 per unit of corrected share; 2 leaves a margin."""
_THINK_BLOCK = re.compile(r"<think>.*?</think>", re.DOTALL)


class RewardConfig(BaseModel):
    """Scorer and reward settings (same names as `load_environment` arguments and v1 task config fields)."""

    # allow_inf_nan=False: NaN or inf in any float field (threshold=nan kills every reward, -inf gives +2 to all)
    # is a validation error naming the field.
    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True, allow_inf_nan=False)

    observer_model: str = DEFAULT_OBSERVER
    """Binoculars observer (hub id or local directory)."""
    performer_model: str = DEFAULT_PERFORMER
    """Binoculars performer; must share the observer's tokenizer."""
    scorer_device: str | None = None
    """Device of both scorer models, e.g. `cuda:1` or `cpu`; None: `cuda:0` if available, else CPU."""
    scorer_batch_size: int = Field(32, ge=1)
    """Texts per scorer forward pass."""
    max_token_observed: int = Field(512, ge=2)
    """Completions are truncated to this many tokens before scoring."""
    threshold: float | None = None
    """Decision threshold subtracted from the score; None: read from `calibration_file`, else 1.0."""
    calibration_file: str | None = None
    """Calibration JSON (`{"thresholds": {"accuracy": ..., "low-fpr": ...}}`) to read the threshold from."""
    threshold_key: str = "accuracy"
    """Which threshold of `calibration_file` to use (`accuracy` is always written; `low-fpr` when the
    calibration had enough human texts)."""
    scale: float | None = Field(None, gt=0)
    """Divide the margin score - threshold by this (> 0): the reward becomes
    clip((score - threshold) / scale - length_weight * shortfall, -2, 2). None: the `scale` of
    `calibration_file` (if `use_calibrated_scale` and the file has one), else no division."""
    use_calibrated_scale: bool = True
    """Use the `scale` written into `calibration_file` by scripts/calibrate.py when `scale` is None; False keeps
    the unscaled reward with a calibration file. Files written before calibration had a scale have none."""
    reward_criteria: RewardCriteria = Field(default_factory=lambda: list(BINOCULARS_ONLY))
    """Detectors the reward pays for fooling (`binoculars`, `fast_detectgpt`, `log_rank`, `log_likelihood`,
    `entropy`); more than Binoculars needs a `calibration_file` with per-criterion calibration (see
    `binoculars_env.ensemble`)."""
    ensemble: Literal["min", "mean"] = "min"
    """How the rewarded criteria's margins combine: `min` (every detector must be fooled) or `mean`."""
    min_tokens: int = Field(16, ge=0)
    """Completions with fewer tokens get -2 (Binoculars is noise on very short text)."""
    max_log_ppl: float | Literal["auto"] | None = "auto"
    """Fluency ceiling: completions whose performer log-perplexity (nats/token) is above it get -2 (guard
    `disfluent`). `auto`: the `max_log_ppl` of `calibration_file` (the 99.5% quantile of its human texts'
    log-ppl, written by scripts/calibrate.py) when it has one, else 5.0 (set for the default Qwen pair). None
    disables it."""
    min_distinct_2: float | None = Field(0.6, ge=0, le=1)
    """Repetition guard: completions whose distinct-2 (unique / all whitespace-separated word bigrams) is
    below it get -2 (repeating a phrase is a cheap way to look human to Binoculars). Text with fewer than two
    words has distinct-2 0. None disables it."""
    canonical_steps: list[str] = Field(default_factory=lambda: list(CANONICAL_STEPS))
    """Steps of the canonical form the detector scores instead of the raw completion (binoculars_env.canonical:
    `nfkc`, `invisible`, `confusables`, `emoji`, `punctuation`, `case`, `spelling`); [] scores the raw text."""
    max_obfuscation: float | None = Field(0.03, ge=0)
    """Guard `obfuscated`: completions farther than this from their canonical form (character edit distance per
    character, whitespace ignored) get -2. Human prose: 99% of Debian fortunes passages are below 0.03 (ALL-CAPS
    passages are above). None disables it."""
    spelling_charge: float = Field(DEFAULT_SPELLING_CHARGE, ge=0)
    """Each word the `spelling` canonical step corrected costs this much score per unit of share (score units,
    before the division by `scale`): the margin is (score - threshold - spelling_charge * corrected_share) /
    scale. Typos are the cheapest way to raise perplexity, and the corrector cannot fix those that make another
    word; this charge keeps them from paying on average. 0 disables it (the `spelling` step still corrects)."""
    profile_statistics: list[str] = Field(default_factory=lambda: list(STATISTICS))
    """Human-profile guard `profile:<statistic>`: these statistics (binoculars_env.profile) of the canonical text
    must lie inside their human bands; [] disables the guard."""
    profile_bands_file: str | None = None
    """JSON with a `profile_bands` object (scripts/profile_bands.py, or a calibration file); None: the
    `calibration_file`'s bands when it has them, else the bands shipped with the package (fortunes prose)."""
    language: str = "en"
    """ISO 639-1 code of the prompts' language: sentences confidently in another language count against the
    `foreign_language_share` band."""
    length_target_tokens: int = Field(64, ge=1)
    """Completions shorter than this lose up to `length_weight` (linearly, 0 at the target)."""
    length_weight: float = Field(0.5, ge=0)
    """Size of the length term; 0 disables it."""
    batch_window_s: float = Field(0.05, ge=0)
    """v1 only: how long a reward call waits for concurrent rollouts to be scored in the same batch."""
    max_batch_size: int = Field(64, ge=1)
    """v1 only: a collected batch is scored at once when it reaches this size."""
    scorer_url: str | None = None
    """URL of a shared Binoculars scoring service (`python -m binoculars.serve`), e.g. `http://127.0.0.1:8000`.
    When set, this process loads no model and `scorer_device`/`scorer_batch_size` are unused; the service must
    serve the same `observer_model`, `performer_model` and `max_token_observed` (checked on first use)."""
    scorer_timeout_s: float = Field(120.0, gt=0)
    """`scorer_url` only: seconds one scoring request may take before it is retried."""
    scorer_max_retries: int = Field(3, ge=0)
    """`scorer_url` only: retries (exponential backoff) of a request that timed out or found the service
    down or busy; then the reward call raises, never a default reward."""

    @field_validator("canonical_steps")
    @classmethod
    def _known_steps(cls, steps: list[str]) -> list[str]:
        return _only_known(steps, CANONICAL_STEPS, "canonical steps")

    @field_validator("profile_statistics")
    @classmethod
    def _known_statistics(cls, statistics: list[str]) -> list[str]:
        return _only_known(statistics, STATISTICS, "profile statistics")

    @field_validator("scorer_device")
    @classmethod
    def _parseable_device(cls, device: str | None) -> str | None:
        """A device torch can parse (`cpu`, `cuda`, `cuda:1`, …); whether it exists is checked when the scorer
        loads, on the machine that runs it."""
        if device is not None:
            from binoculars.utils import parse_device

            parse_device(device)
        return device

    def scorer_spec(self) -> ScorerSpec:
        return ScorerSpec(
            observer=self.observer_model,
            performer=self.performer_model,
            device=self.scorer_device,
            batch_size=self.scorer_batch_size,
            max_token_observed=self.max_token_observed,
        )

    def remote_scorer_spec(self) -> RemoteScorerSpec:
        if self.scorer_url is None:
            raise ValueError("remote_scorer_spec() needs scorer_url")
        return RemoteScorerSpec(
            url=self.scorer_url,
            timeout_s=self.scorer_timeout_s,
            max_retries=self.scorer_max_retries,
            observer=self.observer_model,
            performer=self.performer_model,
            max_token_observed=self.max_token_observed,
        )

    def resolved_threshold(self) -> float:
        if self.threshold is not None:
            return self.threshold
        if self.calibration_file is not None:
            return calibrated_threshold(self.calibration_file, self.threshold_key)
        return DEFAULT_THRESHOLD

    def resolved_scale(self) -> float | None:
        """`scale` if given, else the calibration file's (when `use_calibrated_scale`; None for a file without
        one), else None: the margin is not divided."""
        if self.scale is not None:
            return self.scale
        if self.use_calibrated_scale and self.calibration_file is not None:
            return calibrated_scale(self.calibration_file)
        return None

    def resolved_max_log_ppl(self) -> float | None:
        """`max_log_ppl` if a number (None: no ceiling); for `auto`, the calibration file's ceiling when it has
        one, else `DEFAULT_MAX_LOG_PPL`."""
        if self.max_log_ppl != "auto":
            return self.max_log_ppl
        if self.calibration_file is not None:
            ceiling = calibrated_max_log_ppl(self.calibration_file)
            if ceiling is not None:
                return ceiling
        return DEFAULT_MAX_LOG_PPL

    def resolved_bands(self) -> Bands:
        """`profile_bands_file`'s bands, else the calibration file's (when it has them), else the shipped ones."""
        if self.profile_bands_file is not None:
            return load_bands(self.profile_bands_file)
        if self.calibration_file is not None:
            bands = calibrated_bands(self.calibration_file)
            if bands is not None:
                return bands
        return load_bands(None)

    def reward_settings(self) -> RewardConfig:
        """Just these fields (drops what a subclass such as the v1 task config adds): a hashable cache key."""
        return RewardConfig.model_validate(self.model_dump(include=set(RewardConfig.model_fields)))

    def cache_key(self) -> str:
        return self.reward_settings().model_dump_json()


def _only_known(names: list[str], known: tuple[str, ...], what: str) -> list[str]:
    unknown = sorted(set(names) - set(known))
    if unknown:
        raise ValueError(f"unknown {what} {unknown}; known: {list(known)}")
    return names


@lru_cache(maxsize=32)
def calibrated_threshold(calibration_file: str, threshold_key: str) -> float:
    """The `threshold_key` entry of a calibration JSON's `thresholds` object (written by scripts/calibrate.py)."""
    from binoculars import load_thresholds

    thresholds = load_thresholds(Path(calibration_file))
    if threshold_key not in thresholds:
        raise KeyError(
            f"calibration file {calibration_file} has no {threshold_key!r} threshold "
            f"(it has {sorted(thresholds)}); set threshold_key to one of them"
        )
    return thresholds[threshold_key]


@lru_cache(maxsize=32)
def calibrated_scale(calibration_file: str) -> float | None:
    """The `scale` of a calibration JSON (written by scripts/calibrate.py); None when it has none."""
    from binoculars.utils import load_scale

    return load_scale(Path(calibration_file))


@lru_cache(maxsize=32)
def calibrated_max_log_ppl(calibration_file: str) -> float | None:
    """The `max_log_ppl` (fluency ceiling) of a calibration JSON; None when it has none (older files)."""
    from binoculars.utils import load_max_log_ppl

    return load_max_log_ppl(Path(calibration_file))


@lru_cache(maxsize=32)
def calibrated_bands(calibration_file: str) -> Bands | None:
    """The `profile_bands` of a calibration JSON; None when it has none (files from before the profile guard)."""
    import json

    payload = json.loads(Path(calibration_file).read_text())
    return bands_from_json(payload, calibration_file) if "profile_bands" in payload else None


def charged_threshold(threshold: float, corrected_share: float, config: RewardConfig) -> float:
    """The threshold the Binoculars score must clear once the spelling charge is added: threshold +
    spelling_charge * corrected_share (score units)."""
    return threshold + config.spelling_charge * corrected_share


def length_penalty(num_tokens: int, config: RewardConfig) -> float:
    """length_weight * shortfall: how far `num_tokens` falls short of `length_target_tokens` (0..1), weighted."""
    return config.length_weight * max(0.0, 1.0 - num_tokens / config.length_target_tokens)


def shaped_reward(score: float, threshold: float, scale: float | None, length_penalty: float) -> float:
    """clip((score - threshold) / scale - length_penalty, -2, 2); scale None: no division. Finite inputs only
    (the guards keep NaN away: max(-2, min(2, nan)) would be +2)."""
    return clipped_reward(human_margin("binoculars", score, threshold, scale), length_penalty)


def clipped_reward(margin: float, length_penalty: float) -> float:
    """clip(margin - length_penalty, -2, 2): the reward from its margin ((score - threshold) / scale, or an
    ensemble's, `ensemble.reward_margin`). Finite inputs only."""
    return min(MAX_REWARD, max(MIN_REWARD, margin - length_penalty))


@dataclass(frozen=True)
class RewardResult:
    """A completion's reward and what it was made of."""

    reward: float
    score: float
    """Binoculars score (NaN when the text was not scored: empty, or fewer than 2 tokens)."""
    log_ppl: float
    x_ppl: float
    num_tokens: int
    distinct_2: float
    flagged_as_ai: bool
    """The detector calls it AI-generated (score < threshold)."""
    guard: str | None
    """The guard that set the reward to -2 (`empty`, `unscorable`, `too_short`, `non_finite`, `disfluent`,
    `repetitive`, `obfuscated`, `profile:<statistic>`), else None."""
    obfuscation: float = 0.0
    """Edit distance per character between the completion and its canonical form (the text scored)."""
    corrected_share: float = 0.0
    """Share of the scored span's words that the canonical form's spelling step corrected (charged at
    `spelling_charge`)."""
    profile: dict[str, float] = field(default_factory=dict)
    """The human-profile statistics of the scored canonical span (binoculars_env.profile); {} when empty."""
    panel: PanelScores | None = None
    """The other detectors' criteria (`binoculars.panel`); None when the text was not scored or the scorer
    reported no panel."""

    def metrics(self) -> dict[str, float]:
        """Weight-0 monitoring values, always finite (NaN parts report 0.0; `guard_failed` marks them)."""

        def finite(value: float) -> float:
            return value if math.isfinite(value) else 0.0

        return {
            "binoculars_score": finite(self.score),
            "log_ppl": finite(self.log_ppl),
            "x_ppl": finite(self.x_ppl),
            "num_tokens": float(self.num_tokens),
            "distinct_2": self.distinct_2,
            "flagged_as_ai": float(self.flagged_as_ai),
            "guard_failed": float(self.guard is not None),
            "obfuscation": self.obfuscation,
            "corrected_share": self.corrected_share,
            **{name: self.profile.get(name, 0.0) for name in STATISTICS},
            **{name: finite(getattr(self.panel, name, math.nan)) for name in PANEL_CRITERIA},
        }


METRIC_NAMES = tuple(RewardResult(0.0, 0.0, 0.0, 0.0, 0, 0.0, False, None).metrics())


def strip_think(text: str) -> str:
    """The text without reasoning: `<think>…</think>` blocks, anything up to a stray `</think>` (reasoning
    opened in the prompt), and anything after an unclosed `<think>` (reasoning cut off)."""
    text = _THINK_BLOCK.sub("", text)
    if "</think>" in text:
        text = text.rsplit("</think>", 1)[1]
    if "<think>" in text:
        text = text.split("<think>", 1)[0]
    return text.strip()


def completion_text(completion: Any) -> str:
    """Plain text of a completion: a string, or the last assistant message of a message list (dicts or
    pydantic message objects; content a string or a list of text parts)."""
    if isinstance(completion, str):
        return completion
    messages = [m for m in completion if _field(m, "role") == "assistant"]
    if not messages:
        return ""
    content = _field(messages[-1], "content")
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    return "".join(_field(part, "text") or "" for part in content if _field(part, "type") in (None, "text"))


def distinct_2(text: str) -> float:
    """Unique word bigrams / all word bigrams (lower-cased); 0.0 for fewer than two words."""
    words = text.lower().split()
    bigrams = list(zip(words, words[1:], strict=False))
    return len(set(bigrams)) / len(bigrams) if bigrams else 0.0


def score_completions(texts: list[str], config: RewardConfig) -> list[RewardResult]:
    """Rewards of completion texts, scored in one batched scorer call (the scorer loads on first use)."""
    if isinstance(texts, str):
        raise TypeError("score_completions takes a list of texts, got one str; pass [text]")
    threshold = config.resolved_threshold()
    scale = config.resolved_scale()
    max_log_ppl = config.resolved_max_log_ppl()
    bands = config.resolved_bands() if config.profile_statistics else None
    plain = [strip_think(text) for text in texts]
    parts = [canonical_parts(text, config.canonical_steps) for text in plain]
    to_score = sorted({part.text for part in parts if part.text})
    scorer = (
        get_remote_scorer(config.remote_scorer_spec())
        if config.scorer_url is not None
        else get_scorer(config.scorer_spec())
    )
    details = dict(zip(to_score, scorer.score_details(to_score), strict=True))
    results = []
    for raw, part in zip(plain, parts, strict=True):
        text = part.text
        if not text:
            nan = float("nan")
            results.append(RewardResult(MIN_REWARD, nan, nan, nan, 0, 0.0, False, "empty"))
            continue
        d = details[text]
        span = scored_span(text, d)
        distinct = distinct_2(span)
        distance = obfuscation(raw, part.charged)
        profile = text_profile(span, config.language)
        corrected = share(part.corrected_words(len(span)), word_count(span))
        margin = reward_margin(d, config, charged_threshold(threshold, corrected, config), scale)
        guard = (
            _guard(d, distinct, max_log_ppl, config)
            or _surface_guard(distance, profile, bands, config)
            or (None if math.isfinite(margin) else "non_finite")
        )
        reward = MIN_REWARD if guard else clipped_reward(margin, length_penalty(d.num_tokens, config))
        results.append(
            RewardResult(
                reward=reward,
                score=d.score,
                log_ppl=d.log_ppl,
                x_ppl=d.x_ppl,
                num_tokens=d.num_tokens,
                distinct_2=distinct,
                flagged_as_ai=d.score < threshold,
                guard=guard,
                obfuscation=distance,
                corrected_share=corrected,
                profile=profile,
                panel=d.panel,
            )
        )
    return results


def scored_span(text: str, details: ScoreDetails) -> str:
    """The part of `text` the scorer scored (its first max_token_observed tokens)."""
    if details.scored_chars is None:
        raise ValueError(
            "the scorer did not report which span of the text it scored (ScoreDetails.scored_chars is None); "
            "use a binoculars scorer or scoring service from this version"
        )
    return text[: details.scored_chars]


def _guard(d: ScoreDetails, distinct: float, max_log_ppl: float | None, config: RewardConfig) -> str | None:
    if d.error is not None:
        return "unscorable"
    if d.num_tokens < max(config.min_tokens, 2):
        return "too_short"
    if not all(math.isfinite(v) for v in (d.score, d.log_ppl, d.x_ppl)):
        return "non_finite"
    if max_log_ppl is not None and d.log_ppl > max_log_ppl:
        return "disfluent"
    if config.min_distinct_2 is not None and distinct < config.min_distinct_2:
        return "repetitive"
    return None


def _surface_guard(
    distance: float, profile: dict[str, float], bands: Bands | None, config: RewardConfig
) -> str | None:
    if config.max_obfuscation is not None and distance > config.max_obfuscation:
        return "obfuscated"
    if bands is not None:
        outside = outside_band(profile, bands, config.profile_statistics)
        if outside is not None:
            return f"profile:{outside}"
    return None


def _field(obj: Any, name: str) -> Any:
    return obj.get(name) if isinstance(obj, dict) else getattr(obj, name, None)
