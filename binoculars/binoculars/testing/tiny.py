"""Tiny Qwen2-architecture model pairs for offline tests and demos.

Real Binoculars needs two multi-hundred-MB models from the Hugging Face hub. Tests, CI and the offline demo
build a pair of ~100k-parameter Qwen2 models instead, sharing a byte-level BPE tokenizer trained on a few KB of
project-written text. Their scores mean nothing; they exercise exactly the same loading and scoring code.

    from binoculars.testing.tiny import build_tiny_pair
    paths = build_tiny_pair("/tmp/tiny")      # -> TinyPair(observer=..., performer=..., policy=...)
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path

# Qwen2's pre-tokenizer regex: transformers' Qwen2Tokenizer re-applies it on load, so the BPE must be
# trained with it or token ids differ between the trained tokenizer and the loaded one.
_QWEN2_PRETOKENIZE_REGEX = (
    r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+"""
    r"""|\s+(?!\S)|\s+"""
)
SPECIAL_TOKENS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>", "<think>", "</think>")

# The ChatML template Qwen models use, reduced to what a single-turn chat needs (honours enable_thinking).
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}"
    "{% if enable_thinking is defined and enable_thinking is false %}{{ '<think>\n\n</think>\n\n' }}{% endif %}"
    "{% endif %}"
)

_NAMES = ["Lily", "Tom", "Sam", "Mia", "Ben", "Anna", "Max", "Zoe", "Tim", "Sue"]
_ANIMALS = ["cat", "dog", "bird", "frog", "bunny", "fox", "duck", "bear"]
_PLACES = ["park", "garden", "forest", "house", "beach", "school", "river", "farm"]
_FEELINGS = ["happy", "sad", "scared", "excited", "tired", "proud", "curious", "angry"]
_THINGS = ["ball", "kite", "cake", "book", "hat", "box", "toy", "flower"]


def story_corpus(num_stories: int = 120, seed: int = 0) -> list[str]:
    """Short TinyStories-like stories written from templates (deterministic for a seed)."""
    rng = random.Random(seed)
    stories = []
    for _ in range(num_stories):
        name, friend = rng.sample(_NAMES, 2)
        animal, place, thing = rng.choice(_ANIMALS), rng.choice(_PLACES), rng.choice(_THINGS)
        feel, feel2 = rng.sample(_FEELINGS, 2)
        stories.append(
            f"Once upon a time, there was a little {animal} named {name}. {name} lived near the {place}. "
            f"One day, {name} found a big {thing}. {name} was very {feel}. "
            f'{name} said, "Look, {friend}! I found a {thing}!" {friend} smiled and they played all day. '
            f"At the end of the day, they were {feel2} but they went home together. The end."
        )
    return stories


def tokenizer_training_text() -> list[str]:
    """Text the tiny tokenizer learns from: stories plus digits, punctuation, emoji and CJK so odd input
    still tokenizes to known bytes."""
    extras = ["0123456789 !?.,;:'\"()[]{}<>-_=+*/\\|@#$%^&~`", "你好世界 こんにちは 🙂🚀✨ café naïve"]
    return story_corpus() + extras


@dataclass(frozen=True)
class TinyPair:
    observer: Path
    performer: Path
    policy: Path


def build_tokenizer(vocab_size: int = 512):
    """Train a byte-level BPE with Qwen2's pre-tokenizer and wrap it as a transformers Qwen2Tokenizer."""
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
    from transformers import Qwen2Tokenizer

    bpe = Tokenizer(models.BPE())
    bpe.normalizer = normalizers.NFC()
    bpe.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(_QWEN2_PRETOKENIZE_REGEX), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    bpe.train_from_iterator(tokenizer_training_text(), trainer)
    model_state = json.loads(bpe.to_str())["model"]
    merges = [tuple(m) if isinstance(m, list) else tuple(m.split(" ")) for m in model_state["merges"]]
    tokenizer = Qwen2Tokenizer(vocab=model_state["vocab"], merges=merges, padding_side="right")
    tokenizer.chat_template = CHAT_TEMPLATE
    tokenizer.add_special_tokens({"additional_special_tokens": list(SPECIAL_TOKENS[1:])})
    return tokenizer


def _tiny_model(vocab_size: int, eos_token_id: int):
    from transformers import Qwen2Config, Qwen2ForCausalLM

    config = Qwen2Config(
        vocab_size=vocab_size,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=2048,
        tie_word_embeddings=True,
        eos_token_id=eos_token_id,
        bos_token_id=eos_token_id,
        pad_token_id=eos_token_id,
    )
    return Qwen2ForCausalLM(config)


def _fit(model, tokenizer, texts: list[str], steps: int, lr: float = 3e-3) -> None:
    """A few full-batch steps of next-token training, so the models prefer story-like text."""
    import torch

    batch = tokenizer(texts, padding=True, return_tensors="pt")
    labels = batch["input_ids"].masked_fill(batch["attention_mask"] == 0, -100)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr)
    model.train()
    for _ in range(steps):
        model(**batch, labels=labels).loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    model.eval()


def build_tiny_pair(directory: str | Path, vocab_size: int = 512) -> TinyPair:
    """Write tokenizer + observer, performer and policy models under `directory` (idempotent, ~10 s on CPU).

    The observer is briefly trained on template stories; the performer continues from it on other stories
    (like an instruct fine-tune of its base); the policy starts as a copy of the observer.
    """
    import copy

    import torch

    directory = Path(directory)
    pair = TinyPair(directory / "observer", directory / "performer", directory / "policy")
    if all((p / "config.json").exists() for p in (pair.observer, pair.performer, pair.policy)):
        return pair
    tokenizer = build_tokenizer(vocab_size)
    eos = tokenizer.convert_tokens_to_ids("<|endoftext|>")
    rng_state = torch.random.get_rng_state()
    torch.manual_seed(0)
    try:
        observer = _tiny_model(len(tokenizer), eos)
        _fit(observer, tokenizer, story_corpus(seed=0), steps=40)
        performer = copy.deepcopy(observer)
        _fit(performer, tokenizer, story_corpus(seed=1), steps=15)
    finally:
        torch.random.set_rng_state(rng_state)
    policy = copy.deepcopy(observer)
    policy.generation_config.eos_token_id = [eos, tokenizer.convert_tokens_to_ids("<|im_end|>")]
    for path, model in ((pair.observer, observer), (pair.performer, performer), (pair.policy, policy)):
        model.save_pretrained(path)
        tokenizer.save_pretrained(path)
    return pair
