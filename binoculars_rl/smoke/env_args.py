"""Environment arguments from the command line, checked against the env's own config classes.

`--env-arg key=value` (repeatable; the value is read as JSON when it parses, else as a string) and
`--env-args '{json}'` take the names `load_environment()` takes: every field of `binoculars_env.data.DataConfig`
and `binoculars_env.reward.RewardConfig`.
"""

from __future__ import annotations

import json
from typing import Any

from binoculars_env.data import DataConfig
from binoculars_env.reward import RewardConfig
from pydantic import ValidationError

from binoculars_rl.smoke.errors import SmokeError

ENV_ARG_NAMES = tuple(sorted(set(DataConfig.model_fields) | set(RewardConfig.model_fields)))


def parse_env_args(pairs: list[str], json_text: str | None) -> dict[str, Any]:
    """`key=value` pairs (JSON values where they parse) over a JSON object; later values win."""
    args: dict[str, Any] = {}
    if json_text:
        try:
            loaded = json.loads(json_text)
        except json.JSONDecodeError as error:
            raise SmokeError(f"--env-args is not valid JSON ({error}): {json_text!r}") from None
        if not isinstance(loaded, dict):
            raise SmokeError(f"--env-args must be a JSON object, got {json_text!r}")
        args.update(loaded)
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise SmokeError(f"--env-arg takes key=value, got {pair!r}")
        try:
            args[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            args[key.strip()] = value
    return args


def env_configs(args: dict[str, Any]) -> tuple[DataConfig, RewardConfig]:
    """The env's data and reward configs for these arguments (unknown names and bad values are errors)."""
    unknown = sorted(set(args) - set(ENV_ARG_NAMES))
    if unknown:
        raise SmokeError(f"unknown env argument(s) {unknown}; the env takes: {', '.join(ENV_ARG_NAMES)}")
    try:
        data = DataConfig(**{k: v for k, v in args.items() if k in DataConfig.model_fields})
        reward = RewardConfig(**{k: v for k, v in args.items() if k in RewardConfig.model_fields})
    except ValidationError as error:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors())
        raise SmokeError(f"bad env argument: {problems}") from None
    return data, reward
