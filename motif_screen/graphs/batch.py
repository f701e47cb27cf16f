"""Batching many graphs of different sizes into one, and edge vectors computed inside torch."""

from __future__ import annotations

import torch

from motif_screen import keys

NODE_KEYS = (keys.POSITIONS, keys.ATOMIC_NUMBERS, keys.SPECIES_INDEX, keys.FRAC_COORDS)  # one row per atom
EDGE_KEYS = (keys.EDGE_CELL_SHIFT,)  # one row per edge, besides the edge index


def collate(graphs: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """One disjoint-union graph: node and edge fields concatenated, edge indices offset.

    Fields other than the standard ones are concatenated along dim 0 when every graph has them
    (per-graph labels, per-node targets...), so callers can carry their own data through.
    """
    if not graphs:
        raise ValueError("collate() needs at least one graph")
    num_nodes = torch.cat([g[keys.NUM_NODES] for g in graphs])
    offsets = torch.cumsum(num_nodes, 0) - num_nodes
    out = {
        keys.EDGE_INDEX: torch.cat([g[keys.EDGE_INDEX] + off for g, off in zip(graphs, offsets.tolist())], dim=1),
        keys.BATCH: torch.repeat_interleave(torch.arange(len(graphs)), num_nodes),
    }
    skip = {keys.EDGE_INDEX, keys.BATCH}
    for key in graphs[0]:
        if key in skip or not all(key in g for g in graphs):
            continue
        out[key] = torch.cat([g[key] for g in graphs], dim=0)
    return out


def edge_vectors(batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """(E, 3) vectors r_source + shift·cell − r_target, differentiable in positions and cell."""
    src, dst = batch[keys.EDGE_INDEX]
    pos = batch[keys.POSITIONS]
    shift = batch[keys.EDGE_CELL_SHIFT].to(pos.dtype)
    cell = batch[keys.CELL].to(pos.dtype)
    graph_of_edge = batch[keys.BATCH][src]
    offset = torch.einsum("ei,eij->ej", shift, cell[graph_of_edge])
    return pos[src] + offset - pos[dst]


def with_dtype(batch: dict[str, torch.Tensor], dtype: torch.dtype) -> dict[str, torch.Tensor]:
    """The batch with every floating field cast to ``dtype`` (float64 equivariance tests)."""
    return {k: (v.to(dtype) if v.is_floating_point() else v) for k, v in batch.items()}
