"""The optional ensemble reward: each rewarded criterion's calibrated margin, combined by min or mean, clipped to
[-2, 2], checked by hand from the reward results' raw values; NaN in any rewarded criterion is the non_finite
guard; misconfiguration fails before the first rollout."""

import math
import statistics

import pytest
from binoculars_env.classic import load_environment
from binoculars_env.reward import RewardConfig, score_completions
from pydantic import ValidationError

from binoculars import ScoreDetails, save_thresholds
from binoculars.panel import PANEL_CRITERIA, PanelScores

STORIES = [
    "The little fox ran to the river and found a friend. They played with a red ball all day.",
    "Mia smiled at Tom, and they walked home together, holding hands under the warm sun.",
    'Sam said, "Look, a kite!" The kite flew high over the park, and everyone laughed.',
    "At the end of the day, the bear was tired but happy. He went to sleep in his warm bed. The end.",
]
SCALES = {"binoculars": 0.05, "fast_detectgpt": 2.0, "log_rank": 0.5, "log_likelihood": 0.25, "entropy": 0.4}


@pytest.fixture(scope="module")
def plain_results(tiny_reward_config):
    return score_completions(STORIES, tiny_reward_config)


@pytest.fixture(scope="module")
def calibration(plain_results, tmp_path_factory) -> tuple[str, dict[str, float]]:
    """A calibration file whose thresholds sit at the stories' mean value under each criterion (so their margins
    have both signs), with hand-picked scales."""
    values = {"binoculars": [r.score for r in plain_results]}
    values |= {name: [getattr(r.panel, name) for r in plain_results] for name in PANEL_CRITERIA}
    thresholds = {name: statistics.fmean(v) for name, v in values.items()}
    criteria = {
        name: {"thresholds": {"accuracy": thresholds[name]}, "scale": SCALES[name], "auroc": 0.5}
        for name in thresholds
    }
    path = tmp_path_factory.mktemp("calibration") / "calibration.json"
    save_thresholds(
        path, {"accuracy": thresholds["binoculars"]}, scale=SCALES["binoculars"], criteria=criteria
    )
    return str(path), thresholds


def ensemble_config(base: RewardConfig, path: str, criteria: list[str], how: str, **update) -> RewardConfig:
    update = {
        "threshold": None,
        "calibration_file": path,
        "reward_criteria": criteria,
        "ensemble": how,
        **update,
    }
    return base.model_copy(update=update)


def by_hand(result, thresholds: dict[str, float], criteria: list[str], how: str) -> float:
    """The documented ensemble reward from a result's raw values: human side positive under each direction."""
    values = {"binoculars": result.score, **result.panel.as_dict()}
    margins = {
        "binoculars": values["binoculars"] - thresholds["binoculars"],  # low = AI
        "fast_detectgpt": thresholds["fast_detectgpt"] - values["fast_detectgpt"],  # high = AI
        "log_rank": values["log_rank"] - thresholds["log_rank"],  # low = AI
        "log_likelihood": thresholds["log_likelihood"] - values["log_likelihood"],  # high = AI
        "entropy": values["entropy"] - thresholds["entropy"],  # low = AI
    }
    scaled = [margins[name] / SCALES[name] for name in criteria]
    combined = min(scaled) if how == "min" else sum(scaled) / len(scaled)
    return min(2.0, max(-2.0, combined))


@pytest.mark.parametrize("how", ["min", "mean"])
@pytest.mark.parametrize(
    "criteria", [["binoculars", "fast_detectgpt"], ["log_rank", "entropy", "log_likelihood"], PANEL_CRITERIA]
)
def test_the_ensemble_reward_combines_each_criterions_calibrated_margin(
    tiny_reward_config, calibration, how, criteria
):
    path, thresholds = calibration
    results = score_completions(STORIES, ensemble_config(tiny_reward_config, path, list(criteria), how))
    for result in results:
        assert result.guard is None
        assert result.reward == pytest.approx(by_hand(result, thresholds, criteria, how), abs=1e-6)
    assert len({round(r.reward, 6) for r in results}) > 1


def test_binoculars_alone_through_the_ensemble_path_is_the_plain_reward(
    tiny_reward_config, calibration, plain_results
):
    path, thresholds = calibration
    config = ensemble_config(tiny_reward_config, path, ["binoculars"], "min")
    for result, plain in zip(score_completions(STORIES, config), plain_results, strict=True):
        margin = (plain.score - thresholds["binoculars"]) / SCALES["binoculars"]
        assert result.reward == pytest.approx(min(2.0, max(-2.0, margin)), abs=1e-6)


