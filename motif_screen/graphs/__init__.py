"""Graphs: pymatgen ``Structure`` / ``Molecule`` or ASE ``Atoms`` -> dict of tensors; batching.

>>> g = to_graph(structure, cutoff=4.0)
>>> batch = collate([g, g2])
>>> batch = to_batch([structure, structure2], cutoff=4.0)  # the same batch, built at once
>>> vectors = edge_vectors(batch)  # differentiable in positions and cell
>>> holey = remove_atom(g, 0)      # the graph without atom 0, no new neighbour search
"""

from motif_screen.graphs.batch import collate, edge_vectors, with_dtype
from motif_screen.graphs.build import (
    DEFAULT_MAX_ATOMS,
    MAX_LENGTH,
    MIN_DISTANCE,
    describe,
    neighbor_list,
    to_batch,
    to_graph,
)
from motif_screen.graphs.edit import remove_atom

__all__ = [
    "DEFAULT_MAX_ATOMS",
    "MAX_LENGTH",
    "MIN_DISTANCE",
    "collate",
    "describe",
    "edge_vectors",
    "neighbor_list",
    "remove_atom",
    "to_batch",
    "to_graph",
    "with_dtype",
]
