import re

import numpy as np
import pytest

from motif_screen.errors import InputError
from motif_screen.structures.validity import check_validity, composition_is_valid, min_interatomic_distance, symmetrize


def test_reference_crystals_are_valid(crystals):
    for name, s in crystals.items():
        report = check_validity(s)
        assert report.ok, (name, report.to_dict())
        assert set(report.checks) == {"finite", "distance", "volume", "charge"}
        assert report.reason == ""


def test_periodic_min_distance_sees_images():
    from pymatgen.core import Lattice, Structure

    # one atom in a 0.4 Å cell: no two sites, but the atom is 0.4 Å from its own image
    s = Structure(Lattice.cubic(0.4), ["Cu"], [[0, 0, 0]])
    assert np.isclose(min_interatomic_distance(s), 0.4)
    report = check_validity(s)
    assert not report.ok and report.reason == "invalid:distance"
    # two atoms close only across the cell boundary
    t = Structure(Lattice.cubic(5.0), ["Na", "Cl"], [[0.01, 0, 0], [0.95, 0, 0]])
    assert np.isclose(min_interatomic_distance(t), 0.3)
    assert check_validity(t).failed[0] == "distance"


def test_volume_and_finite_checks():
    from pymatgen.core import Lattice, Structure

    big = Structure(Lattice.cubic(30.0), ["Na", "Cl"], [[0, 0, 0], [0.1, 0, 0]])
    assert check_validity(big).reason == "invalid:volume"
    nan = Structure(Lattice.cubic(5.0), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    nan.translate_sites([0], [np.nan, 0, 0], frac_coords=False, to_unit_cell=False)
    report = check_validity(nan)
    assert report.reason == "invalid:finite"
    assert "NaN" in report.checks["finite"].detail


def test_charge_balance_smact_like_cdvae():
    assert composition_is_valid("SrTiO3")[0]
    assert composition_is_valid("NaCl")[0]
    assert composition_is_valid("CuZn")[0]  # all metals: alloys count as valid, as in CDVAE
    assert composition_is_valid("Si")[0]
    ok, detail = composition_is_valid("NaCl2")
    assert not ok and "Pauling" in detail
    assert not composition_is_valid("SrO3")[0]
    assert composition_is_valid("Li3PO4")[0]
    # pymatgen's guesses agree on clear cases
    assert composition_is_valid("SrTiO3", method="pymatgen")[0]
    assert not composition_is_valid("NaCl2", method="pymatgen")[0]
    with pytest.raises(InputError):
        composition_is_valid("SrTiO3", method="magic")


def test_charge_check_can_be_switched_off():
    from pymatgen.core import Lattice, Structure

    s = Structure(Lattice.cubic(4.0), ["Na", "Cl", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5], [0, 0.5, 0.5]])
    assert check_validity(s).reason == "invalid:charge"
    relaxed = check_validity(s, check_charge=False)
    assert relaxed.ok and "charge" not in relaxed.checks


def test_molecules_get_distance_check_only():
    from pymatgen.core import Molecule

    water = Molecule(["O", "H", "H"], [[0, 0, 0], [0.96, 0, 0], [-0.24, 0.93, 0]])
    report = check_validity(water)
    assert report.ok and set(report.checks) == {"finite", "distance"}
    crushed = Molecule(["O", "H"], [[0, 0, 0], [0.2, 0, 0]])
    assert check_validity(crushed).reason == "invalid:distance"


def test_symmetrize_recovers_cubic_perovskite(crystals):
    from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

    noisy = crystals["SrTiO3"].copy()
    rng = np.random.default_rng(0)
    for i in range(len(noisy)):
        noisy.translate_sites([i], rng.normal(scale=0.01, size=3), frac_coords=False)
    assert SpacegroupAnalyzer(noisy, symprec=1e-3).get_space_group_number() != 221
    clean = symmetrize(noisy, symprec=0.1)
    assert SpacegroupAnalyzer(clean, symprec=1e-3).get_space_group_number() == 221
    assert len(clean) == 5
    with pytest.raises(InputError):
        from pymatgen.core import Molecule

        symmetrize(Molecule(["H", "H"], [[0, 0, 0], [0.7, 0, 0]]))


