"""Peak memory and time of the project's scorer against a naive full-logits Binoculars, in one process.

    uv run python benchmarks/bench_scorer.py                       # CPU, fp32, 8 texts x ~250 tokens
    uv run python benchmarks/bench_scorer.py --device cuda --dtype bfloat16 --layers 24 \
        --num-texts 64 --tokens 256 --batch-size 64                 # GPU, Qwen2.5-0.5B-shaped pair

Both models get Qwen2.5's vocabulary (151,936 rows) and random weights: throughput and memory do not depend on
the weights. The naive baseline is the reference algorithm as published: one forward per model returning the
full [batch, length, vocab] logits, softmax over all of them at once.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import threading
import time
from pathlib import Path

import psutil
import torch

from binoculars import Binoculars
from binoculars.testing.tiny import build_tokenizer, story_corpus

QWEN25_VOCAB = 151_936


def build_random_pair(directory: Path, layers: int, hidden_size: int) -> None:
    from transformers import Qwen2Config, Qwen2ForCausalLM

    tokenizer = build_tokenizer()
    config = Qwen2Config(
        vocab_size=QWEN25_VOCAB,
        hidden_size=hidden_size,
        intermediate_size=hidden_size * 54 // 10,
        num_hidden_layers=layers,
        num_attention_heads=14 if hidden_size % 14 == 0 else 8,
        num_key_value_heads=2,
        tie_word_embeddings=True,
        pad_token_id=tokenizer.pad_token_id,
    )
    for seed, name in ((0, "observer"), (1, "performer")):
        torch.manual_seed(seed)
        Qwen2ForCausalLM(config).save_pretrained(directory / name)
        tokenizer.save_pretrained(directory / name)


def naive_scores(bino: Binoculars, texts: list[str]) -> list[float]:
    """The reference algorithm: full logits of both models for the whole batch."""
    encoding = bino.tokenizer(
        texts, padding=True, truncation=True, max_length=bino.max_token_observed, return_tensors="pt"
    ).to(bino.performer_device)
    with torch.inference_mode():
        observer_logits = bino.observer_model(**encoding).logits.float()
        performer_logits = bino.performer_model(**encoding).logits.float()
        mask = (encoding.attention_mask[:, :-1] * encoding.attention_mask[:, 1:]).float()
        log_probs = torch.log_softmax(performer_logits[:, :-1], dim=-1)
        nll = -log_probs.gather(-1, encoding.input_ids[:, 1:, None]).squeeze(-1)
        xent = -(torch.softmax(observer_logits[:, :-1], dim=-1) * log_probs).sum(-1)
        log_ppl = (nll * mask).sum(1) / mask.sum(1)
        x_ppl = (xent * mask).sum(1) / mask.sum(1)
    return (log_ppl / x_ppl).tolist()


class PeakMemory:
    """Peak extra memory during a block: CUDA allocator peak, or process RSS sampled every millisecond."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.peak_bytes = 0

    def __enter__(self):
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self.start = torch.cuda.memory_allocated(self.device)
        else:
            self.process = psutil.Process(os.getpid())
            self.start = self.process.memory_info().rss
            self.rss_peak = self.start
            self.running = True
            self.thread = threading.Thread(target=self._sample, daemon=True)
            self.thread.start()
        return self

    def _sample(self) -> None:
        while self.running:
            self.rss_peak = max(self.rss_peak, self.process.memory_info().rss)
            time.sleep(0.001)

    def __exit__(self, *exc) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            self.peak_bytes = torch.cuda.max_memory_allocated(self.device) - self.start
        else:
            self.running = False
            self.thread.join()
            self.peak_bytes = self.rss_peak - self.start


def measure(fn, texts, device, repeats: int, clock=time.perf_counter) -> tuple[list[float], float, int]:
    """(fn's result, its best time of `repeats` by `clock` (wall by default; `time.process_time` for the CPU
    time of this process, steadier on a shared machine), the highest peak extra memory), after a warm-up."""
    fn(texts[:2])  # warm-up
    best_time, peak = float("inf"), 0
    for _ in range(repeats):
        with PeakMemory(device) as memory:
            start = clock()
            scores = fn(texts)
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            best_time = min(best_time, clock() - start)
        peak = max(peak, memory.peak_bytes)
    return scores, best_time, peak


def add_pair_arguments(parser: argparse.ArgumentParser) -> None:
    """The random pair's shape and the texts it scores (shared by bench_panel.py)."""
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--layers", type=int, default=2, help="transformer layers per model (0.5B has 24)")
    parser.add_argument("--hidden-size", type=int, default=896, help="Qwen2.5-0.5B: 896")
    parser.add_argument("--num-texts", type=int, default=8)
    parser.add_argument("--tokens", type=int, default=250, help="tokens per text (truncation length)")
    parser.add_argument("--batch-size", type=int, default=16)


def random_pair_scorer(args: argparse.Namespace) -> tuple[Binoculars, list[str], int]:
    """(a scorer of a random pair shaped by `add_pair_arguments`, distinct texts each longer than --tokens,
    the tokens they hold in all)."""
    with tempfile.TemporaryDirectory() as tmp:
        build_random_pair(Path(tmp), args.layers, args.hidden_size)
        bino = Binoculars(
            Path(tmp) / "observer",
            Path(tmp) / "performer",
            device=args.device,
            dtype=args.dtype,
            max_token_observed=args.tokens,
            batch_size=args.batch_size,
            thresholds={"low-fpr": 0.5},
        )
    story = " ".join(story_corpus(40, seed=3))
    texts = [story[i * 37 :] for i in range(args.num_texts)]
    num_tokens = sum(d.num_tokens for d in bino.score_details(texts[:1])) * len(texts)
    return bino, texts, num_tokens


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_pair_arguments(parser)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()

    bino, texts, num_tokens = random_pair_scorer(args)
    device = bino.performer_device

    ours, our_time, our_peak = measure(bino.compute_score, texts, device, args.repeats)
    naive, naive_time, naive_peak = measure(lambda t: naive_scores(bino, t), texts, device, args.repeats)
    max_rel_diff = max(abs(a - b) / abs(b) for a, b in zip(ours, naive, strict=True))

    print(
        f"device={device} dtype={args.dtype} layers={args.layers} hidden={args.hidden_size} vocab={QWEN25_VOCAB}"
    )
    print(f"texts={len(texts)} tokens/text={args.tokens} batch_size={args.batch_size}")
    print(f"{'':8}{'time s':>10}{'tokens/s':>12}{'peak MiB':>12}")
    for name, seconds, peak in (("ours", our_time, our_peak), ("naive", naive_time, naive_peak)):
        print(f"{name:8}{seconds:10.3f}{num_tokens / seconds:12.0f}{peak / 2**20:12.0f}")
    print(f"peak memory ratio (ours/naive): {our_peak / naive_peak:.3f}")
    print(f"time ratio        (ours/naive): {our_time / naive_time:.3f}")
    print(f"max relative score difference:  {max_rel_diff:.2e}")


if __name__ == "__main__":
    main()
