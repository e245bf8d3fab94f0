"""binoculars-env: continue TinyStories so that the Binoculars AI-text detector judges the text human-written.

Two verifiers stacks, one package:
- v1 (verifiers >= 0.3.1, prime-rl main): the taskset `BinocularsTaskset`, the one Taskset in `__all__`.
- classic (verifiers 0.3.x, prime-rl v0.8.0 legacy sources): `load_environment(**args)` -> `vf.SingleTurnEnv`.
A trainer can call the reward directly: `binoculars_env.reward.score_completions(texts, RewardConfig(...))`.

Both names are imported on first use (verifiers' loaders read `__all__` and getattr), so `binoculars_env.data`
and `binoculars_env.reward` load without importing verifiers.
"""

from importlib import import_module
from typing import TYPE_CHECKING

__all__ = ["BinocularsTaskset", "load_environment"]
_HOMES = {"BinocularsTaskset": "binoculars_env.taskset", "load_environment": "binoculars_env.classic"}

if TYPE_CHECKING:
    from binoculars_env.classic import load_environment
    from binoculars_env.taskset import BinocularsTaskset


def __getattr__(name: str):
    if name not in _HOMES:
        raise AttributeError(f"module 'binoculars_env' has no attribute {name!r}")
    value = getattr(import_module(_HOMES[name]), name)
    globals()[name] = value
    return value
