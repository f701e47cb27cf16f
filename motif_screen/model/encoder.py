"""The equivariant encoder: structure graph -> per-atom features -> per-structure latent.

Crystals and molecules go through the same network: only edge vectors (which include the cell
shifts) reach it, so periodicity lives entirely in the neighbour list.
"""

from __future__ import annotations

import torch
from e3nn import o3
from torch import nn

from motif_screen import keys
from motif_screen.errors import InputError
from motif_screen.graphs import edge_vectors
from motif_screen.model.blocks import Interaction, MeanPool, RadialEmbedding, hidden_irreps
from motif_screen.model.presets import encoder_config


class Encoder(nn.Module):
    """Species embedding, ``layers`` tensor-field interactions, readout and mean pooling.

    forward(batch) -> {NODE_FEATURES (N, irreps_hidden), NODE_INVARIANTS (N, channels),
    LATENT (B, latent_dim) invariant, LATENT_EQUIVARIANT (B, latent_vectors x 1o)}.
    """

    species_lookup: torch.Tensor  # buffer: atomic number -> vocabulary index (-1 outside it)

    def __init__(
        self,
        *,
        cutoff,
        lmax,
        channels,
        layers,
        latent_dim,
        latent_vectors,
        num_basis,
        radial_hidden,
        avg_num_neighbors,
        polynomial_p,
        vocabulary,
        preset="custom",
    ):
        super().__init__()
        self.config = dict(
            cutoff=float(cutoff),
            lmax=int(lmax),
            channels=int(channels),
            layers=int(layers),
            latent_dim=int(latent_dim),
            latent_vectors=int(latent_vectors),
            num_basis=int(num_basis),
            radial_hidden=int(radial_hidden),
            avg_num_neighbors=float(avg_num_neighbors),
            polynomial_p=int(polynomial_p),
            vocabulary=[int(z) for z in vocabulary],
            preset=preset,
        )
        self.cutoff = float(cutoff)
        self.vocabulary = tuple(int(z) for z in vocabulary)
        self.latent_dim = int(latent_dim)
        self.channels = int(channels)
        lookup = torch.full((119,), -1, dtype=torch.long)
        lookup[torch.tensor(self.vocabulary)] = torch.arange(len(self.vocabulary))
        self.register_buffer("species_lookup", lookup, persistent=False)

        self.irreps_sh = o3.Irreps.spherical_harmonics(lmax)
        self.irreps_hidden = hidden_irreps(channels, lmax)
        self.irreps_latent_equivariant = o3.Irreps(f"{latent_vectors}x1o")
        self.irreps_in = {keys.POSITIONS: o3.Irreps("1o"), keys.CELL: o3.Irreps("3x1o")}
        self.irreps_out = {
            keys.NODE_FEATURES: self.irreps_hidden,
            keys.NODE_INVARIANTS: o3.Irreps(f"{channels}x0e"),
            keys.LATENT: o3.Irreps(f"{latent_dim}x0e"),
            keys.LATENT_EQUIVARIANT: self.irreps_latent_equivariant,
        }

        self.embedding = nn.Embedding(len(self.vocabulary), channels)
        self.spherical_harmonics = o3.SphericalHarmonics(self.irreps_sh, normalize=True, normalization="component")
        self.radial = RadialEmbedding(cutoff, num_basis, polynomial_p)
        irreps = o3.Irreps(f"{channels}x0e")
        blocks = []
        for _ in range(layers):
            blocks.append(
                Interaction(irreps, self.irreps_sh, self.irreps_hidden, num_basis, radial_hidden, avg_num_neighbors)
            )
            irreps = self.irreps_hidden
        self.interactions = nn.ModuleList(blocks)
        self.readout = o3.Linear(self.irreps_hidden, o3.Irreps(f"{latent_dim}x0e") + self.irreps_latent_equivariant)
        self.pool = MeanPool(self.readout.irreps_out)

    def species_index(self, atomic_numbers: torch.Tensor) -> torch.Tensor:
        index = self.species_lookup[atomic_numbers.clamp(0, 118)]
        if bool((index < 0).any()):
            bad = sorted(set(atomic_numbers[index < 0].tolist()))
            raise InputError(f"atomic number(s) {bad} are outside this model's element vocabulary")
        return index

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        vectors = edge_vectors(batch)
        src, dst = batch[keys.EDGE_INDEX]
        lengths = torch.linalg.norm(vectors, dim=1)
        edge_sh = self.spherical_harmonics(vectors)
        edge_radial = self.radial(lengths)
        x = self.embedding(self.species_index(batch[keys.ATOMIC_NUMBERS])).to(vectors.dtype)
        for block in self.interactions:
            x = block(x, edge_sh, edge_radial, src, dst)
        num_graphs = int(batch[keys.NUM_NODES].shape[0])
        pooled = self.pool(self.readout(x), batch[keys.BATCH], num_graphs)
        return {
            keys.NODE_FEATURES: x,
            keys.NODE_INVARIANTS: x[:, : self.channels],
            keys.LATENT: pooled[:, : self.latent_dim],
            keys.LATENT_EQUIVARIANT: pooled[:, self.latent_dim :],
        }


def build_encoder(preset: str = "S", **overrides) -> Encoder:
    """An :class:`Encoder` of a named size (see :mod:`motif_screen.model.presets`), with overrides."""
    return Encoder(**encoder_config(preset, **overrides))
