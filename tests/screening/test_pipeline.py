"""The pre-screen: every candidate gets one decision with a reason, and the funnel adds up."""

from collections import Counter

import numpy as np
import pytest

from motif_screen import keys
from motif_screen.errors import InputError
from motif_screen.screening import FUNNEL, ScreenSettings, TargetSpec, screen

TARGET = TargetSpec("band_gap", "maximize", lower=1.0)


def _perovskite(a, b, x="O", lattice=3.95):
    from pymatgen.core import Lattice, Structure

    return Structure(
        Lattice.cubic(lattice), [a, b, x, x, x], [[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]]
    )


@pytest.fixture(scope="module")
def batch():
    """One candidate for every decision the screen can make."""
    from pymatgen.core import Lattice, Structure

    sto = _perovskite("Sr", "Ti", lattice=3.905)
    return [
        sto,  # 0 selected (Ti octahedral by O)
        sto.copy(),  # 1 duplicate of 0
        _perovskite("Ca", "Zr"),  # 2 known (in the references)
        Structure(Lattice.cubic(3.0), ["Na", "Cl"], [[0, 0, 0], [0.05, 0, 0]]),  # 3 invalid: distance
        _perovskite("Sr", "Ti", lattice=40.0),  # 4 invalid: volume
        _perovskite("Na", "Cl", x="Cl"),  # 5 invalid: charge
        _perovskite("K", "Nb"),  # 6 motif mismatch (no Ti)
        _perovskite("Ba", "Ti"),  # 7 scored: selected or below cutoff
        _perovskite("Ca", "Ti", lattice=3.84),  # 8 scored
        _perovskite("Pb", "Ti"),  # 9 scored
    ]


def _check_accounting(result, n):
    decisions = Counter(d.decision for d in result.decisions)
    assert sum(decisions.values()) == n == result.counts["generated"]
    invalid = sum(v for k, v in decisions.items() if k.startswith(keys.DECISION_INVALID_PREFIX))
    c = result.counts
    assert c["valid"] == n - invalid
    assert c["unique"] == c["valid"] - decisions[keys.DECISION_DUPLICATE]
    assert c["novel"] == c["unique"] - decisions[keys.DECISION_KNOWN]
    assert c["screened"] == c["novel"] - decisions[keys.DECISION_MOTIF_MISMATCH]
    assert c["selected"] == decisions[keys.DECISION_SELECTED] == len(result.selected)
    assert c["screened"] == c["selected"] + decisions[keys.DECISION_BELOW_CUTOFF]
    assert list(c) == list(FUNNEL)
    assert all(d.detail for d in result.decisions)


def test_every_decision_with_its_reason(batch):
    mean = np.array([0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 2.0, 0.5, 1.5])
    std = np.full(len(batch), 0.1)
    result = screen(
        batch, {"band_gap": (mean, std)}, TARGET, budget=2, references=[_perovskite("Ca", "Zr", lattice=4.1)],
        motif_filter="Ti:octahedral:O",
    )
    decision = [d.decision for d in result.decisions]
    assert decision == [
        "below_cutoff", "duplicate_in_batch", "known", "invalid:distance", "invalid:volume", "invalid:charge",
        "motif_mismatch", "selected", "below_cutoff", "selected",
    ]
    assert result.selected == [7, 9]  # best score first
    assert result.decisions[1].duplicate_of == 0
    assert result.decisions[2].reference == 0
    assert "Ti:octahedral:O" in result.decisions[6].detail
    assert "outside the budget" in result.decisions[0].detail
    assert result.decisions[7].selected_by == keys.SELECTED_BY_ACQUISITION
    assert result.decisions[0].validity["charge"]["ok"] is True
    assert "Ti:octahedral:O" in result.decisions[0].motif_labels
    assert result.decisions[3].motifs is None  # invalid geometry: no motifs computed
    assert result.counts == {"generated": 10, "valid": 7, "unique": 6, "novel": 5, "screened": 4, "selected": 2}
    _check_accounting(result, len(batch))


def test_predictor_callable_only_sees_survivors(batch):
    seen = []

    def predict(structures):
        seen.extend(s.composition.reduced_formula for s in structures)
        return {"band_gap": (np.linspace(0, 2, len(structures)), None)}

    result = screen(batch, predict, TARGET, budget=10, settings=ScreenSettings(score_cutoff=1.0, kind="prob_hit"))
    assert sorted(seen) == sorted(batch[i].composition.reduced_formula for i in (0, 2, 6, 7, 8, 9))
    assert result.counts["screened"] == 6
    cut = [d for d in result.decisions if d.decision == keys.DECISION_BELOW_CUTOFF]
    assert cut and all("< cutoff" in d.detail for d in cut)
    _check_accounting(result, len(batch))


