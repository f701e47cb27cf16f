"""Editing a built graph: removing an atom without a new neighbour search."""

from __future__ import annotations

import torch

from motif_screen import keys
from motif_screen.errors import InputError
from motif_screen.graphs.batch import EDGE_KEYS, NODE_KEYS

__all__ = ["remove_atom"]


def remove_atom(graph: dict[str, torch.Tensor], index: int) -> dict[str, torch.Tensor]:
    """The single-structure graph with atom ``index`` and every edge touching it removed.

    Exact for molecules and crystals alike: the neighbour list of the remaining atoms is the old
    one minus the edges to the removed atom (and its periodic images), so no neighbour search is
    repeated — that is what makes one fresh hole per molecule per epoch cheap.
    """
    n = int(graph[keys.NUM_NODES].sum())
    if not 0 <= index < n:
        raise InputError(f"cannot remove atom {index} from a structure of {n} atoms")
    keep = torch.ones(n, dtype=torch.bool)
    keep[index] = False
    src, dst = graph[keys.EDGE_INDEX]
    keep_edge = (src != index) & (dst != index)
    renumber = torch.cumsum(keep.long(), 0) - 1
    out = dict(graph)
    for key in (*NODE_KEYS, keys.BATCH):
        if key in graph:
            out[key] = graph[key][keep]
    out[keys.EDGE_INDEX] = renumber[graph[keys.EDGE_INDEX][:, keep_edge]]
    for key in EDGE_KEYS:
        out[key] = graph[key][keep_edge]
    out[keys.NUM_NODES] = graph[keys.NUM_NODES] - 1
    return out
