"""Fixtures shared by every test of the repository (tests/ and environments/binoculars_env/tests/): offline, on a
tiny Qwen2 model pair built once per session."""

import os

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import pytest  # noqa: E402
from binoculars_env.reward import RewardConfig  # noqa: E402

from binoculars.testing.tiny import TinyPair, build_tiny_pair  # noqa: E402


@pytest.fixture(scope="session")
def tiny_pair(tmp_path_factory) -> TinyPair:
    """Paths of a tiny observer, performer and policy sharing one byte-level BPE tokenizer (built once into
    $BINOCULARS_TINY_MODELS when set, so CI's several venvs share one build)."""
    shared = os.environ.get("BINOCULARS_TINY_MODELS")
    return build_tiny_pair(shared or tmp_path_factory.mktemp("tiny_models"))


@pytest.fixture(scope="session")
def tiny_reward_config(tiny_pair) -> RewardConfig:
    """The tiny pair on CPU with the pure `clip(score - threshold)` reward (random models have high
    perplexity, so the fluency ceiling, repetition guard, length term and the surface guards (obfuscation,
    spelling charge, human profile) are off; tests of those guards turn them on). The detector still scores the canonical form.)"""
    return RewardConfig(
        observer_model=str(tiny_pair.observer),
        performer_model=str(tiny_pair.performer),
        scorer_device="cpu",
        threshold=1.0,
        min_tokens=4,
        max_log_ppl=None,
        min_distinct_2=None,
        length_weight=0.0,
        max_obfuscation=None,
        spelling_charge=0.0,
        profile_statistics=[],
    )