def test_counts_pass_smact_agrees_with_composition_is_valid():
    from pymatgen.core import Composition

    from motif_screen.structures.validity import counts_pass_smact

    for counts in ({"Sr": 1, "Ti": 1, "O": 3}, {"Sr": 2, "Ti": 2, "O": 6}, {"Sr": 1, "O": 4}, {"Fe": 3, "Ni": 1},
                   {"K": 1, "Nb": 1, "O": 2, "N": 1}, {"Cs": 1, "O": 1}, {"O": 2}):
        assert counts_pass_smact(counts) == composition_is_valid(Composition(counts))[0], counts
    assert not counts_pass_smact({}) and not counts_pass_smact({"O": 0})


def _with_lattice(matrix, frac=((0, 0, 0), (0.5, 0.5, 0.5))):
    from pymatgen.core import Lattice, Structure

    return Structure(Lattice(matrix), ["Na", "Cl"], list(frac))


@pytest.mark.parametrize(
    "structure, detail",
    [
        (_with_lattice([[1e300, 0, 0], [0, 5, 0], [0, 0, 5]]), "lattice vector a is 1e+300 Å long, more than 1,000 Å"),
        (_with_lattice([[5, 0, 0], [0, 5, 0], [0, 0, 5]], [(1e20, 0, 0), (0.5, 0.5, 0.5)]), "fractional coordinate 1e+20"),
        (_with_lattice([[5, 0, 0], [0, 5, 0], [0, 0, 5]], [(0, -2e3, 0), (0.5, 0.5, 0.5)]), "fractional coordinate -2e+03"),
    ],
)
def test_garbage_geometry_is_invalid_with_the_reason(structure, detail):
    report = check_validity(structure)
    assert not report.ok and report.reason == "invalid:finite"
    assert detail in report.checks["finite"].detail


def test_a_cell_too_thin_to_search_is_invalid_without_the_search():
    flat = _with_lattice([[4, 0, 0], [0, 4, 0], [0, 0, 1e-6]])
    report = check_validity(flat)
    assert report.reason == "invalid:distance" and "too small for atoms 0.5 Å apart" in report.checks["distance"].detail


def test_absurd_compositions_are_invalid_or_refused():
    from motif_screen.structures.validity import check_composition_text

    ok, detail = composition_is_valid("Ba1e30TiO3")
    assert not ok and "1e+30 atoms, more than the 2,000" in detail
    assert check_composition_text(" BaTiO3 ") == "BaTiO3" and check_composition_text("Ba-Ti-O") == "Ba-Ti-O"
    for text, message in [("-", "names no element"), ("Ba1e30TiO3", "asks for 1e+30 atoms"), ("Xq-O", "not a chemical element"),
                          ("(", "not a formula"), ("", "is empty"), ("Ba" * 50_000, "characters in all")]:
        with pytest.raises(InputError, match=re.escape(message)):
            check_composition_text(text)


def test_fingerprint_refuses_geometry_outside_the_limits(crystals):
    from motif_screen.structures.fingerprint import fingerprint

    assert fingerprint(crystals["NaCl"]).startswith("NaCl-225-")
    with pytest.raises(InputError, match="cannot fingerprint NaCl: lattice vector a is 1e\\+300 Å long"):
        fingerprint(_with_lattice([[1e300, 0, 0], [0, 5, 0], [0, 0, 5]]))


def test_overlapping_atoms_are_caught_by_covalent_radii_when_asked():
    from pymatgen.core import Lattice, Structure

    from motif_screen.structures.validity import FUSED_BOND_FRACTION, closest_pair

    # S-S 0.9 Å passes CDVAE's 0.5 Å test; it is 0.43 of the two covalent radii (1.05 Å each)
    cell = Structure(Lattice.cubic(5.0), ["Ba", "S", "S"], [[0, 0, 0], [0.5, 0.5, 0.41], [0.5, 0.5, 0.59]])
    ratio, pair = closest_pair(cell)
    assert pair == "S-S 0.90 Å" and ratio == pytest.approx(0.9 / 2.1)
    assert "bonds" not in check_validity(cell, check_charge=False).checks  # CDVAE's protocol unchanged
    report = check_validity(cell, check_charge=False, min_bond_fraction=FUSED_BOND_FRACTION)
    assert report.reason == "invalid:bonds" and "S-S 0.90 Å, 0.43 of their covalent radii" in report.checks["bonds"].detail
    srtio3 = Structure(Lattice.cubic(3.9), ["Sr", "Ti", "O", "O", "O"],
                       [[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]])
    assert check_validity(srtio3, min_bond_fraction=FUSED_BOND_FRACTION).ok  # Ti-O 1.95 Å: 0.90 of 2.18 Å
