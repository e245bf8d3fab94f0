"""verifiers 0.4.0 has no classic stack: load_environment says so and points to the taskset."""

import pytest
import verifiers as vf
from binoculars_env import load_environment

pytestmark = pytest.mark.skipif(
    hasattr(vf, "SingleTurnEnv"),
    reason="this verifiers has the classic stack; run_matrix.sh runs this on 0.4.0",
)


def test_load_environment_points_to_the_taskset_without_the_classic_stack(env_args):
    with pytest.raises(ImportError, match="no classic stack.*BinocularsTaskset"):
        load_environment(**env_args)
