"""Time and peak memory of the detector panel against Binoculars alone, one scorer, one process.

    uv run python benchmarks/bench_panel.py                       # CPU, fp32, 8 texts x ~250 tokens
    uv run python benchmarks/bench_panel.py --device cuda --dtype bfloat16 --layers 24 \
        --num-texts 64 --tokens 256 --batch-size 64                 # GPU, Qwen2.5-0.5B-shaped pair

The pair has Qwen2.5's vocabulary (151,936 rows) and random weights (`bench_scorer.build_random_pair`). The same
loaded scorer scores the same texts with `panel=False` (Binoculars alone) and `panel=True` (Binoculars plus
Fast-DetectGPT, log-rank, log-likelihood, entropy from the same logits slices), alternating, best of --repeats.
On CPU the time is measured twice: the process's CPU time (`--clock cpu`, the default there: steady on a shared
machine) or wall time (`--clock wall`, the default on GPU). Goal (docs/panel.md): panel/alone <= 1.15 in time and
<= 1.1 in peak memory.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_scorer import QWEN25_VOCAB, add_pair_arguments, measure, random_pair_scorer  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_pair_arguments(parser)
    parser.add_argument(
        "--repeats", type=int, default=3, help="alternating runs of each; best time, max peak"
    )
    parser.add_argument(
        "--clock",
        choices=("cpu", "wall"),
        default=None,
        help="time by this process's CPU time or by wall time; None: cpu on CPU, wall on GPU",
    )
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads; None: torch's default")
    args = parser.parse_args()
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    clock_name = args.clock or ("wall" if args.device.startswith("cuda") else "cpu")
    clock = time.process_time if clock_name == "cpu" else time.perf_counter

    bino, texts, num_tokens = random_pair_scorer(args)
    device = bino.performer_device

    def scored_with(panel: bool):
        def score(batch: list[str]):
            bino.panel = panel
            return bino.score_details(batch)

        return score

    best = {"alone": (float("inf"), 0), "panel": (float("inf"), 0)}
    for _ in range(args.repeats):  # alternate, so drift on a shared machine hits both alike
        for name, panel in (("alone", False), ("panel", True)):
            details, seconds, peak = measure(scored_with(panel), texts, device, repeats=1, clock=clock)
            best[name] = (min(best[name][0], seconds), max(best[name][1], peak))
            if panel:
                panel_details = details
            else:
                alone_details = details
    max_diff = max(
        abs(a.score - b.score) / abs(b.score) for a, b in zip(panel_details, alone_details, strict=True)
    )

    print(
        f"device={device} dtype={args.dtype} layers={args.layers} hidden={args.hidden_size} vocab={QWEN25_VOCAB}"
    )
    print(
        f"texts={len(texts)} tokens/text={args.tokens} batch_size={args.batch_size} repeats={args.repeats} "
        f"clock={clock_name} threads={torch.get_num_threads()}"
    )
    print(f"{'':22}{clock_name + ' s':>10}{'tokens/s':>12}{'peak MiB':>12}")
    for name, label in (("alone", "Binoculars alone"), ("panel", "Binoculars + panel")):
        seconds, peak = best[name]
        print(f"{label:22}{seconds:10.3f}{num_tokens / seconds:12.0f}{peak / 2**20:12.0f}")
    print(f"time ratio        (panel/alone): {best['panel'][0] / best['alone'][0]:.3f}")
    print(f"peak memory ratio (panel/alone): {best['panel'][1] / best['alone'][1]:.3f}")
    print(f"max relative Binoculars score difference: {max_diff:.2e}")


if __name__ == "__main__":
    main()
