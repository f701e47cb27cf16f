"""Structure / Molecule / ASE Atoms -> one graph (a dict of tensors keyed by motif_screen.keys).

The neighbour list is pymatgen's compiled ``find_points_in_spheres`` (≈6,600 small cells/s here,
50× ASE's), used for crystals, molecules (no periodic direction) and mixed-PBC ASE slabs alike.
Edges store integer cell shifts, not vectors: :func:`motif_screen.graphs.batch.edge_vectors`
rebuilds the vectors inside torch so that gradients and rotations flow through positions and cell.
"""

from __future__ import annotations

from typing import Iterable

import numpy as np
import torch

from motif_screen import keys
from motif_screen.errors import InputError

DEFAULT_MAX_ATOMS = 5000  # a 10,000-atom cell is refused with a clear error, not an OOM
MIN_DISTANCE = 0.5  # Å: closer atoms are overlapping (a broken structure, not chemistry)
_MOLECULE_BOX = 1.0e4  # Å: a lattice find_points_in_spheres wants even without periodicity


def describe(obj, name: str | None = None) -> str:
    """A short human name for a structure, used in every error message."""
    if name:
        return name
    try:
        if hasattr(obj, "composition"):
            return f"{obj.composition.reduced_formula} ({len(obj)} atoms)"
        if hasattr(obj, "get_chemical_formula"):
            return f"{obj.get_chemical_formula()} ({len(obj)} atoms)"
    except Exception:  # a structure broken enough to break its formula
        pass
    return f"{type(obj).__name__} ({len(obj) if hasattr(obj, '__len__') else '?'} atoms)"


def _arrays(obj, label) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray]:
    """(atomic numbers, Cartesian positions, lattice rows or None, pbc flags) of any input type."""
    if hasattr(obj, "cart_coords") and hasattr(obj, "sites"):  # pymatgen Structure / Molecule
        try:
            numbers = np.asarray(obj.atomic_numbers, dtype=np.int64)  # raises for partial occupancies
        except AttributeError:
            raise InputError(f"{label()} is disordered (partial occupancies); order it first, e.g. with "
                             "OrderDisorderedStructureTransformation") from None
        if hasattr(obj, "lattice"):
            return numbers, np.asarray(obj.cart_coords, dtype=np.float64), np.asarray(obj.lattice.matrix, dtype=np.float64), np.ones(3, bool)
        return numbers, np.asarray(obj.cart_coords, dtype=np.float64), None, np.zeros(3, bool)
    if hasattr(obj, "get_atomic_numbers") and hasattr(obj, "get_positions"):  # ASE Atoms
        pbc = np.asarray(obj.get_pbc(), dtype=bool)
        cell = np.asarray(obj.get_cell(complete=True), dtype=np.float64) if pbc.any() else None
        return np.asarray(obj.get_atomic_numbers(), dtype=np.int64), np.asarray(obj.get_positions(), dtype=np.float64), cell, pbc
    raise InputError(f"cannot build a graph from a {type(obj).__name__}: give a pymatgen Structure/Molecule or an ASE Atoms")


def neighbor_list(positions: np.ndarray, cell: np.ndarray | None, pbc: np.ndarray, cutoff: float):
    """(source, target, cell shift of the source, distance) for every pair closer than ``cutoff``.

    Self pairs (same atom, zero shift) are dropped; an atom's own periodic images are kept
    (a 1-atom cell has neighbours). Coincident distinct atoms are kept, with distance 0, so the
    caller can report them.
    """
    lattice = cell if cell is not None else np.eye(3) * _MOLECULE_BOX
    centers, neighbors, shifts, distances = find_points(positions, cutoff, pbc.astype(np.int64), lattice)
    keep = ~((centers == neighbors) & ~shifts.any(axis=1))
    return neighbors[keep], centers[keep], shifts[keep], distances[keep]


