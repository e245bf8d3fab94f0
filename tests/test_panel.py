"""The detector panel (Fast-DetectGPT analytic, log-rank, log-likelihood, entropy) from the scorer's own logits
slices, against an independent full-softmax, unchunked, fp64 computation on the tiny pair, per text and in mixed
batches with either padding side."""

import math

import pytest
import torch

from binoculars import Binoculars
from binoculars.panel import CRITERIA, PANEL_CRITERIA, PanelScores, ai_sign, flags_ai, human_margin
from binoculars.testing.tiny import story_corpus

TEXTS = story_corpus(5, seed=21) + ["the cat", "zq xv 9 !! kk jfj wpq", "A dog ran. " * 20, "Hi there"]


def make_scorer(observer, performer, **kwargs) -> Binoculars:
    kwargs.setdefault("thresholds", {"accuracy": 0.3, "low-fpr": 0.25})
    kwargs.setdefault("max_token_observed", 64)
    return Binoculars(observer, performer, **kwargs)


def reference_criteria(scorer: Binoculars, text: str) -> dict[str, float]:
    """Every criterion of one text from the models' full logits in float64, position by position, with the
    published formulas (Fast-DetectGPT's variance as E[(log p)^2] - E[log p]^2, ranks by sorting)."""
    ids = scorer.tokenizer(text, truncation=True, max_length=scorer.max_token_observed)["input_ids"]
    with torch.no_grad():
        observer_logits = scorer.observer_model(torch.tensor([ids])).logits[0].double()
        performer_logits = scorer.performer_model(torch.tensor([ids])).logits[0].double()
    log_likelihood, mean_sum, variance_sum, log_ranks, entropies, cross_entropies = 0.0, 0.0, 0.0, [], [], []
    for t in range(len(ids) - 1):
        target = ids[t + 1]
        log_p = torch.log_softmax(performer_logits[t], dim=-1)
        q = torch.softmax(observer_logits[t], dim=-1)
        mean = (q * log_p).sum().item()
        log_likelihood += log_p[target].item()
        mean_sum += mean
        variance_sum += (q * log_p**2).sum().item() - mean**2
        order = torch.argsort(performer_logits[t], descending=True)
        rank = 1 + (order == target).nonzero().item()
        assert (performer_logits[t] == performer_logits[t, target]).sum() == 1, (
            "a tie would make ranks ambiguous"
        )
        log_ranks.append(math.log(rank))
        entropies.append(-(log_p.exp() * log_p).sum().item())
        cross_entropies.append(-mean)
    positions = len(ids) - 1
    return {
        "binoculars": (-log_likelihood / positions) / (sum(cross_entropies) / positions),
        "fast_detectgpt": (log_likelihood - mean_sum) / math.sqrt(variance_sum),
        "log_rank": sum(log_ranks) / positions,
        "log_likelihood": log_likelihood / positions,
        "entropy": sum(entropies) / positions,
    }


def assert_match_reference(scorer: Binoculars, texts: list[str], details) -> None:
    for text, got in zip(texts, details, strict=True):
        want = reference_criteria(scorer, text)
        for name, value in got.criteria().items():
            assert value == pytest.approx(want[name], rel=1e-5), (name, text[:30])


@pytest.fixture(scope="module")
def scorer(tiny_pair) -> Binoculars:
    return make_scorer(tiny_pair.observer, tiny_pair.performer, batch_size=4)


def test_each_text_alone_matches_the_fp64_reference(scorer):
    for text in TEXTS:
        assert_match_reference(scorer, [text], scorer.score_details([text]))


@pytest.mark.parametrize("padding_side", ["left", "right"])
def test_mixed_batches_match_the_reference_with_either_padding(tiny_pair, padding_side):
    scorer = make_scorer(tiny_pair.observer, tiny_pair.performer, batch_size=4)
    scorer.tokenizer.padding_side = padding_side
    assert_match_reference(scorer, TEXTS, scorer.score_details(TEXTS))
    reversed_details = scorer.score_details(TEXTS[::-1])[::-1]
    assert_match_reference(scorer, TEXTS, reversed_details)


def test_one_row_slices_match_the_reference(tiny_pair):
    scorer = make_scorer(tiny_pair.observer, tiny_pair.performer, batch_size=8, logits_chunk_mb=1e-6)
    assert_match_reference(scorer, TEXTS, scorer.score_details(TEXTS))


def test_one_model_as_both_roles_matches_the_reference(tiny_pair):
    scorer = make_scorer(tiny_pair.performer, tiny_pair.performer, batch_size=3)
    assert scorer.shared_model
    details = scorer.score_details(TEXTS)
    assert_match_reference(scorer, TEXTS, details)
    for d in details:  # q = p: x-ppl is the performer's entropy
        assert d.panel.entropy == pytest.approx(d.x_ppl, rel=1e-9)


def test_criteria_vary_between_texts(scorer):
    details = scorer.score_details(TEXTS)
    for name in CRITERIA:
        assert len({round(d.criteria()[name], 6) for d in details}) > len(TEXTS) // 2, name


def test_texts_under_two_tokens_get_nan_for_every_criterion(scorer):
    for d in scorer.score_details(["", "a"]):
        assert all(math.isnan(v) for v in d.criteria().values())


def test_without_the_panel_scores_are_unchanged_and_criteria_refuse(tiny_pair, scorer):
    plain = make_scorer(tiny_pair.observer, tiny_pair.performer, batch_size=4, panel=False)
    details = plain.score_details(TEXTS)
    assert all(d.panel is None for d in details)
    assert [d.score for d in details] == pytest.approx(scorer.compute_score(TEXTS), rel=1e-6)
    with pytest.raises(ValueError, match="no detector panel"):
        details[0].criteria()


def test_directions_put_the_models_own_stories_on_the_ai_side_of_gibberish(scorer):
    """The tiny models were trained on these template stories: under each documented direction, a story is more
    AI-like (lower ai_sign * value) than random letters. Not Fast-DetectGPT: on random letters both tiny models
    are nearly uniform, so its denominator (the variance of log p) nearly vanishes and the z-score is noise."""
    story, gibberish = story_corpus(1, seed=5)[0], "qz xv jfj wpq kk zzv qpx vvk jq xw qqj zk " * 2
    story_values, gibberish_values = (d.criteria() for d in scorer.score_details([story, gibberish]))
    for name in ("binoculars", "log_rank", "log_likelihood", "entropy"):
        assert ai_sign(name) * story_values[name] < ai_sign(name) * gibberish_values[name], name


def test_flags_and_margins_follow_each_direction():
    assert flags_ai("binoculars", 0.7, 0.9) and not flags_ai("binoculars", 1.0, 0.9)
    assert flags_ai("fast_detectgpt", 3.0, 1.0) and not flags_ai("fast_detectgpt", 0.5, 1.0)
    assert not flags_ai("log_rank", math.nan, 1.0)
    assert human_margin("log_likelihood", -2.0, -3.0, 0.5) == pytest.approx(-2.0)
    assert human_margin("entropy", 4.0, 3.0, None) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="unknown detector criterion"):
        flags_ai("gltr", 1.0, 1.0)


def test_fast_detectgpt_is_nan_without_variance():
    assert math.isnan(PanelScores.from_sums(1.0, 2.0, 0.0, 0.0, 1.0, positions=3).fast_detectgpt)
    assert set(PanelScores.nan().as_dict()) == set(PANEL_CRITERIA)
