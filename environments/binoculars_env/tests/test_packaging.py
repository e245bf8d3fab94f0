"""Each import package comes from exactly one installed distribution: `binoculars_env` from binoculars-env, the
project's detector `binoculars` from binoculars-detector (never PyPI's unrelated `binoculars`)."""

from importlib.metadata import PackageNotFoundError, distribution, requires
from pathlib import Path

import binoculars_env
import pytest

import binoculars

REPO = Path(__file__).resolve().parents[3]


def installed_files(name: str) -> set[str]:
    return {str(f) for f in distribution(name).files}


def test_the_env_ships_only_binoculars_env_and_depends_on_the_detector_by_name():
    from binoculars import Binoculars, ScoreDetails  # PyPI's unrelated `binoculars` has neither

    assert callable(Binoculars.score_details) and ScoreDetails
    assert not [f for f in installed_files("binoculars-env") if f.startswith("binoculars/")]
    assert any(r.startswith("binoculars-detector") for r in requires("binoculars-env"))
    with pytest.raises(PackageNotFoundError):
        distribution("binoculars")


@pytest.mark.parametrize(
    ("module", "dist", "source_dir"),
    [
        (binoculars, "binoculars-detector", REPO / "binoculars"),
        (binoculars_env, "binoculars-env", REPO / "environments/binoculars_env"),
    ],
)
def test_each_package_comes_from_its_own_distribution(module, dist, source_dir):
    package = Path(module.__file__).parent
    files = installed_files(dist)
    if any(f.endswith(".pth") for f in files):  # editable: the package resolves into the checkout
        assert package.resolve() == (source_dir / package.name).resolve()
    else:  # wheel: copied into site-packages, identical to the checkout
        assert "site-packages" in str(package)
        assert f"{package.name}/__init__.py" in files
        assert (package / "__init__.py").read_text() == (
            source_dir / package.name / "__init__.py"
        ).read_text()
