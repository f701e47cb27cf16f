"""Atom completion, the missing-atom experiment of tensor field networks: put back the atom that
was removed from a structure.

Every remaining atom votes (tensor field networks, Thomas et al. 2018, "missing point"): it emits
element scores (``V x 0e``), a confidence (``0e``) and a displacement (``1o``) from itself to where
it thinks the missing atom is. With ``w = softmax(confidence)`` over the atoms of one structure,

    element scores  = Σ_i w_i · scores_i
    position        = Σ_i w_i · (r_i + d_i)

Because ``w`` is invariant and sums to one and ``d_i`` is a ``1o`` vector, the predicted position
rotates and translates with the structure and the element does not change — by construction, not
by training. The per-atom features come from the shared :class:`motif_screen.model.encoder.Encoder`.
Training and evaluation are :mod:`motif_screen.training.completion`; holes are made by
:func:`motif_screen.graphs.remove_atom`.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from e3nn import o3
from pymatgen.core.periodic_table import Element
from torch import nn

from motif_screen import keys
from motif_screen.errors import InputError, ModelError
from motif_screen.graphs import collate, describe, to_graph
from motif_screen.model.blocks import gate_for
from motif_screen.model.encoder import Encoder, build_encoder

# Output fields of CompletionModel.forward (local to this head, so not in motif_screen.keys).
ELEMENT_LOGITS = "element_logits"  # (B, V) vote-weighted element scores of the missing atom
POSITION = "position"  # (B, 3) voted position of the missing atom, Å
ATOM_WEIGHTS = "atom_weights"  # (N,) softmax(confidence) within each structure
ATOM_VOTES = "atom_votes"  # (N, 3) r_i + d_i, each atom's guess of the position

__all__ = [
    "ATOM_VOTES",
    "ATOM_WEIGHTS",
    "ELEMENT_LOGITS",
    "POSITION",
    "CompletionHead",
    "CompletionModel",
    "build_completion_model",
    "complete",
    "vote",
]


class CompletionHead(nn.Module):
    """Per-atom features -> (element scores, confidence, displacement), one gated layer deep.

    irreps_in: the encoder's node features (must contain ``1o`` channels, else no displacement
    could be expressed). irreps_out: ``V x 0e + 1 x 0e + 1 x 1o`` (scores, confidence, displacement).
    """

    def __init__(self, irreps_in, num_elements: int, hidden_scalars: int = 32, hidden_vectors: int = 8):
        super().__init__()
        self.irreps_in = o3.Irreps(irreps_in)
        if o3.Irrep("1o") not in [ir for _, ir in self.irreps_in]:
            raise ModelError(
                f"the completion head needs 1o (vector) node features to place an atom; got {self.irreps_in}"
            )
        self.num_elements = int(num_elements)
        self.irreps_out = o3.Irreps(f"{self.num_elements}x0e + 1x0e + 1x1o")
        self.gate = gate_for(o3.Irreps(f"{hidden_scalars}x0e + {hidden_vectors}x1o"))
        self.linear_in = o3.Linear(self.irreps_in, self.gate.irreps_in)
        self.linear_out = o3.Linear(self.gate.irreps_out, self.irreps_out)

    def forward(self, node_features: torch.Tensor) -> torch.Tensor:
        return self.linear_out(self.gate(self.linear_in(node_features)))

    def split(self, out: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(element scores (N, V), confidence (N,), displacement (N, 3) in x, y, z)."""
        v = self.num_elements
        return out[:, :v], out[:, v], out[:, v + 1 : v + 4]  # e3nn's 1o basis is (x, y, z): D(R) = R


def vote(
    scores: torch.Tensor,
    confidence: torch.Tensor,
    displacement: torch.Tensor,
    positions: torch.Tensor,
    batch: torch.Tensor,
    num_graphs: int,
) -> dict[str, torch.Tensor]:
    """Confidence-weighted vote of every atom of each structure (a softmax within each structure)."""
    top = torch.full((num_graphs,), -math.inf, dtype=confidence.dtype, device=confidence.device)
    top = top.scatter_reduce(0, batch, confidence.detach(), reduce="amax", include_self=True)
    expo = torch.exp(confidence - top[batch])
    total = torch.zeros(num_graphs, dtype=expo.dtype, device=expo.device).index_add(0, batch, expo)
    weights = expo / total[batch]
    votes = positions + displacement
    position = torch.zeros(num_graphs, 3, dtype=votes.dtype, device=votes.device).index_add(
        0, batch, weights.unsqueeze(1) * votes
    )
    logits = torch.zeros(num_graphs, scores.shape[1], dtype=scores.dtype, device=scores.device).index_add(
        0, batch, weights.unsqueeze(1) * scores
    )
    return {ELEMENT_LOGITS: logits, POSITION: position, ATOM_WEIGHTS: weights, ATOM_VOTES: votes}


