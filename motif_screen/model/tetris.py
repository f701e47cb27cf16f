"""A classifier of the eight 3D Tetris shapes (:mod:`motif_screen.training.tetris`) on the encoder.

The shapes' mirror pair can only be told apart by a pseudoscalar (``0o``) feature, which the
encoder's natural-parity features do not carry; the classifier builds one from a triple product.
"""

from __future__ import annotations

import torch
from e3nn import o3
from torch import nn

from motif_screen import keys
from motif_screen.model.encoder import Encoder, build_encoder

__all__ = ["TetrisClassifier", "build_tetris_classifier"]


def build_tetris_classifier(preset: str = "S", **encoder_overrides) -> TetrisClassifier:
    """A :class:`TetrisClassifier` on a fresh encoder (vocabulary: carbon only, the shapes' element)."""
    encoder_overrides.setdefault("vocabulary", [6])
    return TetrisClassifier(build_encoder(preset, **encoder_overrides))


class TetrisClassifier(nn.Module):
    """Encoder node features -> 7 scalars + 1 pseudoscalar per atom -> mean -> 8 class logits.

    The encoder's features have natural parity only (0e, 1o, 2e...), which cannot tell a shape
    from its mirror image. A triple product (v₁ × v₂) · v₃ of the atoms' vector features is a
    pseudoscalar (0o) that can: the mirror pair gets logits ``s ± p``, which swap under
    inversion exactly as the two shapes do. irreps_out: ``7x0e + 1x0o`` (before the logits).
    """

    def __init__(self, encoder: Encoder, cross_channels: int = 8):
        super().__init__()
        self.encoder = encoder
        irreps_node = o3.Irreps(encoder.irreps_out[keys.NODE_FEATURES])
        self.irreps_in = {keys.POSITIONS: o3.Irreps("1o"), keys.CELL: o3.Irreps("3x1o")}
        self.irreps_out = o3.Irreps("7x0e + 1x0o")
        self.cross = o3.FullyConnectedTensorProduct(irreps_node, irreps_node, f"{cross_channels}x1e")
        self.triple = o3.FullyConnectedTensorProduct(f"{cross_channels}x1e", irreps_node, "1x0o")
        self.scalars = o3.Linear(irreps_node, "7x0e")

    def features(self, batch):
        x = self.encoder(batch)[keys.NODE_FEATURES]
        per_atom = torch.cat([self.scalars(x), self.triple(self.cross(x, x), x)], dim=1)
        num_graphs = int(batch[keys.NUM_NODES].shape[0])
        total = torch.zeros(num_graphs, 8, dtype=x.dtype, device=x.device).index_add(0, batch[keys.BATCH], per_atom)
        return total / batch[keys.NUM_NODES].to(x.dtype).unsqueeze(1)

    def forward(self, batch):
        f = self.features(batch)
        chiral, pseudo = f[:, 6:7], f[:, 7:8]
        return torch.cat([chiral + pseudo, chiral - pseudo, f[:, :6]], dim=1)  # the mirror pair is classes 0 and 1
