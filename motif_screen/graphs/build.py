"""Structure / Molecule / ASE Atoms -> one graph (a dict of tensors keyed by motif_screen.keys).

The neighbour list is pymatgen's compiled ``find_points_in_spheres`` (≈6,600 small cells/s here,
50× ASE's), used for crystals, molecules (no periodic direction) and mixed-PBC ASE slabs alike.
Edges store integer cell shifts, not vectors: :func:`motif_screen.graphs.batch.edge_vectors`
rebuilds the vectors inside torch so that gradients and rotations flow through positions and cell.
"""

from __future__ import annotations

import functools

import numpy as np
import torch
from pymatgen.core.periodic_table import Element
from pymatgen.optimization.neighbors import find_points_in_spheres

from motif_screen import keys
from motif_screen.errors import InputError

DEFAULT_MAX_ATOMS = 5000  # a 10,000-atom cell is refused with a clear error, not an OOM
MIN_DISTANCE = 0.5  # Å: closer atoms are overlapping (a broken structure, not chemistry)
MAX_LENGTH = 1.0e4  # Å: a longer lattice vector or a wider molecule is a unit error or a corrupt file
_MOLECULE_BOX = 1.0e4  # Å: a lattice find_points_in_spheres wants even without periodicity
_MAX_Z = 118
_NUMPY_DTYPES = {torch.float32: np.float32, torch.float64: np.float64, torch.float16: np.float16}


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


def _pymatgen_atomic_numbers(obj, label) -> np.ndarray:
    """Atomic numbers of an ordered pymatgen structure; ~10× cheaper than ``obj.atomic_numbers``
    (which re-checks order through several properties per site): it dominated small-cell graphs."""
    numbers = np.empty(len(obj), dtype=np.int64)
    for i, site in enumerate(obj):
        species = site.species
        if len(species) != 1:
            raise InputError(
                f"{label()} is disordered (partial occupancies); order it first, e.g. with "
                "OrderDisorderedStructureTransformation"
            )
        ((element, amount),) = species.items()
        if amount != 1:
            raise InputError(
                f"{label()} is disordered (partial occupancies); order it first, e.g. with "
                "OrderDisorderedStructureTransformation"
            )
        numbers[i] = element.Z
    return numbers


def _arrays(obj, label) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray]:
    """(atomic numbers, Cartesian positions, lattice rows or None, pbc flags) of any input type."""
    kind = type(obj)
    # class attributes, not hasattr(obj, ...): that would evaluate the (costly) properties
    if hasattr(kind, "cart_coords") and hasattr(kind, "sites"):  # pymatgen Structure / Molecule
        numbers = _pymatgen_atomic_numbers(obj, label)
        positions = np.asarray(obj.cart_coords, dtype=np.float64)
        if hasattr(kind, "lattice"):
            return numbers, positions, np.asarray(obj.lattice.matrix, dtype=np.float64), np.ones(3, bool)
        return numbers, positions, None, np.zeros(3, bool)
    if hasattr(obj, "get_atomic_numbers") and hasattr(obj, "get_positions"):  # ASE Atoms
        pbc = np.asarray(obj.get_pbc(), dtype=bool)
        cell = np.asarray(obj.get_cell(complete=True), dtype=np.float64) if pbc.any() else None
        return (
            np.asarray(obj.get_atomic_numbers(), dtype=np.int64),
            np.asarray(obj.get_positions(), dtype=np.float64),
            cell,
            pbc,
        )
    raise InputError(
        f"cannot build a graph from a {type(obj).__name__}: give a pymatgen Structure/Molecule or an ASE Atoms"
    )


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
    coords = np.ascontiguousarray(positions, dtype=np.float64)
    centers, neighbors, shifts, distances = find_points_in_spheres(
        coords, coords, float(cutoff), pbc=pbc, lattice=np.ascontiguousarray(lattice, dtype=np.float64), tol=1e-8
    )
    return centers.astype(np.int64), neighbors.astype(np.int64), np.rint(shifts).astype(np.int64), distances


