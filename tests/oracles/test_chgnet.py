"""The local CHGNet oracle: bounded relaxations, cached elemental references, formation energies."""

from __future__ import annotations

import json
import math

import pytest

from motif_screen import keys
from motif_screen.errors import InputError
from motif_screen.oracles import chgnet as chgnet_oracle


@pytest.fixture(autouse=True)
def _one_thread():
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _compressed_si():
    from ase.build import bulk
    from pymatgen.io.ase import AseAtomsAdaptor

    s = AseAtomsAdaptor.get_structure(bulk("Si"))
    s.scale_lattice(s.volume * 0.92)
    return s


def test_relaxation_of_a_two_atom_cell_is_bounded_and_labelled(tmp_path):
    s = _compressed_si()
    result = chgnet_oracle.chgnet_relax(s, fmax=0.05, steps=40)
    assert result["source"] == keys.SOURCE_CHGNET and result["model_version"]
    assert math.isfinite(result["energy"]) and result["energy_per_atom"] == pytest.approx(result["energy"] / 2)
    assert -6.5 < result["energy_per_atom"] < -4.5  # silicon, eV/atom, on CHGNet's MP scale
    assert 1 <= result["steps"] <= 41
    assert result["final_structure"].volume > s.volume  # the compressed cell expands
    assert result["converged"] == (result["max_force"] < 0.05)


def test_a_relaxation_that_ends_with_atoms_fused_is_a_failure_not_a_value():
    """Two S atoms 0.6 Å apart (CDVAE-valid), one FIRE step: the cell CHGNet returns is no structure."""
    from pymatgen.core import Lattice, Structure

    from motif_screen.errors import ModelError

    cell = Structure(Lattice.cubic(4.0), ["Ba", "S", "S"], [[0, 0, 0], [0.5, 0.5, 0.425], [0.5, 0.5, 0.575]])
    with pytest.raises(ModelError, match=r"ended with atoms fused \(S-S 0\.\d\d Å, 0\.\d\d of their covalent radii"):
        chgnet_oracle.chgnet_relax(cell, steps=1)


def test_references_are_relaxed_once_then_read_from_the_cache(tmp_path, monkeypatch):
    cache = tmp_path / "refs.json"
    first = chgnet_oracle.elemental_references(["Si", "O"], cache, use_shipped=False)
    stored = json.loads(cache.read_text())
    assert set(stored[chgnet_oracle.model_version()]) == {"Si", "O"}
    assert stored[chgnet_oracle.model_version()]["O"]["state"] == "molecule in a box"

    def no_relaxing(*args, **kwargs):
        raise AssertionError("cached references must not be recomputed")

    monkeypatch.setattr(chgnet_oracle, "chgnet_relax", no_relaxing)
    assert chgnet_oracle.elemental_references(["O", "Si"], cache, use_shipped=False) == first


def test_shipped_reference_table_is_used_without_relaxing(tmp_path, monkeypatch):
    import json as _json

    shipped = _json.loads(chgnet_oracle.shipped_references_file().read_text())[chgnet_oracle.model_version()]

    def no_relaxing(*args, **kwargs):
        raise AssertionError("shipped references must not be recomputed")

    monkeypatch.setattr(chgnet_oracle, "chgnet_relax", no_relaxing)
    refs = chgnet_oracle.elemental_references(["Sr", "Ti", "O"], tmp_path / "cache.json")
    assert refs == {el: shipped[el]["energy_per_atom"] for el in ("Sr", "Ti", "O")}
    assert not (tmp_path / "cache.json").exists()  # nothing new to cache


def test_oracle_adds_formation_energy_from_chgnet_references(tmp_path):
    result = chgnet_oracle.chgnet_oracle(_compressed_si(), fmax=0.05, steps=40, cache_file=tmp_path / "r.json")
    # an element relative to its own reference: about zero
    assert result[keys.FORMATION_ENERGY] == pytest.approx(0.0, abs=0.05)


def test_formation_energy_formula_and_missing_references():
    refs = {"Sr": -1.5, "Ti": -7.8, "O": -4.9}
    assert chgnet_oracle.formation_energy_per_atom("SrTiO3", -42.0, refs) == pytest.approx(
        (-42.0 - (-1.5 - 7.8 - 3 * 4.9)) / 5)
    assert chgnet_oracle.formation_energy_per_atom("SrTiO3", -42.0, {"Sr": -1.5}) is None


def test_reference_structures_come_from_the_shared_table():
    from motif_screen.oracles.references import ground_state_structure

    assert chgnet_oracle.reference_structure("O") == ground_state_structure("O")
    assert chgnet_oracle.reference_structure("Cu") == ground_state_structure("Cu")
    # boron's reference state needs a multi-atom basis ASE cannot build: prototypes are used instead
    assert chgnet_oracle.reference_structure("B") is None
    with pytest.raises(InputError, match="not an element symbol"):
        chgnet_oracle.reference_structure("Xx")


def test_bad_input():
    from pymatgen.core import Molecule

    with pytest.raises(InputError, match="periodic pymatgen Structure"):
        chgnet_oracle.chgnet_relax(Molecule(["H", "H"], [[0, 0, 0], [0, 0, 0.74]]))
    with pytest.raises(InputError, match="steps >= 1"):
        chgnet_oracle.chgnet_relax(_compressed_si(), steps=0)
