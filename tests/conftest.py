"""Shared fixtures: every test runs offline on a tiny Qwen2 model pair built once per session."""

import os

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import pytest  # noqa: E402

from binoculars.tiny import TinyPair, build_tiny_pair  # noqa: E402


@pytest.fixture(scope="session")
def tiny_pair(tmp_path_factory) -> TinyPair:
    """Paths of a tiny observer, performer and policy sharing one byte-level BPE tokenizer."""
    return build_tiny_pair(tmp_path_factory.mktemp("tiny_models"))
