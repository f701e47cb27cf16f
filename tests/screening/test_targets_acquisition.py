import numpy as np
import pytest
from scipy import stats

from motif_screen.errors import InputError
from motif_screen.screening import TargetSpec, acquisition, is_hit, select_top

MAXIMIZE = TargetSpec("band_gap", "maximize", lower=1.5)
MINIMIZE = TargetSpec("formation_energy_per_atom", "minimize", upper=-1.0)
WINDOW = TargetSpec("band_gap", "range", lower=1.0, upper=2.0)


def test_target_validation_and_conversion():
    for bad in [
        dict(property="band_gap", goal="minimise", upper=1.0),
        dict(property="band_gap", goal="maximize"),
        dict(property="band_gap", goal="minimize", lower=1.0),
        dict(property="band_gap", goal="range", lower=2.0, upper=1.0),
        dict(property="", goal="maximize", lower=1.0),
        dict(property="band_gap", goal="maximize", lower=float("nan")),
    ]:
        with pytest.raises(InputError):
            TargetSpec(**bad)
    assert TargetSpec.from_document({"property": "band_gap", "goal": "range", "lower": 1, "upper": 2}) == WINDOW

    class Doc:
        property, goal, lower, upper = "band_gap", "maximize", 1.5, None

    assert TargetSpec.from_document(Doc()) == MAXIMIZE


def test_is_hit():
    assert is_hit(1.5, MAXIMIZE) and not is_hit(1.49, MAXIMIZE)
    assert is_hit(-1.2, MINIMIZE) and not is_hit(-0.5, MINIMIZE)
    assert is_hit([0.5, 1.0, 1.5, 2.0, 2.5, np.nan], WINDOW).tolist() == [False, True, True, True, False, False]


def _monte_carlo(mean, std, improvement, n=400_000, seed=0):
    y = np.random.default_rng(seed).normal(mean, std, size=n)
    return improvement(y).mean()


@pytest.mark.parametrize("mean, std", [(0.5, 0.3), (1.4, 0.5), (2.7, 0.1), (1.6, 1e-3)])
def test_ei_matches_its_definition(mean, std):
    ei = acquisition([mean], [std], MAXIMIZE, kind="ei")[0]
    assert ei == pytest.approx(_monte_carlo(mean, std, lambda y: np.maximum(y - 1.5, 0)), abs=3e-3)
    ei_min = acquisition([-mean], [std], MINIMIZE, kind="ei")[0]
    assert ei_min == pytest.approx(_monte_carlo(-mean, std, lambda y: np.maximum(-1.0 - y, 0)), abs=3e-3)
    ei_range = acquisition([mean], [std], WINDOW, kind="ei")[0]
    assert ei_range == pytest.approx(_monte_carlo(mean, std, lambda y: np.maximum(0.5 - np.abs(y - 1.5), 0)), abs=3e-3)


def test_prob_hit_and_deterministic_limits():
    p = acquisition([1.5, 1.0], [0.5, 0.5], WINDOW, kind="prob_hit")
    assert p[0] == pytest.approx(stats.norm.cdf(1) - stats.norm.cdf(-1))
    assert p[1] == pytest.approx(stats.norm.cdf(2) - stats.norm.cdf(0))
    exact = acquisition([1.2, 2.5], [0.0, 0.0], WINDOW, kind="prob_hit")
    assert exact.tolist() == [1.0, 0.0]
    assert acquisition([2.0, 1.0], [0.0, 0.0], MAXIMIZE, kind="ei").tolist() == [0.5, 0.0]


def test_ucb_prefers_good_means_and_uncertainty():
    mean, std = np.array([1.0, 2.0, 1.0]), np.array([0.1, 0.1, 1.0])
    up = acquisition(mean, std, MAXIMIZE, kappa=2.0)
    assert up.tolist() == pytest.approx([1.2, 2.2, 3.0])
    down = acquisition(-mean, std, MINIMIZE, kappa=0.0)
    assert down.tolist() == pytest.approx([1.0, 2.0, 1.0])
    window = acquisition([1.5, 3.0, 3.0], [0.0, 0.0, 1.0], WINDOW, kappa=1.0)
    assert window.tolist() == pytest.approx([0.0, -1.0, 0.0])


def test_acquisition_rejects_bad_input_and_propagates_nan():
    with pytest.raises(InputError):
        acquisition([1.0], [-0.1], MAXIMIZE)
    with pytest.raises(InputError):
        acquisition([1.0, 2.0], [0.1], MAXIMIZE)
    with pytest.raises(InputError):
        acquisition([1.0], [0.1], MAXIMIZE, kind="thompson")
    with pytest.raises(InputError):
        acquisition([1.0], [0.1], {"property": "band_gap"})
    for kind in ("ucb", "ei", "prob_hit"):
        score = acquisition([np.nan, 1.0], [0.1, 0.1], WINDOW, kind=kind)
        assert np.isnan(score[0]) and np.isfinite(score[1])


def test_select_top():
    scores = np.array([0.1, 0.9, np.nan, 0.5, 0.9, 0.7])
    assert select_top(scores, 3).tolist() == [1, 4, 5]
    assert select_top(scores, 3, mask=[True, False, True, True, True, True]).tolist() == [4, 5, 3]
    assert select_top(scores, 100).tolist() == [1, 4, 5, 3, 0]  # NaN never selected
    assert select_top(np.array([]), 2).tolist() == []
    for budget in (0, -1, 1.5, True):
        with pytest.raises(InputError):
            select_top(scores, budget)
    with pytest.raises(InputError):
        select_top(scores, 2, mask=[True])
