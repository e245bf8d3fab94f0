"""How degenerate a set of generated texts is: duplicates, shared vocabulary, n-gram diversity, length, and the
detector's verdicts when scores are given.

RL against a detector tends to collapse onto one template that the detector likes. The report flags **likely
template collapse** when either criterion of `CollapseCriteria` holds:

- `unique_fraction < min_unique_fraction` (default 0.5): more than half of the samples are exact duplicates of
  another sample (compared after lower-casing and collapsing whitespace);
- `mean_pairwise_jaccard >= max_mean_jaccard` (default 0.5): on average two samples share half of their word
  vocabulary (word-set Jaccard). Different TinyStories continuations (GPT-written, but varied) sit around 0.15-0.25 (0.24 on the
  env's sample stories); stories written from one fill-in-the-blanks template sit around 0.75
  (`binoculars.testing.tiny.story_corpus`).

Distinct-n is corpus-level (unique n-grams / all n-grams over every sample, Li et al. 2016). It shrinks as the
sample grows, so it is reported but not used as a criterion.
"""

from __future__ import annotations

import itertools
import math
import random
import re
import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

_WORD = re.compile(r"\w+(?:'\w+)?")


@dataclass(frozen=True)
class CollapseCriteria:
    min_unique_fraction: float = 0.5
    """Below this fraction of distinct samples, the set is flagged."""
    max_mean_jaccard: float = 0.5
    """At or above this mean pairwise word-set Jaccard, the set is flagged."""
    max_pairs: int = 20_000
    """Pairs used for the mean Jaccard; above this, a seeded random sample of pairs."""


@dataclass(frozen=True)
class ScoreSummary:
    """Distribution of the finite Binoculars scores; texts without one (empty, one token) are counted apart and
    every statistic is None when no text has a score."""

    count: int
    unscored: int
    threshold: float
    flagged_as_ai_rate: float | None
    """Share of scored texts with score < threshold (the detector says AI)."""
    mean: float | None
    std: float | None
    min: float | None
    p10: float | None
    p50: float | None
    p90: float | None
    max: float | None


@dataclass(frozen=True)
class DegeneracyReport:
    num_samples: int
    unique_fraction: float
    mean_pairwise_jaccard: float
    distinct_1: float
    distinct_2: float
    mean_words: float
    mean_tokens: float | None
    """Mean token count when token counts were given (e.g. from the scorer)."""
    scores: ScoreSummary | None
    likely_template_collapse: bool
    collapse_reasons: list[str] = field(default_factory=list)
    criteria: CollapseCriteria = field(default_factory=CollapseCriteria)

    def to_dict(self) -> dict:
        return asdict(self)


def words(text: str) -> list[str]:
    """Lower-cased word tokens (letters, digits, inner apostrophes)."""
    return _WORD.findall(text.lower())


def unique_fraction(texts: Sequence[str]) -> float:
    """Distinct samples / samples, comparing lower-cased texts with whitespace collapsed."""
    normalised = {" ".join(text.lower().split()) for text in texts}
    return len(normalised) / len(texts)


def jaccard(a: set[str], b: set[str]) -> float:
    """|a ∩ b| / |a ∪ b|; two empty sets are identical (1.0)."""
    union = a | b
    return len(a & b) / len(union) if union else 1.0


def mean_pairwise_jaccard(texts: Sequence[str], max_pairs: int = 20_000, seed: int = 0) -> float:
    """Mean word-set Jaccard over all pairs of samples (a seeded sample of `max_pairs` pairs when there are more)."""
    vocabularies = [set(words(text)) for text in texts]
    num_pairs = math.comb(len(texts), 2)
    if num_pairs <= max_pairs:
        pairs = itertools.combinations(range(len(texts)), 2)
    else:
        rng = random.Random(seed)
        pairs = (tuple(rng.sample(range(len(texts)), 2)) for _ in range(max_pairs))
    return statistics.fmean(jaccard(vocabularies[i], vocabularies[j]) for i, j in pairs)


def distinct_n(texts: Sequence[str], n: int) -> float:
    """Corpus-level distinct-n: unique word n-grams / all word n-grams over every text (0.0 when there are none)."""
    grams = [tuple(ws[i : i + n]) for ws in map(words, texts) for i in range(len(ws) - n + 1)]
    return len(set(grams)) / len(grams) if grams else 0.0


def summarise_scores(scores: Sequence[float], threshold: float) -> ScoreSummary:
    finite = sorted(s for s in scores if math.isfinite(s))
    unscored = len(scores) - len(finite)
    if not finite:
        return ScoreSummary(0, unscored, threshold, None, None, None, None, None, None, None, None)
    deciles = statistics.quantiles(finite, n=10, method="inclusive") if len(finite) > 1 else [finite[0]] * 9
    return ScoreSummary(
        count=len(finite),
        unscored=unscored,
        threshold=threshold,
        flagged_as_ai_rate=sum(s < threshold for s in finite) / len(finite),
        mean=statistics.fmean(finite),
        std=statistics.pstdev(finite),
        min=finite[0],
        p10=deciles[0],
        p50=statistics.median(finite),
        p90=deciles[8],
        max=finite[-1],
    )


def degeneracy_report(
    texts: Sequence[str],
    scores: Sequence[float] | None = None,
    threshold: float | None = None,
    num_tokens: Sequence[int] | None = None,
    criteria: CollapseCriteria | None = None,
) -> DegeneracyReport:
    """Diversity metrics and the collapse verdict for `texts`; score statistics when `scores` (one per text, NaN
    for unscored texts) and the detector `threshold` are given."""
    criteria = criteria or CollapseCriteria()
    if len(texts) < 2:
        raise ValueError(f"a degeneracy report needs at least 2 texts, got {len(texts)}")
    for name, values in (("scores", scores), ("num_tokens", num_tokens)):
        if values is not None and len(values) != len(texts):
            raise ValueError(f"{name} has {len(values)} entries for {len(texts)} texts")
    if (scores is None) != (threshold is None):
        raise ValueError("give scores and threshold together (flagged-as-AI needs the detector's threshold)")

    unique = unique_fraction(texts)
    mean_jaccard = mean_pairwise_jaccard(texts, criteria.max_pairs)
    reasons = []
    if unique < criteria.min_unique_fraction:
        reasons.append(f"unique_fraction {unique:.2f} < {criteria.min_unique_fraction}")
    if mean_jaccard >= criteria.max_mean_jaccard:
        reasons.append(f"mean_pairwise_jaccard {mean_jaccard:.2f} >= {criteria.max_mean_jaccard}")
    return DegeneracyReport(
        num_samples=len(texts),
        unique_fraction=unique,
        mean_pairwise_jaccard=mean_jaccard,
        distinct_1=distinct_n(texts, 1),
        distinct_2=distinct_n(texts, 2),
        mean_words=statistics.fmean(len(words(text)) for text in texts),
        mean_tokens=statistics.fmean(num_tokens) if num_tokens is not None else None,
        scores=summarise_scores(scores, threshold) if scores is not None else None,
        likely_template_collapse=bool(reasons),
        collapse_reasons=reasons,
        criteria=criteria,
    )