@functools.lru_cache(maxsize=16)
def _species_lookup(vocabulary: tuple[int, ...]) -> np.ndarray:
    """(MAX_Z + 1,) table: atomic number -> index in ``vocabulary``, -1 outside it."""
    table = np.full(_MAX_Z + 1, -1, dtype=np.int64)
    for i, z in enumerate(vocabulary):
        if 0 <= z <= _MAX_Z:
            table[z] = i
    return table


def species_index(numbers: np.ndarray, vocabulary, label) -> np.ndarray:
    """Index of each atom's element in ``vocabulary``; InputError naming the structure and the
    elements outside it."""
    key = vocabulary if isinstance(vocabulary, tuple) else tuple(int(z) for z in vocabulary)
    table = _species_lookup(key)
    numbers = np.asarray(numbers, dtype=np.int64)
    in_range = numbers.size == 0 or (numbers.min() >= 0 and numbers.max() <= _MAX_Z)
    if in_range:
        index = table[numbers]
    else:  # rare: atomic numbers outside 0..118 are unknown, the others looked up as usual
        index = np.where((numbers >= 0) & (numbers <= _MAX_Z), table[np.clip(numbers, 0, _MAX_Z)], -1)
    unknown = index < 0
    if unknown.any():
        bad = sorted({int(z) for z in numbers[unknown]})
        names = ", ".join(Element.from_Z(z).symbol if 0 < z < 119 else str(z) for z in bad)
        raise InputError(
            f"{label() if callable(label) else label} contains {names}, outside the model's element vocabulary"
        )
    return index


def prepare(obj, vocabulary=None, max_atoms: int = DEFAULT_MAX_ATOMS, name: str | None = None):
    """(atomic numbers, positions, lattice rows or None, pbc, vocabulary indices or None, label) of one
    input, checked: :class:`InputError` naming it for no atoms, too many atoms, NaN coordinates, a
    lattice vector (or a molecule's spread) beyond ``MAX_LENGTH``, a zero-volume lattice or elements
    outside ``vocabulary``. ``label()`` names the structure for later messages."""

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
    _check_size(cell, positions, label)
    if cell is not None and abs(_det3(cell)) < 1e-6:
        raise InputError(f"{label()} has a degenerate (zero-volume) lattice")
    index = species_index(numbers, vocabulary, label) if vocabulary is not None else None
    return numbers, positions, cell, pbc, index, label


def check_overlaps(src: np.ndarray, dst: np.ndarray, dist: np.ndarray, label) -> None:
    """:class:`InputError` naming the two sites when an edge is shorter than ``MIN_DISTANCE``."""
    if len(dist) and dist.min() < MIN_DISTANCE:
        k = int(np.argmin(dist))
        raise InputError(
            f"{label()} has overlapping atoms: sites {int(dst[k])} and {int(src[k])} are {dist[k]:.3f} Å apart "
            f"(< {MIN_DISTANCE} Å)"
        )


def to_graph(
    obj,
    cutoff: float,
    vocabulary=None,
    max_atoms: int = DEFAULT_MAX_ATOMS,
    *,
    name: str | None = None,
    dtype: torch.dtype | None = None,
) -> dict[str, torch.Tensor]:
    """One graph of a pymatgen ``Structure`` / ``Molecule`` or ASE ``Atoms``.

    ``vocabulary``: atomic numbers the model knows (``None`` accepts any element). Raises
    :class:`InputError` naming the structure for no atoms, NaN coordinates, a lattice vector (or,
    for a molecule, a spread of positions) longer than ``MAX_LENGTH``, a zero-volume lattice,
    overlapping atoms (< 0.5 Å), unknown elements or more than ``max_atoms`` atoms. An atom with no neighbour
    inside the cutoff is fine: it simply has no edges.
    """
    return to_batch([obj], cutoff, vocabulary, max_atoms, names=[name] if name else None, dtype=dtype)