def find_points(positions, cutoff, pbc, lattice):
    from pymatgen.optimization.neighbors import find_points_in_spheres

    coords = np.ascontiguousarray(positions, dtype=np.float64)
    centers, neighbors, shifts, distances = find_points_in_spheres(
        coords, coords, float(cutoff), pbc=pbc, lattice=np.ascontiguousarray(lattice, dtype=np.float64), tol=1e-8
    )
    return centers.astype(np.int64), neighbors.astype(np.int64), np.rint(shifts).astype(np.int64), distances


def check_vocabulary(numbers: Iterable[int], vocabulary, label) -> None:
    if vocabulary is None:
        return
    allowed = set(int(z) for z in vocabulary)
    unknown = sorted(set(int(z) for z in numbers) - allowed)
    if unknown:
        from pymatgen.core.periodic_table import Element

        names = ", ".join(Element.from_Z(z).symbol if 0 < z < 119 else str(z) for z in unknown)
        raise InputError(f"{label() if callable(label) else label} contains {names}, outside the model's element vocabulary")


def to_graph(obj, cutoff: float, vocabulary=None, max_atoms: int = DEFAULT_MAX_ATOMS, *, name: str | None = None,
             dtype: torch.dtype | None = None) -> dict[str, torch.Tensor]:
    """One graph of a pymatgen ``Structure`` / ``Molecule`` or ASE ``Atoms``.

    ``vocabulary``: atomic numbers the model knows (``None`` accepts any element). Raises
    :class:`InputError` naming the structure for no atoms, NaN coordinates, overlapping atoms
    (< 0.5 Å), unknown elements or more than ``max_atoms`` atoms. An atom with no neighbour
    inside the cutoff is fine: it simply has no edges.
    """
    def label() -> str:  # only computed for an error message: a formula costs more than the graph
        return describe(obj, name)

    n = len(obj) if hasattr(obj, "__len__") else 0
    if n == 0:
        raise InputError(f"{label()} has no atoms")
    if n > max_atoms:
        raise InputError(f"{label()} has {n} atoms, more than the limit of {max_atoms}; split it or raise max_atoms")
    numbers, positions, cell, pbc = _arrays(obj, label)
    if not np.isfinite(positions).all() or (cell is not None and not np.isfinite(cell).all()):
        raise InputError(f"{label()} has NaN or infinite coordinates")
    if cell is not None and abs(np.linalg.det(cell)) < 1e-6:
        raise InputError(f"{label()} has a degenerate (zero-volume) lattice")
    check_vocabulary(numbers, vocabulary, label)

    src, dst, shifts, dist = neighbor_list(positions, cell, pbc, cutoff)
    if len(dist) and dist.min() < MIN_DISTANCE:
        k = int(np.argmin(dist))
        raise InputError(
            f"{label()} has overlapping atoms: sites {int(dst[k])} and {int(src[k])} are {dist[k]:.3f} Å apart (< {MIN_DISTANCE} Å)"
        )
    dtype = dtype or torch.get_default_dtype()
    graph = {
        keys.POSITIONS: torch.tensor(positions, dtype=dtype),
        keys.ATOMIC_NUMBERS: torch.as_tensor(numbers, dtype=torch.long),
        keys.CELL: torch.tensor(cell if cell is not None else np.zeros((3, 3)), dtype=dtype).unsqueeze(0),
        keys.PBC: torch.as_tensor(pbc, dtype=torch.bool).unsqueeze(0),
        keys.EDGE_INDEX: torch.as_tensor(np.stack([src, dst]), dtype=torch.long),
        keys.EDGE_CELL_SHIFT: torch.as_tensor(shifts, dtype=dtype),
        keys.BATCH: torch.zeros(n, dtype=torch.long),
        keys.NUM_NODES: torch.tensor([n], dtype=torch.long),
    }
    if vocabulary is not None:
        lookup = {int(z): i for i, z in enumerate(vocabulary)}
        graph[keys.SPECIES_INDEX] = torch.as_tensor([lookup[int(z)] for z in numbers], dtype=torch.long)
    return graph
