"""The repository's three distributions as users install them: built wheels that share no import package, and the
env installed from its wheel into a fresh venv (with its declared dependencies, the detector from its own wheel)
giving the same reward as this checkout. Needs `uv` and the package index (or uv's cache); torch is pinned to the
version installed here (set UV_FIND_LINKS to a directory holding its wheel to avoid a download)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import torch
from binoculars_env.reward import score_completions

REPO = Path(__file__).resolve().parents[1]
DISTRIBUTIONS = {  # source directory -> the one import package its wheel may ship
    ".": "binoculars_rl",
    "binoculars": "binoculars",
    "environments/binoculars_env": "binoculars_env",
}
TEXT = (
    "The little fox ran to the river and found a friend. They played with a red ball until the sun went down."
)
UV = shutil.which("uv") or "uv"  # `uv run pytest` puts it on PATH


def run(*args: str, cwd: Path | None = None) -> str:
    result = subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, f"{' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout


@pytest.fixture(scope="module")
def wheels(tmp_path_factory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("dist")
    built = {}
    for source, package in DISTRIBUTIONS.items():
        before = set(out.glob("*.whl"))
        run(UV, "build", "--quiet", "--wheel", "--out-dir", str(out), str(REPO / source))
        (wheel,) = set(out.glob("*.whl")) - before
        built[package] = wheel
    return built


def top_level_packages(wheel: Path) -> set[str]:
    names = zipfile.ZipFile(wheel).namelist()
    return {n.split("/", 1)[0] for n in names if not n.split("/", 1)[0].endswith((".dist-info", ".data"))}


def test_every_wheel_ships_exactly_its_own_import_package(wheels):
    for package, wheel in wheels.items():
        assert top_level_packages(wheel) == {package}, wheel.name


def test_the_env_wheel_installs_alone_and_rewards_like_the_checkout(wheels, tiny_reward_config, tmp_path):
    venv = tmp_path / "venv"
    run(UV, "venv", "--quiet", "--python", sys.executable, str(venv))
    python = venv / "bin" / "python"
    torch_pin = f"torch=={torch.__version__.split('+')[0]}"
    env_wheel, detector_wheel = wheels["binoculars_env"], wheels["binoculars"]
    # the detector is not on PyPI: its wheel sits beside the env's, found through --find-links
    run(UV, "pip", "install", "--quiet", "--python", str(python), "--find-links", str(detector_wheel.parent),
        torch_pin, str(env_wheel))  # fmt: skip
    config = tiny_reward_config
    script = (
        "import json, sys, binoculars, binoculars_env\n"
        "from binoculars_env.reward import RewardConfig, score_completions\n"
        "config = RewardConfig.model_validate_json(sys.argv[1])\n"
        "(result,) = score_completions([sys.argv[2]], config)\n"
        "print(json.dumps({'reward': result.reward, 'files': [binoculars.__file__, binoculars_env.__file__]}))\n"
    )
    out = json.loads(run(str(python), "-c", script, config.model_dump_json(), TEXT, cwd=tmp_path))
    assert all(str(venv) in path for path in out["files"]), out["files"]  # not this checkout
    (expected,) = score_completions([TEXT], config)
    assert out["reward"] == pytest.approx(expected.reward, rel=1e-6)