def to_batch(
    structures,
    cutoff: float,
    vocabulary=None,
    max_atoms: int = DEFAULT_MAX_ATOMS,
    *,
    names=None,
    dtype: torch.dtype | None = None,
) -> dict[str, torch.Tensor]:
    """One batched graph of pymatgen Structures / Molecules or ASE Atoms, with the checks of
    :func:`to_graph` (an :class:`InputError` naming the first bad structure; ``names`` label them).

    The same tensors as ``collate`` of their ``to_graph`` graphs, built once for the whole batch:
    screening scores cells of a few atoms by the thousand, and there eight small tensors per
    structure, concatenated again, cost more than the neighbour search (pymatgen's compiled one,
    called per structure: a numpy search vectorised over many 5-atom cells was slower)."""
    structures = list(structures)
    if not structures:
        raise ValueError("to_batch() needs at least one structure")
    prepared, edges = [], []
    for k, structure in enumerate(structures):  # checked in order: the first bad structure is the one named
        numbers, positions, cell, pbc, index, label = prepare(
            structure, vocabulary, max_atoms, names[k] if names else None
        )
        src, dst, shifts, dist = neighbor_list(positions, cell, pbc, cutoff)
        check_overlaps(src, dst, dist, label)
        prepared.append((numbers, positions, cell, pbc, index))
        edges.append((src, dst, shifts))

    dtype = dtype or torch.get_default_dtype()
    np_dtype = _NUMPY_DTYPES.get(dtype, np.float64)  # an unusual dtype: float64 here, torch converts

    def as_float(arrays) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(np.concatenate(arrays), dtype=np_dtype)).to(dtype)

    counts = np.array([len(p[0]) for p in prepared], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(counts)[:-1]])
    batch = {
        keys.POSITIONS: as_float([p[1] for p in prepared]),
        keys.ATOMIC_NUMBERS: torch.from_numpy(np.concatenate([p[0] for p in prepared])),
        keys.CELL: as_float([(p[2] if p[2] is not None else np.zeros((3, 3)))[None] for p in prepared]),
        keys.PBC: torch.from_numpy(np.stack([np.asarray(p[3], dtype=bool) for p in prepared])),
        keys.EDGE_INDEX: torch.from_numpy(
            np.concatenate([np.stack([e[0], e[1]]) + off for e, off in zip(edges, offsets)], axis=1)
        ),
        keys.EDGE_CELL_SHIFT: as_float([e[2] for e in edges]),
        keys.BATCH: torch.from_numpy(np.repeat(np.arange(len(prepared)), counts)),
        keys.NUM_NODES: torch.from_numpy(counts),
    }
    if vocabulary is not None:
        batch[keys.SPECIES_INDEX] = torch.from_numpy(np.concatenate([p[4] for p in prepared]))
    return batch


def _check_size(cell: np.ndarray | None, positions: np.ndarray, label) -> None:
    """Refuse a lattice vector, or a molecule's extent, beyond MAX_LENGTH: the neighbour search
    cannot handle it and no structure is that large."""
    if cell is not None:
        with np.errstate(over="ignore"):
            longest = float(np.sqrt((cell * cell).sum(axis=1).max()))
        if not longest <= MAX_LENGTH:
            size = f"{longest:.3g} Å" if np.isfinite(longest) else f"over {float(np.abs(cell).max()):.3g} Å"
            raise InputError(
                f"{label()} has a lattice vector {size} long, beyond the {MAX_LENGTH:.0f} Å "
                "any structure has (a unit error or a corrupt file?)"
            )
        return
    extent = float((positions.max(axis=0) - positions.min(axis=0)).max())
    if not extent <= MAX_LENGTH:
        raise InputError(
            f"{label()} spreads over {extent:.3g} Å, beyond the {MAX_LENGTH:.0f} Å any molecule has "
            "(a unit error or a corrupt file?)"
        )


def _det3(m: np.ndarray) -> float:
    """Determinant of a 3×3 matrix as a triple product (np.linalg.det costs more than the graph)."""
    a, b, c = m.tolist()
    return a[0] * (b[1] * c[2] - b[2] * c[1]) - a[1] * (b[0] * c[2] - b[2] * c[0]) + a[2] * (b[0] * c[1] - b[1] * c[0])
