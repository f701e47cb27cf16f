"""Graphs: pymatgen ``Structure`` / ``Molecule`` or ASE ``Atoms`` -> dict of tensors; batching.

>>> g = to_graph(structure, cutoff=4.0)
>>> batch = collate([g, g2])
>>> vectors = edge_vectors(batch)  # differentiable in positions and cell
"""

from motif_screen.graphs.batch import collate, edge_vectors, to_device, with_dtype
from motif_screen.graphs.build import (
    DEFAULT_MAX_ATOMS,
    MIN_DISTANCE,
    describe,
    neighbor_list,
    to_graph,
)

__all__ = [
    "DEFAULT_MAX_ATOMS",
    "MIN_DISTANCE",
    "collate",
    "describe",
    "edge_vectors",
    "neighbor_list",
    "to_device",
    "to_graph",
    "with_dtype",
]
