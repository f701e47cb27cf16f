"""Graphs: neighbour lists with cell shifts, batching, differentiable edge vectors, bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ase import Atoms
from ase.build import bulk, molecule
from ase.neighborlist import neighbor_list as ase_neighbor_list
from pymatgen.core import Lattice, Molecule, Structure

from motif_screen import keys
from motif_screen.errors import InputError
from motif_screen.graphs import collate, edge_vectors, to_graph


def perovskite(a=3.9, distortion=0.0) -> Structure:
    return Structure(Lattice.cubic(a), ["Sr", "Ti", "O", "O", "O"],
                     [[0, 0, 0], [0.5 + distortion, 0.5, 0.5], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]])


def test_periodic_neighbour_list_matches_ase_and_rebuilds_distances():
    s = perovskite(distortion=0.03)
    g = to_graph(s, cutoff=4.0)
    src, dst, dist = ase_neighbor_list("ijd", s.to_ase_atoms(), 4.0)
    assert g[keys.EDGE_INDEX].shape[1] == len(dist)
    vec = edge_vectors(g).double()
    np.testing.assert_allclose(np.sort(vec.norm(dim=1).numpy()), np.sort(dist), atol=1e-5)
    # every shift is an integer lattice vector
    shifts = g[keys.EDGE_CELL_SHIFT]
    assert torch.equal(shifts, shifts.round())


def test_graph_fields_and_molecule_has_no_lattice():
    g = to_graph(Molecule(["C", "O"], [[0, 0, 0], [0, 0, 1.13]]), cutoff=4.0)
    assert g[keys.CELL].abs().sum() == 0 and not g[keys.PBC].any()
    assert g[keys.EDGE_INDEX].tolist() == [[1, 0], [0, 1]] or sorted(map(tuple, g[keys.EDGE_INDEX].T.tolist())) == [(0, 1), (1, 0)]
    assert g[keys.NUM_NODES].tolist() == [2]


def test_ase_atoms_crystal_and_molecule():
    g = to_graph(bulk("Si", "diamond", a=5.43), cutoff=4.0)
    assert g[keys.PBC].all() and g[keys.EDGE_INDEX].shape[1] == 2 * 16  # 4 first + 12 second neighbours
    m = to_graph(molecule("H2O"), cutoff=4.0)
    assert m[keys.EDGE_INDEX].shape[1] == 6


def test_one_atom_cell_sees_its_periodic_images():
    g = to_graph(Structure(Lattice.cubic(3.0), ["Po"], [[0, 0, 0]]), cutoff=3.1)
    assert g[keys.EDGE_INDEX].shape[1] == 6


def test_collate_offsets_edges_and_batches():
    a, b = to_graph(perovskite(), 4.0), to_graph(Molecule(["H", "H"], [[0, 0, 0], [0, 0, 0.74]]), 4.0)
    batch = collate([a, b])
    assert batch[keys.BATCH].tolist() == [0] * 5 + [1] * 2
    assert batch[keys.EDGE_INDEX][:, a[keys.EDGE_INDEX].shape[1]:].min() == 5
    assert batch[keys.CELL].shape == (2, 3, 3)
    np.testing.assert_allclose(edge_vectors(batch)[-2:].norm(dim=1).numpy(), [0.74, 0.74], atol=1e-6)


def test_edge_vectors_are_differentiable_in_positions_and_cell():
    g = to_graph(perovskite(distortion=0.02), 4.0, dtype=torch.float64)
    g[keys.POSITIONS].requires_grad_(True)
    g[keys.CELL].requires_grad_(True)
    edge_vectors(g).norm(dim=1).sum().backward()
    assert g[keys.POSITIONS].grad.abs().sum() > 0
    # stress-like derivative: straining the cell changes periodic-image distances
    assert g[keys.CELL].grad.abs().sum() > 0


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: Structure(Lattice.cubic(4), ["Na", "Cl"], [[0, 0, 0], [0.05, 0, 0]]), "overlapping atoms"),
        (lambda: Structure(Lattice.cubic(4), ["Na", "Cl"], [[0, 0, 0], [0, 0, 0]]), "overlapping atoms"),
        (lambda: Molecule([], []), "no atoms"),
        (lambda: Atoms("H2", positions=[[0, 0, 0], [np.nan, 0, 0]]), "NaN"),
        (lambda: Molecule(["H", "H"], [[0, 0, 0], [0, 0, 0.3]]), "overlapping atoms"),
        (lambda: Structure(Lattice.cubic(4), [{"Na": 0.5, "K": 0.5}, "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]]), "disordered"),
        (lambda: "SrTiO3", "cannot build a graph from a str"),
        (lambda: Structure(Lattice([[1e300, 0, 0], [0, 4, 0], [0, 0, 4]]), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]]),
         r"NaCl \(2 atoms\) has a lattice vector over 1e\+300 Å long"),
        (lambda: Structure(Lattice.cubic(2e4), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]]), "lattice vector 2e\\+04 Å long"),
        (lambda: Molecule(["H", "H"], [[0, 0, 0], [0, 0, 3e4]]), "spreads over 3e\\+04 Å"),
    ],
)
def test_bad_structures_raise_input_error_naming_the_structure(make, message):
    with pytest.raises(InputError, match=message):
        to_graph(make(), cutoff=4.0)


def test_unknown_element_names_structure_and_element():
    with pytest.raises(InputError, match=r"SrTiO3.*contains Sr"):
        to_graph(perovskite(), 4.0, vocabulary=[8, 22])


def test_ten_thousand_atom_cell_is_refused_clearly():
    big = perovskite().copy()
    big.make_supercell([12, 13, 13])  # 10,140 atoms
    with pytest.raises(InputError, match=r"10140 atoms, more than the limit"):
        to_graph(big, 4.0)


def test_isolated_atom_has_no_edges_and_no_nan():
    g = to_graph(Molecule(["He", "He"], [[0, 0, 0], [0, 0, 10.0]]), cutoff=4.0)
    assert g[keys.EDGE_INDEX].shape[1] == 0
    from motif_screen.model import build_encoder

    out = build_encoder("S")(collate([g]))
    assert torch.isfinite(out[keys.LATENT]).all() and torch.isfinite(out[keys.NODE_FEATURES]).all()


def test_vocabulary_gives_species_index():
    g = to_graph(perovskite(), 4.0, vocabulary=[8, 22, 38])
    assert g[keys.SPECIES_INDEX].tolist() == [2, 1, 0, 0, 0]


def test_pymatgen_and_ase_inputs_give_the_same_graph():
    s = perovskite(distortion=0.04) * (2, 1, 1)
    a, b = to_graph(s, 4.0, vocabulary=[8, 22, 38]), to_graph(s.to_ase_atoms(), 4.0, vocabulary=[8, 22, 38])
    for key in (keys.POSITIONS, keys.ATOMIC_NUMBERS, keys.CELL, keys.SPECIES_INDEX):
        assert torch.equal(a[key], b[key])
    edges = lambda g: sorted(zip(*g[keys.EDGE_INDEX].tolist(), map(tuple, g[keys.EDGE_CELL_SHIFT].tolist())))
    assert edges(a) == edges(b)


def test_graph_dtypes_follow_the_request():
    g32, g64 = to_graph(perovskite(), 4.0), to_graph(perovskite(), 4.0, dtype=torch.float64)
    assert g32[keys.POSITIONS].dtype == torch.float32 and g64[keys.POSITIONS].dtype == torch.float64
    assert g64[keys.EDGE_CELL_SHIFT].dtype == torch.float64 and g64[keys.CELL].shape == (1, 3, 3)
    assert g32[keys.EDGE_INDEX].dtype == torch.long and g32[keys.ATOMIC_NUMBERS].dtype == torch.long
    np.testing.assert_allclose(g64[keys.POSITIONS].numpy(), perovskite().cart_coords)


def test_ase_dummy_atom_outside_vocabulary_is_named():
    atoms = Atoms(numbers=[0, 8], positions=[[0, 0, 0], [0, 0, 1.5]])
    with pytest.raises(InputError, match=r"contains 0, outside"):
        to_graph(atoms, 4.0, vocabulary=[8])
    with pytest.raises(InputError, match=r"contains Ti, Sr, outside"):
        to_graph(perovskite(), 4.0, vocabulary=(8,))
