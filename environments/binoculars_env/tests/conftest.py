"""Fixtures for the env tests: offline, tiny models built once per session, project-written data."""

import os

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import pytest  # noqa: E402
from binoculars_env.data import SAMPLE_DATA_FILE  # noqa: E402
from binoculars_env.reward import RewardConfig  # noqa: E402
from openai_stub import ScriptedChatServer  # noqa: E402

from binoculars.tiny import TinyPair, build_tiny_pair  # noqa: E402

# Completions the scripted policy sends back: ordinary prose, a reasoning block, nothing, and odd input.
SCRIPTED_REPLIES = [
    "The little fox ran to the river and found a friend. They played with a red ball until the sun went down.",
    "<think>I should write a happy ending.</think>Mia smiled at Tom, and they walked home together, holding hands.",
    "",
    "Then the bird sang a song for everyone in the garden, and all the animals danced in the warm sun. 🙂",
]


@pytest.fixture(scope="session")
def tiny_pair(tmp_path_factory) -> TinyPair:
    """Paths of a tiny observer, performer and policy sharing one byte-level BPE tokenizer (built once into
    $BINOCULARS_ENV_TINY_MODELS when set, so CI's several env venvs share one build)."""
    shared = os.environ.get("BINOCULARS_ENV_TINY_MODELS")
    return build_tiny_pair(shared or tmp_path_factory.mktemp("tiny_models"))


@pytest.fixture(scope="session")
def tiny_reward_config(tiny_pair) -> RewardConfig:
    """The tiny pair on CPU with the pure `clip(score - threshold)` reward (random models have high
    perplexity, so the fluency ceiling, repetition guard and length term are off; tests of those guards
    turn them on)."""
    return RewardConfig(
        observer_model=str(tiny_pair.observer),
        performer_model=str(tiny_pair.performer),
        scorer_device="cpu",
        threshold=1.0,
        min_tokens=4,
        max_log_ppl=None,
        min_distinct_2=None,
        length_weight=0.0,
    )


@pytest.fixture(scope="session")
def env_args(tiny_reward_config) -> dict:
    """load_environment / taskset arguments for the tiny models and the shipped sample stories."""
    return {
        **tiny_reward_config.model_dump(include={"observer_model", "performer_model", "scorer_device"}),
        **tiny_reward_config.model_dump(
            include={"threshold", "min_tokens", "max_log_ppl", "min_distinct_2", "length_weight"}
        ),
        "data_files": str(SAMPLE_DATA_FILE),
        "num_train_examples": 6,
        "num_eval_examples": 3,
    }


@pytest.fixture
def chat_server():
    server = ScriptedChatServer(SCRIPTED_REPLIES).start()
    yield server
    server.stop()
