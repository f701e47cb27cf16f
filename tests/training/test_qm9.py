"""QM9 loading from the qm9pack wheel: parsing, units, filters, determinism, errors."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from motif_screen.errors import ConfigError, InputError
from motif_screen.training import qm9


def test_methane_is_molecule_one_with_its_gap_in_ev():
    molecules, targets = qm9.load_qm9(atom_counts=[5], targets=("gap", "homo", "lumo"))
    by_index = {m.properties["qm9_index"]: (m, i) for i, m in enumerate(molecules)}
    methane, row = by_index[1]
    assert methane.composition.formula == "H4 C1"
    # file: HOMO -0.3877 Ha, LUMO 0.1171 Ha, gap 0.5048 Ha
    assert targets["gap"][row] == pytest.approx(0.5048 * qm9.HARTREE_TO_EV, rel=1e-9)
    assert targets["lumo"][row] - targets["homo"][row] == pytest.approx(targets["gap"][row], abs=1e-3)
    # C–H bonds of methane are ~1.09 Å: coordinates are in Å, atoms in the right order
    c = [s.coords for s in methane if s.specie.symbol == "C"][0]
    hydrogens = np.array([s.coords for s in methane if s.specie.symbol == "H"])
    assert np.linalg.norm(hydrogens - c, axis=1) == pytest.approx([1.09] * 4, abs=0.01)


def test_filters_sampling_and_determinism():
    a, ta = qm9.load_qm9(n=20, min_atoms=5, max_atoms=18, seed=3)
    b, tb = qm9.load_qm9(n=20, min_atoms=5, max_atoms=18, seed=3)
    c, _ = qm9.load_qm9(n=20, min_atoms=5, max_atoms=18, seed=4)
    assert len(a) == 20 and all(5 <= len(m) <= 18 for m in a)
    assert [m.properties["qm9_index"] for m in a] == [m.properties["qm9_index"] for m in b]
    assert [m.properties["qm9_index"] for m in a] != [m.properties["qm9_index"] for m in c]
    np.testing.assert_array_equal(ta["gap"], tb["gap"])
    assert {s.specie.symbol for m in a for s in m} <= set(qm9.ELEMENT_SYMBOLS)
    assert ((ta["gap"] > 0.5) & (ta["gap"] < 20)).all()  # HOMO–LUMO gaps of small organics, eV


def test_atom_counts_exclude_and_all_when_fewer_exist():
    molecules, _ = qm9.load_qm9(n=10_000, atom_counts=[29])
    assert len(molecules) == qm9.count_by_atoms([29]) < 10_000  # only 35 exist: all returned
    assert all(len(m) == 29 for m in molecules)
    first = molecules[0].properties["qm9_index"]
    rest, _ = qm9.load_qm9(atom_counts=[29], exclude=[first])
    assert len(rest) == len(molecules) - 1
    assert first not in {m.properties["qm9_index"] for m in rest}


def test_all_twelve_targets_and_unknown_target():
    _, targets = qm9.load_qm9(n=3, atom_counts=[9], targets=tuple(qm9.QM9_TARGETS))
    assert set(targets) == set(qm9.QM9_TARGETS) and all(v.shape == (3,) for v in targets.values())
    assert (targets["u0"] < -1000).all()  # total energies of C/N/O molecules, eV
    with pytest.raises(InputError, match="Unknown QM9 target"):
        qm9.load_qm9(n=1, targets=("band_gap_typo",))


def test_missing_qm9pack_says_install_the_extra(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "qm9pack" else real(name, *a))
    with pytest.raises(ConfigError, match="install the qm9 extra"):
        qm9.load_qm9(n=1)