def test_the_reward_stays_within_bounds_when_margins_are_huge(tiny_reward_config, calibration, tmp_path):
    path, thresholds = calibration
    for shift, bound in ((-1e6, 2.0), (1e6, -2.0)):  # every text far on the human side, then the AI side
        criteria = {
            name: {"thresholds": {"accuracy": thresholds[name] + shift * (1 if name in ("binoculars", "log_rank",
                   "entropy") else -1)}, "scale": SCALES[name]}
            for name in thresholds
        }  # fmt: skip
        shifted = tmp_path / f"shifted{bound}.json"
        save_thresholds(shifted, {"accuracy": 0.0}, scale=1.0, criteria=criteria)
        config = ensemble_config(tiny_reward_config, str(shifted), ["fast_detectgpt", "entropy"], "mean")
        assert [r.reward for r in score_completions(STORIES, config)] == [bound] * len(STORIES)


@pytest.mark.parametrize("criterion", PANEL_CRITERIA)
def test_nan_in_any_rewarded_criterion_is_the_non_finite_guard(
    tiny_reward_config, calibration, monkeypatch, criterion
):
    path, _ = calibration
    values = dict.fromkeys(PANEL_CRITERIA, 1.0) | {criterion: math.nan}

    class PartlyNaNScorer:
        def score_details(self, texts):
            return [ScoreDetails(0.9, 2.0, 2.2, 50, len(t), None, PanelScores(**values)) for t in texts]

    monkeypatch.setattr("binoculars_env.reward.get_scorer", lambda spec: PartlyNaNScorer())
    rewarded = ensemble_config(tiny_reward_config, path, ["binoculars", criterion], "mean")
    [result] = score_completions([STORIES[0]], rewarded)
    assert (result.reward, result.guard) == (-2.0, "non_finite")
    assert all(math.isfinite(v) for v in result.metrics().values())
    others = [name for name in PANEL_CRITERIA if name != criterion]
    [unrewarded] = score_completions([STORIES[0]], rewarded.model_copy(update={"reward_criteria": others}))
    assert unrewarded.guard is None and -2.0 <= unrewarded.reward <= 2.0


def test_the_panel_is_logged_at_weight_zero(tiny_reward_config, plain_results):
    for result in plain_results:
        metrics = result.metrics()
        for name in PANEL_CRITERIA:
            assert metrics[name] == getattr(result.panel, name) and math.isfinite(metrics[name])
    [empty] = score_completions([""], tiny_reward_config)
    assert empty.panel is None and all(empty.metrics()[name] == 0.0 for name in PANEL_CRITERIA)


@pytest.mark.parametrize(
    ("criteria", "says"),
    [([], "at least one"), (["gltr"], "unknown reward_criteria"), (["entropy", "entropy"], "twice")],
)
def test_bad_reward_criteria_are_rejected_naming_the_field(criteria, says):
    with pytest.raises(ValidationError, match=f"reward_criteria(.|\n)*{says}"):
        RewardConfig(reward_criteria=criteria)
    with pytest.raises(ValidationError, match="ensemble"):
        RewardConfig(ensemble="max")


def test_an_ensemble_without_per_criterion_calibration_fails_before_any_rollout(env_args, tmp_path):
    with pytest.raises(ValueError, match="needs calibration_file"):
        load_environment(**env_args, reward_criteria=["binoculars", "entropy"])
    old = tmp_path / "old.json"
    save_thresholds(old, {"accuracy": 0.9}, scale=0.1)
    with pytest.raises(ValueError, match="no per-criterion calibration"):
        load_environment(
            **env_args | {"threshold": None}, calibration_file=str(old), reward_criteria=["entropy"]
        )
    partial = tmp_path / "partial.json"
    save_thresholds(
        partial, {"accuracy": 0.9}, criteria={"entropy": {"thresholds": {"accuracy": 2.0}, "scale": 1}}
    )
    with pytest.raises(ValueError, match=r"no 'accuracy' threshold and scale for \['log_rank'\]"):
        load_environment(**env_args, calibration_file=str(partial), reward_criteria=["entropy", "log_rank"])
    with pytest.raises(ValueError, match="Binoculars needs a scale"):
        load_environment(**env_args, calibration_file=str(partial), reward_criteria=["binoculars", "entropy"])