class CompletionModel(nn.Module):
    """Encoder + completion head + vote. ``elements``: atomic numbers the missing atom can be.

    Checkpoints with :func:`motif_screen.model.checkpoint.save_checkpoint` (kind ``"completion"``).
    """

    KIND = "completion"

    checkpoint_info: dict[str, Any]  # set by training and by motif_screen.model.checkpoint

    def __init__(self, encoder: Encoder, elements, hidden_scalars: int = 32, hidden_vectors: int = 8):
        super().__init__()
        self.encoder = encoder
        self.elements = tuple(int(z) for z in elements)
        self.hidden = (int(hidden_scalars), int(hidden_vectors))
        self.head = CompletionHead(
            encoder.irreps_out[keys.NODE_FEATURES], len(self.elements), hidden_scalars, hidden_vectors
        )
        self.cutoff = float(encoder.cutoff)
        self.irreps_in = {keys.POSITIONS: o3.Irreps("1o"), keys.CELL: o3.Irreps("3x1o")}
        self.irreps_out = {ELEMENT_LOGITS: o3.Irreps(f"{len(self.elements)}x0e"), POSITION: o3.Irreps("1o")}
        self.model_version: int | None = None  # the ModelVersion number, when loaded from the database
        self.model_name: str | None = None

    @property
    def model_config(self) -> dict:
        """Everything :meth:`from_config` needs to rebuild this architecture."""
        return {
            "encoder": dict(self.encoder.config),
            "elements": list(self.elements),
            "hidden_scalars": self.hidden[0],
            "hidden_vectors": self.hidden[1],
        }

    @classmethod
    def from_config(cls, config: dict) -> CompletionModel:
        return cls(Encoder(**config["encoder"]), config["elements"], config["hidden_scalars"], config["hidden_vectors"])

    @property
    def vocabulary(self) -> tuple[int, ...]:
        """Elements the remaining atoms may be (the encoder's vocabulary)."""
        return tuple(self.encoder.vocabulary)

    def graph(self, structure, name: str | None = None) -> dict[str, torch.Tensor]:
        """The graph of one structure, in this model's cutoff, vocabulary and dtype."""
        return to_graph(
            structure, self.cutoff, vocabulary=self.vocabulary, name=name, dtype=next(self.parameters()).dtype
        )

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        features = self.encoder(batch)[keys.NODE_FEATURES]
        scores, confidence, displacement = self.head.split(self.head(features))
        num_graphs = int(batch[keys.NUM_NODES].shape[0])
        return vote(scores, confidence, displacement, batch[keys.POSITIONS], batch[keys.BATCH], num_graphs)


def build_completion_model(
    elements, preset: str = "S", hidden_scalars: int = 32, hidden_vectors: int = 8, **encoder_overrides
) -> CompletionModel:
    """A fresh completion model whose encoder knows exactly ``elements`` (e.g. H, C, N, O, F)."""
    elements = sorted({int(z) for z in elements})
    encoder_overrides.setdefault("vocabulary", elements)
    encoder = build_encoder(preset, **encoder_overrides)
    return CompletionModel(encoder, elements, hidden_scalars, hidden_vectors)


def complete(model: CompletionModel, structure_with_hole) -> tuple[str, np.ndarray]:
    """(element symbol, Cartesian position in Å) of the atom missing from ``structure_with_hole``.

    Needs at least two atoms: around a lone atom every direction is equivalent, so any equivariant
    model must answer "on top of it" — a meaningless prediction we refuse instead.
    """
    if len(structure_with_hole) < 2:
        raise InputError(
            f"{describe(structure_with_hole)}: completing a structure needs at least 2 atoms "
            "(around a single atom the missing atom's direction is undefined)"
        )
    graph = model.graph(structure_with_hole)
    model.eval()
    with torch.no_grad():
        out = model(collate([graph]))
    element = model.elements[int(out[ELEMENT_LOGITS][0].argmax())]
    return Element.from_Z(element).symbol, out[POSITION][0].double().numpy()
