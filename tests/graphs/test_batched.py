"""to_batch builds exactly what collate(to_graph ...) builds, tensor for tensor."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from pymatgen.core import Lattice, Molecule, Structure

from motif_screen import keys
from motif_screen.errors import InputError
from motif_screen.graphs import collate, to_batch, to_graph


def _assert_same(structures, cutoff=4.0, vocabulary=None):
    expected = collate([to_graph(s, cutoff, vocabulary) for s in structures])
    got = to_batch(structures, cutoff, vocabulary)
    assert set(got) == set(expected)
    for key in expected:
        assert got[key].dtype == expected[key].dtype and torch.equal(got[key], expected[key]), key
    return got


def _random_cells(rng, count, max_atoms=8, spread=(-1.5, 2.5)):
    cells = []
    while len(cells) < count:
        lattice = Lattice.from_parameters(*rng.uniform(2.5, 7.0, 3), *rng.uniform(60, 120, 3))
        n = int(rng.integers(1, max_atoms + 1))
        s = Structure(lattice, rng.choice(["Si", "O", "Sr"], n).tolist(), rng.uniform(*spread, (n, 3)))
        if n == 1 or s.distance_matrix[np.triu_indices(n, 1)].min() > 0.7:
            cells.append(s)
    return cells


def test_skewed_cells_with_sites_outside_the_cell_get_every_edge():
    # oblique lattices, fractional coordinates from -1.5 to 2.5, 1 to 8 atoms, one atom's own images
    _assert_same(_random_cells(np.random.default_rng(0), 120))


def test_perovskites_supercells_and_ties_at_the_cutoff():
    srtio3 = Structure(Lattice.cubic(3.9), ["Sr", "Ti", "O", "O", "O"],
                       [[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]])
    rng = np.random.default_rng(1)
    rattled = [Structure(srtio3.lattice, srtio3.species, srtio3.cart_coords + rng.normal(0, 0.1, (5, 3)),
                         coords_are_cartesian=True) for _ in range(20)]
    supercells = [s * (2, 2, 1) for s in rattled[:5]]  # 20 atoms
    tie = Structure(Lattice.cubic(4.0), ["Cs"], [[0, 0, 0]])  # images exactly at the 4 Å cutoff count
    batch = _assert_same([srtio3, *rattled, *supercells, tie], vocabulary=(8, 22, 38, 55))
    assert int((batch[keys.EDGE_INDEX][1] == batch[keys.NUM_NODES][:-1].sum()).sum()) == 6


def test_molecules_and_crystals_in_one_batch():
    big = _random_cells(np.random.default_rng(2), 1, max_atoms=1)[0] * (4, 3, 3)  # 36 atoms
    co = Molecule(["C", "O"], [[0, 0, 0], [0, 0, 1.13]])
    _assert_same([co, big, *_random_cells(np.random.default_rng(3), 5), co])


def test_the_same_errors_name_the_same_structure():
    good = _random_cells(np.random.default_rng(4), 3)
    fused = Structure(Lattice.cubic(4.0), ["Si", "Si"], [[0, 0, 0], [0.05, 0, 0]])
    with pytest.raises(InputError, match=r"^third has overlapping atoms: sites \d and \d are 0\.200 Å apart"):
        to_batch([*good[:2], fused], 4.0, names=["first", "second", "third"])
    with pytest.raises(InputError, match="outside the model's element vocabulary"):
        to_batch(good, 4.0, vocabulary=(8,))
    with pytest.raises(InputError, match="^first has overlapping"):  # the first bad one, whatever its fault
        to_batch([fused, Structure(Lattice.cubic(4.0), ["Xe"], [[0, 0, 0]])], 4.0, vocabulary=(14,),
                 names=["first", "second"])
    with pytest.raises(ValueError, match="at least one structure"):
        to_batch([], 4.0)
