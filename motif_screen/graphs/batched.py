"""Many structures -> one batched graph, without a graph per structure on the way.

``to_batch(structures, cutoff, vocabulary)`` is ``collate([to_graph(s, cutoff, vocabulary) ...])``
— the same fields, the same edges in the same order, the same checks and error messages — but the
tensors are built once for the whole batch: screening scores cells of a few atoms by the thousand,
and there the dict of eight small tensors each structure got, and concatenating them again, cost
more than the neighbour search (pymatgen's compiled one, called per structure: a neighbour search
vectorised over many 5-atom cells in numpy was slower).
"""

from __future__ import annotations

import numpy as np
import torch

from motif_screen import keys
from motif_screen.graphs.build import _NUMPY_DTYPES, DEFAULT_MAX_ATOMS, check_overlaps, neighbor_list, prepare

__all__ = ["to_batch"]


def to_batch(
    structures,
    cutoff: float,
    vocabulary=None,
    max_atoms: int = DEFAULT_MAX_ATOMS,
    *,
    names=None,
    dtype: torch.dtype | None = None,
) -> dict[str, torch.Tensor]:
    """One batched graph of pymatgen Structures / Molecules or ASE Atoms: what ``collate`` of their
    ``to_graph`` graphs gives, with the same checks (an :class:`InputError` naming the first bad
    structure); ``names`` label structures in those messages."""
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
    np_dtype = _NUMPY_DTYPES.get(dtype, np.float64)
    counts = np.array([len(p[0]) for p in prepared], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(counts)[:-1]])
    batch = {
        keys.POSITIONS: torch.from_numpy(np.concatenate([p[1] for p in prepared]).astype(np_dtype)).to(dtype),
        keys.ATOMIC_NUMBERS: torch.from_numpy(np.concatenate([p[0] for p in prepared])),
        keys.CELL: torch.from_numpy(
            np.stack([p[2] if p[2] is not None else np.zeros((3, 3)) for p in prepared]).astype(np_dtype)
        ).to(dtype),
        keys.PBC: torch.from_numpy(np.stack([np.asarray(p[3], dtype=bool) for p in prepared])),
        keys.EDGE_INDEX: torch.from_numpy(
            np.concatenate([np.stack([e[0], e[1]]) + off for e, off in zip(edges, offsets)], axis=1)
        ),
        keys.EDGE_CELL_SHIFT: torch.from_numpy(np.concatenate([e[2] for e in edges]).astype(np_dtype)).to(dtype),
        keys.BATCH: torch.from_numpy(np.repeat(np.arange(len(prepared)), counts)),
        keys.NUM_NODES: torch.from_numpy(counts),
    }
    if vocabulary is not None:
        batch[keys.SPECIES_INDEX] = torch.from_numpy(np.concatenate([p[4] for p in prepared]))
    return batch