def test_nan_predictions_are_recorded_not_selected(batch):
    mean = np.full(len(batch), np.nan)
    mean[9] = 3.0
    result = screen(batch, (mean, np.full(len(batch), 0.2)), TARGET, budget=5,
                    settings=ScreenSettings(compute_motifs=False))
    assert result.selected == [9]
    no_prediction = [d for d in result.decisions if d.detail == "no finite prediction for the target property"]
    assert len(no_prediction) == result.counts["screened"] - 1
    assert all(d.motifs is None for d in result.decisions)
    _check_accounting(result, len(batch))


def test_random_controls_come_from_the_scored_pool(batch):
    mean = np.linspace(0, 3, len(batch))
    result = screen(batch, {"band_gap": (mean, None)}, TARGET, budget=3, settings=ScreenSettings(controls=1, seed=3, kind="ei"))
    by = Counter(d.selected_by for d in result.decisions if d.decision == keys.DECISION_SELECTED)
    assert by == {keys.SELECTED_BY_ACQUISITION: 2, keys.SELECTED_AS_CONTROL: 1}
    again = screen(batch, {"band_gap": (mean, None)}, TARGET, budget=3, settings=ScreenSettings(controls=1, seed=3, kind="ei"))
    assert again.selected == result.selected  # seeded
    _check_accounting(result, len(batch))


def test_bad_input_is_a_clear_error(batch):
    good = {"band_gap": (np.zeros(len(batch)), np.zeros(len(batch)))}
    with pytest.raises(InputError, match="budget"):
        screen(batch, good, TARGET, budget=0)
    with pytest.raises(InputError, match="controls"):
        screen(batch, good, TARGET, budget=2, settings=ScreenSettings(controls=2))
    with pytest.raises(InputError, match="band_gap"):
        screen(batch, {"formation_energy_per_atom": good["band_gap"]}, TARGET, budget=2)
    with pytest.raises(InputError, match="for 10 candidates"):
        screen(batch, {"band_gap": (np.zeros(3), None)}, TARGET, budget=2)
    with pytest.raises(InputError, match="Unknown coordination environment"):
        screen(batch, good, TARGET, budget=2, motif_filter="Ti:octahedrall")


def test_empty_batch():
    result = screen([], {"band_gap": (np.zeros(0), np.zeros(0))}, TARGET, budget=3)
    assert result.counts == dict.fromkeys(FUNNEL, 0) and result.selected == []


def test_molecules_go_through_the_same_screen():
    from ase.build import molecule
    from pymatgen.core import Molecule
    from pymatgen.io.ase import AseAtomsAdaptor

    water, methane, ammonia = (AseAtomsAdaptor.get_molecule(molecule(name)) for name in ("H2O", "CH4", "NH3"))
    crushed = Molecule(["O", "H", "H"], [[0, 0, 0], [0.1, 0, 0], [0, 0.9, 0]])
    batch = [water, methane, water.copy(), crushed, ammonia]
    target = TargetSpec("band_gap", "minimize", upper=5.0)
    result = screen(batch, (np.array([4.0, 9.0, 4.0, 1.0, 3.0]), None), target, budget=1, references=[methane],
                    motif_filter="C:tetrahedral:H")
    assert [d.decision for d in result.decisions] == [
        "motif_mismatch", "known", "duplicate_in_batch", "invalid:distance", "motif_mismatch",
    ]
    assert result.counts["selected"] == 0
    _check_accounting(result, len(batch))
    open_screen = screen(batch, (np.array([4.0, 9.0, 4.0, 1.0, 3.0]), None), target, budget=1)
    assert open_screen.selected == [4]  # ammonia: lowest predicted value, methane scored too
    assert "N:trigonal_non_coplanar:H" in open_screen.decisions[4].motif_labels


def test_candidates_with_overlapping_atoms_never_reach_the_oracle():
    """Ti-S 0.9 Å passes the 0.5 Å distance test; by covalent radii (0.34 of 2.65 Å) the prescreen rejects it."""
    from pymatgen.core import Lattice, Structure

    overlapping = Structure(Lattice.cubic(5.0), ["Ba", "Ti", "S", "S", "S"],
                            [[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0.5, 0.32], [0.5, 0.0, 0.5], [0.0, 0.5, 0.5]])
    batch = [overlapping, _perovskite("Sr", "Ti")]
    result = screen(batch, {"band_gap": (np.zeros(2), np.ones(2))}, TARGET, budget=2)
    assert result.decisions[0].decision == "invalid:bonds" and "of their covalent radii" in result.decisions[0].detail
    assert result.selected == [1]
    lenient = screen(batch, {"band_gap": (np.zeros(2), np.ones(2))}, TARGET, budget=2,
                     settings=ScreenSettings(min_bond_fraction=None, min_distance=0.4))
    assert lenient.decisions[0].decision != "invalid:bonds"
