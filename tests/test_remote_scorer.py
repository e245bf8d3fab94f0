"""binoculars-env's `scorer_url`: rewards from a shared scoring service equal the in-process rewards; no model
loads in the env process; a service with another model pair, or none at all, is a loud error, never a default
reward; the service has an API key, which the env passes from `$BINOCULARS_API_KEY`, and shows no local paths on
/info, which the env still checks against its config. (In the project's suite, not the env's own tests, so CI runs it where the `serve` extra is installed.)"""

import asyncio
import math

import pytest
from binoculars_env import scorer_pool
from binoculars_env.batching import batcher_for
from binoculars_env.reward import score_completions
from binoculars_env.taskset import BinocularsTaskConfig
from pydantic import ValidationError

from binoculars.client import ScoringServiceError, ScoringServiceUnreachable
from binoculars.testing.service_process import ServiceProcess, free_port

COMPLETIONS = [
    "The little fox ran to the river and found a friend. They played with a red ball all day.",
    "<think>plan</think>Mia smiled at Tom, and they walked home together under the warm sun.",
    "",
    "Hi",
    "🙂🚀✨ 你好世界 " * 10,
    "The dog ran to the park and played with the ball. " * 100,  # truncated to max_token_observed
]


def assert_same_results(got_results, want_results) -> None:
    for got, want in zip(got_results, want_results, strict=True):
        assert got.guard == want.guard and got.num_tokens == want.num_tokens
        assert got.flagged_as_ai == want.flagged_as_ai
        for name in ("reward", "score", "log_ppl", "x_ppl"):
            a, b = getattr(got, name), getattr(want, name)
            assert (math.isnan(a) and math.isnan(b)) or abs(a - b) <= 1e-6, (name, a, b)


API_KEY = "remote-test-key"


@pytest.fixture(scope="module")
def service(tiny_reward_config):
    config = tiny_reward_config
    args = ["--observer", config.observer_model, "--performer", config.performer_model]
    args += ["--accelerator", "cpu", "--dtype", "float32"]
    args += ["--max-token-observed", str(config.max_token_observed)]
    with ServiceProcess(args, api_key=API_KEY) as running, pytest.MonkeyPatch.context() as environment:
        environment.setenv("BINOCULARS_API_KEY", API_KEY)  # what an env worker's environment holds
        yield running


def test_the_service_shows_no_local_paths_yet_the_env_recognises_its_pair(service, tiny_reward_config):
    from binoculars.client import ScoringClient

    with ScoringClient(service.url) as client:
        info = client.info()
    assert tiny_reward_config.observer_model not in (info.observer, info.performer)
    assert info.serves(
        tiny_reward_config.observer_model,
        tiny_reward_config.performer_model,
        tiny_reward_config.max_token_observed,
    )


def test_rewards_from_the_service_equal_in_process_rewards(service, tiny_reward_config):
    remote_config = tiny_reward_config.model_copy(update={"scorer_url": service.url})
    scorers_before = scorer_pool.loaded_scorer_count()
    remote = score_completions(COMPLETIONS, remote_config)
    assert scorer_pool.loaded_scorer_count() == scorers_before  # the service scored; nothing loaded here
    assert_same_results(remote, score_completions(COMPLETIONS, tiny_reward_config))
    assert [r.guard for r in remote][2:4] == ["empty", "too_short"]


def test_v1_task_config_takes_scorer_url_and_batches_rollouts_through_the_service(
    service, tiny_reward_config
):
    config = BinocularsTaskConfig(
        **tiny_reward_config.model_dump(exclude={"scorer_url", "scorer_timeout_s", "scorer_max_retries"}),
        scorer_url=service.url,
        scorer_timeout_s=30,
        scorer_max_retries=1,
    )

    async def score_concurrently():
        batcher = batcher_for(config)
        results = await asyncio.gather(*(batcher.score(text) for text in COMPLETIONS))
        return results, batcher.batch_sizes

    remote, batch_sizes = asyncio.run(score_concurrently())
    assert batch_sizes == [len(COMPLETIONS)]
    assert_same_results(remote, score_completions(COMPLETIONS, tiny_reward_config))
    with pytest.raises(ValidationError, match="scorer_max_retries"):
        BinocularsTaskConfig(scorer_max_retries=-1)


def test_a_service_with_another_model_pair_is_refused(service, tiny_reward_config):
    swapped = tiny_reward_config.model_copy(
        update={"scorer_url": service.url, "performer_model": tiny_reward_config.observer_model}
    )
    with pytest.raises(ValueError, match="serves observer=.*set them to the service's values"):
        score_completions(COMPLETIONS[:1], swapped)
    other_length = tiny_reward_config.model_copy(
        update={"scorer_url": service.url, "max_token_observed": 128}
    )
    with pytest.raises(ValueError, match="max_token_observed=512, but"):
        score_completions(COMPLETIONS[:1], other_length)


def test_an_unreachable_service_raises_instead_of_rewarding(tiny_reward_config):
    url = f"http://127.0.0.1:{free_port()}"
    config = tiny_reward_config.model_copy(
        update={"scorer_url": url, "scorer_max_retries": 1, "scorer_timeout_s": 2}
    )
    with pytest.raises(ScoringServiceUnreachable, match="no answer after 2 attempts"):
        score_completions(COMPLETIONS[:2], config)


def test_an_env_without_the_api_key_gets_a_clear_error(service, tiny_reward_config, monkeypatch):
    monkeypatch.delenv("BINOCULARS_API_KEY")
    config = tiny_reward_config.model_copy(  # another spec than the other tests', so a new client
        update={"scorer_url": service.url, "scorer_max_retries": 0, "scorer_timeout_s": 7}
    )
    with pytest.raises(ScoringServiceError, match=r"HTTP 401 \(set BINOCULARS_API_KEY"):
        score_completions(COMPLETIONS[:1], config)
