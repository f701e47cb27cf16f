"""The prototype of an A B X3 cell, read from its motifs: perovskite, inverted, or another geometry."""

from pymatgen.core import Lattice, Structure

from motif_screen.screening import ScreenSettings, assess
from motif_screen.structures.motifs import site_motifs
from motif_screen.structures.prototypes import abx3_prototype

CORNER, CENTRE = [0, 0, 0], [0.5, 0.5, 0.5]
FACES = [[0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]]


def prototype(structure):
    return abx3_prototype(structure.composition, site_motifs(structure))


def test_the_cubic_aristotype_is_a_perovskite_and_with_its_cations_exchanged_inverted():
    srtio3 = Structure(Lattice.cubic(3.905), ["Sr", "Ti", "O", "O", "O"], [CORNER, CENTRE, *FACES])
    assert prototype(srtio3) == "perovskite"  # Ti: 6 O in an octahedron; Sr: 12 O
    exchanged = Structure(Lattice.cubic(3.905), ["Ti", "Sr", "O", "O", "O"], [CORNER, CENTRE, *FACES])
    assert prototype(exchanged) == "perovskite_inverted"  # the larger cation, Sr, in the octahedron


def test_a_cell_without_the_octahedron_is_another_prototype():
    broken = Structure(Lattice.cubic(3.905), ["Sr", "Ti", "O", "O", "O"],
                       [CORNER, CENTRE, FACES[0], FACES[1], [0.25, 0.25, 0.25]])
    assert prototype(broken) == "abx3_other"


def test_a_formula_without_a_size_reading_is_judged_by_geometry_alone():
    # Ni and Sb have no pair of common oxidation states balancing N3: no A/B reading, so whichever
    # cation is octahedral is B
    cell = Structure(Lattice.cubic(3.8), ["Sb", "Ni", "N", "N", "N"], [CORNER, CENTRE, *FACES])
    assert prototype(cell) == "perovskite"


def test_cells_that_are_not_abx3_have_no_prototype():
    rocksalt = Structure.from_spacegroup("Fm-3m", Lattice.cubic(5.64), ["Na", "Cl"], [CORNER, CENTRE])
    assert prototype(rocksalt) is None


def test_the_prescreen_stores_the_prototype_with_the_motifs():
    srtio3 = Structure(Lattice.cubic(3.905), ["Sr", "Ti", "O", "O", "O"], [CORNER, CENTRE, *FACES])
    rocksalt = Structure.from_spacegroup("Fm-3m", Lattice.cubic(5.64), ["Na", "Cl"], [CORNER, CENTRE])
    decisions = assess([srtio3, rocksalt], ScreenSettings())
    assert decisions[0].motifs["prototype"] == "perovskite"
    assert "prototype" not in decisions[1].motifs
