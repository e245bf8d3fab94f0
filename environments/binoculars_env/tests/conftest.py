"""Fixtures of the env tests (the tiny model pair, its reward config and the offline settings come from the
repository's conftest.py)."""

import pytest
from binoculars_env.data import SAMPLE_DATA_FILE
from openai_stub import SCRIPTED_REPLIES, ScriptedChatServer


@pytest.fixture(scope="session")
def env_args(tiny_reward_config) -> dict:
    """load_environment / taskset arguments for the tiny models and the shipped sample stories."""
    return {
        **tiny_reward_config.model_dump(include={"observer_model", "performer_model", "scorer_device"}),
        **tiny_reward_config.model_dump(
            include={
                "threshold",
                "min_tokens",
                "max_log_ppl",
                "min_distinct_2",
                "length_weight",
                "max_obfuscation",
                "spelling_charge",
                "profile_statistics",
            }
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
