"""Getting rollouts to the scorer in batches, with the forward pass off the event loop.

Classic verifiers calls a group reward function once per group: `score_group` scores the group in one call.
v1 calls a reward once per rollout: `ScoreBatcher` collects the calls of concurrent rollouts for at most
`batch_window_s` (or until `max_batch_size` are waiting) and scores them together.

Both remember recent results by text, so the reward and the weight-0 metrics of one completion (separate
calls in both stacks) cost one forward pass.
"""

from __future__ import annotations

import asyncio
import weakref
from collections import OrderedDict

from binoculars_env.reward import RewardConfig, RewardResult, score_completions

_CACHE_SIZE = 4096


class ResultCache:
    """Recent results by completion text (least recently used dropped first)."""

    def __init__(self, size: int = _CACHE_SIZE) -> None:
        self._size = size
        self._results: OrderedDict[str, RewardResult] = OrderedDict()

    def get(self, text: str) -> RewardResult | None:
        result = self._results.get(text)
        if result is not None:
            self._results.move_to_end(text)
        return result

    def put(self, text: str, result: RewardResult) -> None:
        self._results[text] = result
        self._results.move_to_end(text)
        while len(self._results) > self._size:
            self._results.popitem(last=False)


_group_caches: dict[str, ResultCache] = {}


async def score_group(texts: list[str], config: RewardConfig) -> list[RewardResult]:
    """Results for a group of completions: one scorer call for the texts not seen recently."""
    cache = _group_caches.setdefault(config.cache_key(), ResultCache())
    # Held here, not re-read from the cache: other groups may evict entries while this one awaits the scorer.
    known = {text: result for text in set(texts) if (result := cache.get(text)) is not None}
    missing = sorted(set(texts) - known.keys())
    if missing:
        for text, result in zip(
            missing, await asyncio.to_thread(score_completions, missing, config), strict=True
        ):
            cache.put(text, result)
            known[text] = result
    return [known[text] for text in texts]


class ScoreBatcher:
    """Collects concurrent `score(text)` calls on one event loop and scores them in batches."""

    def __init__(self, config: RewardConfig) -> None:
        self.config = config
        self.batch_sizes: list[int] = []
        """Size of every batch sent to the scorer (for tests and benchmarks)."""
        self._cache = ResultCache()
        self._in_flight: dict[str, asyncio.Future[RewardResult]] = {}
        self._pending: list[str] = []
        self._timer: asyncio.TimerHandle | None = None
        self._running: set[asyncio.Task] = set()

    async def score(self, text: str) -> RewardResult:
        if (result := self._cache.get(text)) is not None:
            return result
        future = self._in_flight.get(text)
        if future is None:
            loop = asyncio.get_running_loop()
            future = self._in_flight[text] = loop.create_future()
            self._pending.append(text)
            if len(self._pending) >= self.config.max_batch_size:
                self._flush()
            elif self._timer is None:
                self._timer = loop.call_later(self.config.batch_window_s, self._flush)
        # shield: a cancelled rollout must not cancel a result other rollouts wait for
        return await asyncio.shield(future)

    def _flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        batch, self._pending = self._pending, []
        if batch:
            task = asyncio.get_running_loop().create_task(self._score_batch(batch))
            self._running.add(task)
            task.add_done_callback(self._running.discard)

    async def _score_batch(self, texts: list[str]) -> None:
        self.batch_sizes.append(len(texts))
        try:
            results = await asyncio.to_thread(score_completions, texts, self.config)
        except BaseException as error:  # every waiting rollout sees the scorer's error
            for text in texts:
                self._in_flight.pop(text).set_exception(error)
            if not isinstance(error, Exception):
                raise
            return
        for text, result in zip(texts, results, strict=True):
            self._cache.put(text, result)
            self._in_flight.pop(text).set_result(result)


_batchers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, ScoreBatcher]] = (
    weakref.WeakKeyDictionary()
)


def batcher_for(config: RewardConfig) -> ScoreBatcher:
    """The running event loop's batcher for this reward configuration."""
    per_loop = _batchers.setdefault(asyncio.get_running_loop(), {})
    key = config.cache_key()
    if key not in per_loop:
        per_loop[key] = ScoreBatcher(config.reward_settings())
    return per_loop[key]
