"""Which structures a training run can use: their graphs, built once, and why the others are left out.

A structure the encoder cannot read (overlapping atoms, an absurd lattice, an element outside the
vocabulary, too many atoms) is skipped with its reason, not allowed to stop a long run. When
nothing usable remains, the error says which structures failed and why.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch

from motif_screen.errors import InputError
from motif_screen.graphs import DEFAULT_MAX_ATOMS, to_graph

__all__ = ["UsableGraphs", "skip_summary", "usable_graphs"]

log = logging.getLogger(__name__)
SHOWN = 3  # skipped items an error or warning names; the rest are counted


def skip_summary(skipped: Sequence[str], shown: int = SHOWN, sep: str = "; ") -> str:
    """The first ``shown`` items joined by ``sep``, and how many more there are."""
    text = sep.join(skipped[:shown])
    return text + (f"{sep}and {len(skipped) - shown} more" if len(skipped) > shown else "")


@dataclass
class UsableGraphs:
    graphs: list[dict[str, torch.Tensor]]
    kept: list[int]  # index into the given structures of each graph
    skipped: list[str] = field(default_factory=list)  # "<name>: <reason>" of each structure left out


def usable_graphs(
    structures: Sequence,
    cutoff: float,
    vocabulary=None,
    max_atoms: int | None = None,
    names: Sequence[str] | None = None,
    what: str = "training",
) -> UsableGraphs:
    """Graphs of the structures :func:`motif_screen.graphs.to_graph` accepts (graph dicts pass
    through), the others skipped with their reason (logged); InputError naming the first failures
    when none is usable."""
    if not len(structures):
        raise InputError(f"no structures were given for {what}")
    atom_limit = DEFAULT_MAX_ATOMS if max_atoms is None else max_atoms  # None: to_graph's own default
    out = UsableGraphs([], [])
    for i, structure in enumerate(structures):
        if isinstance(structure, dict):  # a graph built earlier
            out.graphs.append(structure)
            out.kept.append(i)
            continue
        name = str(names[i]) if names is not None else None
        try:
            out.graphs.append(to_graph(structure, cutoff, vocabulary, max_atoms=atom_limit, name=name))
        except InputError as exc:  # its message names the structure (by name, else by formula)
            out.skipped.append(str(exc) if name is not None else f"#{i}: {exc}")
            continue
        out.kept.append(i)
    if not out.graphs:
        raise InputError(
            f"no usable structures for {what}: all {len(structures)} were refused: {skip_summary(out.skipped)}"
        )
    if out.skipped:
        log.warning(
            "skipped %d of %d structures that cannot be graphs: %s",
            len(out.skipped),
            len(structures),
            skip_summary(out.skipped),
        )
    return out
