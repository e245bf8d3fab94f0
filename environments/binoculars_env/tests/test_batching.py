"""Concurrent reward calls reach the scorer in batches; results equal scoring each text alone."""

import asyncio
import time

import pytest
from binoculars_env import batching
from binoculars_env.batching import ScoreBatcher, batcher_for, score_group
from binoculars_env.reward import score_completions

TEXTS = [
    f"Story {i}: the little fox ran to the river and found {i} shiny stones by the water." for i in range(16)
]


def test_concurrent_calls_are_scored_in_one_batch(tiny_reward_config):
    async def run():
        batcher = ScoreBatcher(tiny_reward_config)
        results = await asyncio.gather(*(batcher.score(text) for text in TEXTS))
        return batcher, results

    batcher, results = asyncio.run(run())
    assert batcher.batch_sizes == [16]
    for text, result in zip(TEXTS, results, strict=True):
        assert result == score_completions([text], tiny_reward_config)[0]


def test_a_full_batch_is_sent_without_waiting_for_the_window(tiny_reward_config):
    config = tiny_reward_config.model_copy(update={"max_batch_size": 4, "batch_window_s": 30.0})

    async def run():
        batcher = ScoreBatcher(config)
        start = time.monotonic()
        await asyncio.gather(*(batcher.score(text) for text in TEXTS[:8]))
        return batcher, time.monotonic() - start

    batcher, elapsed = asyncio.run(run())
    assert batcher.batch_sizes == [4, 4] and elapsed < 30.0


def test_no_call_waits_longer_than_the_window(tiny_reward_config):
    config = tiny_reward_config.model_copy(update={"batch_window_s": 0.2})

    async def run():
        batcher = ScoreBatcher(config)
        await batcher.score(TEXTS[0])  # warm: the scorer is loaded
        first = asyncio.ensure_future(batcher.score(TEXTS[1]))
        await asyncio.sleep(0.5)  # a late rollout arrives after the window has closed
        late = await batcher.score(TEXTS[2])
        return batcher, await first, late

    batcher, first, late = asyncio.run(run())
    assert batcher.batch_sizes == [1, 1, 1]
    assert (
        first == score_completions([TEXTS[1]], config)[0] and late == score_completions([TEXTS[2]], config)[0]
    )


def test_reward_and_metrics_of_one_text_cost_one_scoring(tiny_reward_config, monkeypatch):
    calls = []
    real = batching.score_completions
    monkeypatch.setattr(
        batching, "score_completions", lambda texts, config: calls.append(texts) or real(texts, config)
    )

    async def run():
        batcher = ScoreBatcher(tiny_reward_config)
        first = await asyncio.gather(*(batcher.score(t) for t in TEXTS[:3] + TEXTS[:3]))
        again = await asyncio.gather(*(batcher.score(t) for t in TEXTS[:3]))
        return first, again

    first, again = asyncio.run(run())
    assert calls == [TEXTS[:3]] and first == again + again


def test_group_scoring_is_one_call_per_group(tiny_reward_config, monkeypatch):
    calls = []
    real = batching.score_completions
    monkeypatch.setattr(
        batching, "score_completions", lambda texts, config: calls.append(texts) or real(texts, config)
    )
    config = tiny_reward_config.model_copy(update={"threshold": 0.77})  # a fresh cache
    group = TEXTS[8:12] + TEXTS[8:10]
    results = asyncio.run(score_group(group, config))
    again = asyncio.run(score_group(group, config))  # the metrics' calls hit the cache
    assert calls == [sorted(set(group))] and results == again
    assert results == score_completions(group, config)


def test_group_results_survive_cache_eviction(tiny_reward_config, monkeypatch):
    """A group larger than the cache (or evicted by other groups while it awaits) still gets every result."""
    config = tiny_reward_config.model_copy(update={"threshold": 0.66})  # a fresh cache key
    monkeypatch.setitem(batching._group_caches, config.cache_key(), batching.ResultCache(size=2))
    group = TEXTS[:4]
    results = asyncio.run(score_group(group, config))
    assert results == score_completions(group, config)


def test_batchers_are_per_event_loop_and_configuration(tiny_reward_config):
    async def batchers():
        return batcher_for(tiny_reward_config), batcher_for(tiny_reward_config.model_copy())

    first_a, first_b = asyncio.run(batchers())
    second_a, _ = asyncio.run(batchers())
    assert first_a is first_b and first_a is not second_a


def test_scorer_errors_reach_every_waiting_rollout(tiny_reward_config, tmp_path):
    from binoculars import ModelLoadError

    config = tiny_reward_config.model_copy(update={"performer_model": str(tmp_path / "missing-performer")})

    async def run():
        batcher = ScoreBatcher(config)
        return await asyncio.gather(*(batcher.score(t) for t in TEXTS[:3]), return_exceptions=True)

    errors = asyncio.run(run())
    assert all(isinstance(e, ModelLoadError) and "missing-performer" in str(e) for e in errors)


@pytest.mark.parametrize("window", [0.0, 0.05])
def test_window_zero_still_collects_calls_made_in_the_same_tick(tiny_reward_config, window):
    config = tiny_reward_config.model_copy(update={"batch_window_s": window})

    async def run():
        batcher = ScoreBatcher(config)
        await asyncio.gather(*(batcher.score(t) for t in TEXTS[:5]))
        return batcher.batch_sizes

    assert asyncio.run(run()) == [5]
