"""The installed distribution carries both `binoculars_env` and the project's `binoculars` detector."""

from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path

import binoculars_env
import pytest

import binoculars

REPO_LIBRARY = Path(__file__).resolve().parents[3] / "binoculars"


def test_binoculars_is_the_projects_detector_from_the_env_distribution():
    from binoculars import Binoculars, ScoreDetails  # PyPI's unrelated `binoculars` has neither
    from binoculars.tiny import build_tiny_pair

    assert callable(Binoculars.score_details) and ScoreDetails and build_tiny_pair
    files = {str(f) for f in distribution("binoculars-env").files}
    if any(f.endswith(".pth") for f in files):  # editable: both packages resolve into the checkout
        assert Path(binoculars.__file__).resolve() == (REPO_LIBRARY / "__init__.py").resolve()
        assert Path(binoculars_env.__file__).resolve().parents[2] == REPO_LIBRARY.parent / "environments"
    else:  # wheel: both packages are copied into site-packages
        assert {"binoculars/detector.py", "binoculars/metrics.py", "binoculars_env/reward.py"} <= files
        assert {"binoculars_env/sample_stories.jsonl"} <= files
        assert "site-packages" in binoculars.__file__ and "site-packages" in binoculars_env.__file__
        assert (Path(binoculars.__file__).parent / "detector.py").read_text() == (
            REPO_LIBRARY / "detector.py"
        ).read_text()


def test_no_separate_binoculars_distribution_is_installed():
    with pytest.raises(PackageNotFoundError):
        distribution("binoculars")
