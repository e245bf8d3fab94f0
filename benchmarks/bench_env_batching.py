"""Batched reward scoring of one 16-rollout group against 16 single calls, in one process (binoculars-env).

    .venvs/vf-0.4.0/bin/python benchmarks/bench_env_batching.py                 # tiny pair, CPU
    .venvs/vf-0.4.0/bin/python benchmarks/bench_env_batching.py --observer Qwen/Qwen2.5-0.5B \
        --performer Qwen/Qwen2.5-0.5B-Instruct --device cuda:0                  # the real pair

(any venv with `environments/binoculars_env` installed; .ci/run builds the .venvs/ ones). Three ways to get
16 rewards: 16 sequential `score_completions([text])` calls (baseline), one `score_completions(group)` call
(the classic stack's group reward), and 16 concurrent `ScoreBatcher.score(text)` calls (the v1 taskset).
Each is timed over fresh texts (no cache hits) after a warm-up; the ratios are baseline / method.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time

from binoculars_env.batching import ScoreBatcher
from binoculars_env.reward import RewardConfig, score_completions

from binoculars.testing.tiny import build_tiny_pair, story_corpus


def group_texts(round_index: int, group_size: int) -> list[str]:
    """Distinct story continuations (~100 tokens); a new set every round so nothing is served from a cache."""
    stories = story_corpus(num_stories=group_size, seed=1000 + round_index)
    return [f"{story} ({round_index}-{i})" for i, story in enumerate(stories)]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--observer", help="observer model (default: a tiny pair built in a temp dir)")
    parser.add_argument("--performer", help="performer model (default: the tiny pair's)")
    parser.add_argument("--device", default="cpu", help="scorer device (default: %(default)s)")
    parser.add_argument(
        "--group-size", type=int, default=16, help="rollouts per group (default: %(default)s)"
    )
    parser.add_argument("--rounds", type=int, default=5, help="timed repetitions (default: %(default)s)")
    args = parser.parse_args()
    if (args.observer is None) != (args.performer is None):
        parser.error("give both --observer and --performer, or neither")

    observer, performer = args.observer, args.performer
    if observer is None:
        pair = build_tiny_pair(tempfile.mkdtemp(prefix="bench_env_tiny_"))
        observer, performer = str(pair.observer), str(pair.performer)
    config = RewardConfig(
        observer_model=observer,
        performer_model=performer,
        scorer_device=args.device,
        scorer_batch_size=args.group_size,
        max_batch_size=args.group_size,
        threshold=1.0,
    )
    score_completions(group_texts(-1, 2), config)  # load the scorer, warm up

    async def concurrent(texts: list[str]) -> None:
        batcher = ScoreBatcher(config)
        await asyncio.gather(*(batcher.score(text) for text in texts))
        assert batcher.batch_sizes == [len(texts)], batcher.batch_sizes

    timings: dict[str, list[float]] = {"16 single calls": [], "one group call": [], "v1 batcher": []}
    for round_index in range(args.rounds):
        texts = group_texts(round_index, args.group_size)
        singles, grouped, batched = (texts, list(reversed(texts)), [t + " " for t in texts])
        start = time.perf_counter()
        for text in singles:
            score_completions([text], config)
        timings["16 single calls"].append(time.perf_counter() - start)
        start = time.perf_counter()
        score_completions(grouped, config)
        timings["one group call"].append(time.perf_counter() - start)
        start = time.perf_counter()
        asyncio.run(concurrent(batched))
        timings["v1 batcher"].append(time.perf_counter() - start)

    baseline = statistics.median(timings["16 single calls"])
    print(f"{args.group_size} rollouts, scorer on {args.device}, median of {args.rounds} rounds")
    for name, values in timings.items():
        median = statistics.median(values)
        print(f"  {name:16s} {median * 1000:9.1f} ms   speed-up vs single calls: {baseline / median:5.2f}x")


if __name__ == "__main__":
    main()
