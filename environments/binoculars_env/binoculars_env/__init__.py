"""binoculars-env: continue TinyStories so that the Binoculars AI-text detector judges the text human-written.

Two verifiers stacks, one package:
- v1 (verifiers >= 0.3.1, prime-rl main): the taskset `BinocularsTaskset`, the one Taskset in `__all__`.
- classic (verifiers 0.3.x, prime-rl v0.8.0 legacy sources): `load_environment(**args)` -> `vf.SingleTurnEnv`.
A trainer can call the reward directly: `binoculars_env.reward.score_completions(texts, RewardConfig(...))`.
"""

from binoculars_env.classic import load_environment
from binoculars_env.taskset import BinocularsTaskset

__all__ = ["BinocularsTaskset", "load_environment"]
