"""The prime-rl variants that take rewards from the scoring service (configs/*/service/rl.toml): the same run as
their base rl.toml except for the scorer, and env arguments the real env package accepts."""

import tomllib

import pytest
from binoculars_env.reward import RewardConfig
from test_configs import CONFIGS, check_env_part, env_part, sources

from binoculars.serve import parse_args

VARIANTS = {"binoculars-4gpu": "legacy", "binoculars-v1-4gpu": "v1"}
SERVICE_KEYS = {"scorer_url", "scorer_timeout_s", "scorer_max_retries"}


def reward_args(part: dict) -> dict:
    return part["legacy"]["args"] if "legacy" in part else part["env"]["taskset"]["task"]


def load(path) -> dict:
    return tomllib.loads(path.read_text())


@pytest.mark.parametrize("dirname", sorted(VARIANTS))
def test_service_variant_is_the_base_run_with_the_scorer_swapped_for_the_service(dirname):
    base = load(CONFIGS / dirname / "rl.toml")
    variant = load(CONFIGS / dirname / "service" / "rl.toml")
    for split in ("train", "eval"):
        (base_source,), (variant_source,) = sources(base, split), sources(variant, split)
        base_args, variant_args = reward_args(env_part(base_source)), reward_args(env_part(variant_source))
        assert "scorer_device" in base_args and "scorer_device" not in variant_args
        assert set(variant_args) - set(base_args) == SERVICE_KEYS
        assert variant_args["scorer_url"] == "http://127.0.0.1:8000"
        assert {k: v for k, v in variant_args.items() if k not in SERVICE_KEYS} == {
            k: v for k, v in base_args.items() if k != "scorer_device"
        }
        assert variant_source["serve"]["pool"]["num_workers"] > 1  # workers no longer load a scorer each
        env = check_env_part(env_part(variant_source))  # validated by the real env package
        assert env.taskset.id == "binoculars-env"
    # Everything but the sources and the run's name is the base run's.
    for doc in (base, variant):
        doc["orchestrator"].pop("train"), doc["orchestrator"].pop("eval")
        doc.pop("output_dir", None), doc.get("run", {}).pop("name", None)
    assert variant == base


@pytest.mark.parametrize("dirname", sorted(VARIANTS))
def test_the_service_command_in_the_header_serves_what_the_env_asks_for(dirname):
    text = (CONFIGS / dirname / "service" / "rl.toml").read_text()
    command = text.split("--extra serve python -m binoculars.serve", 1)[1].split("\n#   curl", 1)[0]
    served = parse_args(command.replace("\\\n#", " ").split())
    variant = load(CONFIGS / dirname / "service" / "rl.toml")
    for split in ("train", "eval"):
        (source,) = sources(variant, split)
        args_given = reward_args(env_part(source))  # legacy args also hold the data settings
        reward = RewardConfig(**{k: v for k, v in args_given.items() if k in RewardConfig.model_fields})
        assert (served.observer, served.performer) == (reward.observer_model, reward.performer_model)
        assert served.max_token_observed == reward.max_token_observed
        assert reward.scorer_url == f"http://127.0.0.1:{served.port}"
