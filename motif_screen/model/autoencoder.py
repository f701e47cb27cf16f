"""The structure autoencoder: e3nn encoder -> latent (a VAE point) -> property heads and decoder.

The encoder's invariant latent is mapped to a Gaussian (mean, log-variance); its mean is "the
latent" of a structure everywhere in motif_screen (stored on candidates, plotted, perturbed). A
small KL term keeps encoded structures near N(0, I); generation then samples a Gaussian mixture
fitted to the encoded training set (:meth:`StructureAutoencoder.fit_latent_prior`), because with a
KL weight small enough to keep compositions decodable the encodings do not fill N(0, I). Property heads sit
on the same latent so that their gradients can steer generation.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from pymatgen.core import Lattice, Molecule, Structure
from torch import nn

from motif_screen import keys, limits
from motif_screen.errors import InputError
from motif_screen.graphs import collate, to_batch, to_graph
from motif_screen.model.decoder import Decoder, DecoderConfig
from motif_screen.model.encoder import Encoder, build_encoder
from motif_screen.model.heads import EnsembleHeads, TargetScaler, ensemble_moments, heads_nll
from motif_screen.model.latent_prior import fit_gaussian_mixture

__all__ = ["AutoencoderConfig", "StructureAutoencoder", "build_autoencoder", "to_structures"]


@dataclass
class AutoencoderConfig:
    """Everything needed to rebuild the model; stored in its checkpoint."""

    elements: list[int]
    periodic: bool = True
    encoder_preset: str = "S"
    encoder_options: dict = field(default_factory=dict)
    latent_dim: int = 32
    properties: list[str] = field(default_factory=list)  # names from motif_screen.keys
    ensemble_size: int = 5
    kl_weight: float = 0.01
    loss_weights: dict = field(
        default_factory=lambda: {"num_atoms": 1.0, "composition": 1.0, "lattice": 10.0, "coords": 1.0, "property": 1.0}
    )
    decoder: dict = field(default_factory=dict)  # DecoderConfig fields other than latent_dim/elements/periodic
    prior_components: int = 1  # Gaussians in the latent prior; set by fit_latent_prior

    def to_dict(self) -> dict:
        return asdict(self)


class StructureAutoencoder(nn.Module):
    """Encoder + latent Gaussian + heads + decoder; see the module docstring."""

    KIND = "autoencoder"  # checkpoint kind (motif_screen.model.builders)

    # buffers (register_buffer): the latent prior, see __init__ and _set_mixture
    prior_mean: torch.Tensor
    prior_scale_tril: torch.Tensor
    prior_weights: torch.Tensor
    prior_means: torch.Tensor
    prior_scale_trils: torch.Tensor
    checkpoint_info: dict[str, Any]  # set by training and by motif_screen.model.checkpoint

    def __init__(self, config: AutoencoderConfig, encoder: Encoder | None = None):
        super().__init__()
        self.config = config
        self.encoder = (
            encoder
            if encoder is not None
            else build_encoder(config.encoder_preset, vocabulary=list(config.elements), **config.encoder_options)
        )
        # the pooled encoder latent plus the composition (element fractions): the encoder's first
        # interaction sees neighbours only, so composition reaches its latent only indirectly
        enc_dim = int(self.encoder.latent_dim) + len(config.elements)
        self.to_mean = nn.Linear(enc_dim, config.latent_dim)
        self.to_logvar = nn.Linear(enc_dim, config.latent_dim)
        # start with small posterior noise (std ~0.05): with unit noise the decoder first sees
        # only noise and reconstruction learns very slowly; the KL term widens it as needed
        nn.init.zeros_(self.to_logvar.weight)
        nn.init.constant_(self.to_logvar.bias, -6.0)
        decoder_config = DecoderConfig(
            latent_dim=config.latent_dim, elements=list(config.elements), periodic=config.periodic, **config.decoder
        )
        self.decoder = Decoder(decoder_config)
        # checkpoints record every decoder option, so a later change of a default cannot rebuild
        # a saved model differently
        config.decoder = {
            k: v for k, v in decoder_config.to_dict().items() if k not in ("latent_dim", "elements", "periodic")
        }
        # ensemble property heads on the VAE latent (so their gradients can steer decoding)
        self.heads = (
            EnsembleHeads(config.latent_dim, len(config.properties), config.ensemble_size)
            if config.properties
            else None
        )
        self.target_scaler = TargetScaler(max(len(config.properties), 1))
        # the latent distribution generation samples from: N(0, I) until fitted to the encoded
        # training set (see fit_latent_prior). prior_mean / prior_scale_tril: one Gaussian over all
        # of it (the shape of perturbation steps); prior_weights / _means / _scale_trils: the mixture
        # that prior samples come from (one component = that Gaussian)
        self.register_buffer("prior_mean", torch.zeros(config.latent_dim))
        self.register_buffer("prior_scale_tril", torch.eye(config.latent_dim))
        self._set_mixture(
            torch.ones(config.prior_components) / config.prior_components,
            torch.zeros(config.prior_components, config.latent_dim),
            torch.eye(config.latent_dim).repeat(config.prior_components, 1, 1),
        )
        self.model_version: int | None = None  # the ModelVersion number, when loaded from the database
        self.model_name: str | None = None

    @property
    def model_config(self) -> dict:
        return self.config.to_dict()

    @classmethod
    def from_config(cls, config: dict) -> StructureAutoencoder:
        """Rebuild from the ``model_config`` a checkpoint records."""
        return cls(AutoencoderConfig(**config))

    @property
    def latent_dim(self) -> int:
        return self.config.latent_dim

    @property
    def cutoff(self) -> float:
        return float(getattr(self.encoder, "cutoff", 5.0))

    # -- graphs ------------------------------------------------------------------------------------
    def graphs(self, structures: Sequence, names: Sequence[str] | None = None) -> dict[str, torch.Tensor]:
        """A collated batch of the encoder's graphs; unreadable structures raise InputError."""
        if not structures:
            raise InputError("no structures were given to encode")
        for i, s in enumerate(structures):
            name = names[i] if names else None
            if not (hasattr(s, "cart_coords") or hasattr(s, "get_positions")):
                raise InputError(
                    f"{name or f'input {i}'} is a {type(s).__name__}, not a pymatgen Structure/Molecule or ASE Atoms"
                )
            periodic = hasattr(s, "lattice") or (hasattr(s, "get_pbc") and bool(s.get_pbc().any()))
            if periodic != self.config.periodic:
                kind = "crystal" if self.config.periodic else "molecule"
                raise InputError(
                    f"{name or getattr(s, 'formula', 'structure')} is not a {kind}, which this model decodes"
                )
        return to_batch(structures, self.cutoff, vocabulary=self.config.elements, names=names)

    # -- encoding ----------------------------------------------------------------------------------
    def composition_features(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """(B, E) element fractions of each structure over the model's vocabulary."""
        species = self.decoder.species_index(batch[keys.ATOMIC_NUMBERS])
        num_nodes = batch[keys.NUM_NODES]
        counts = torch.zeros(len(num_nodes), len(self.config.elements), dtype=batch[keys.POSITIONS].dtype)
        counts.index_put_((batch[keys.BATCH], species), torch.ones_like(species, dtype=counts.dtype), accumulate=True)
        return counts / num_nodes[:, None].to(counts.dtype)

    def encode_batch(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        h = torch.cat([self.encoder(batch)[keys.LATENT], self.composition_features(batch)], dim=-1)
        return self.to_mean(h), self.to_logvar(h).clamp(-10.0, 5.0)

    def encode(self, structures: Sequence, names: Sequence[str] | None = None, batch_size: int = 256) -> torch.Tensor:
        """Latent means (B, latent_dim) of pymatgen structures / molecules."""
        out = []
        with torch.no_grad():
            for start in range(0, len(structures), batch_size):
                chunk = structures[start : start + batch_size]
                sub_names = names[start : start + batch_size] if names else None
                out.append(self.encode_batch(self.graphs(chunk, sub_names))[0])
        return torch.cat(out) if out else torch.zeros(0, self.latent_dim)

    def check_latent(self, latent: torch.Tensor) -> torch.Tensor:
        latent = torch.as_tensor(latent, dtype=torch.get_default_dtype())
        if latent.dim() == 1:
            latent = latent[None]
        if latent.dim() != 2 or latent.shape[1] != self.latent_dim:
            raise InputError(
                f"latent vectors must have {self.latent_dim} components for this model, got shape {tuple(latent.shape)}"
            )
        if not torch.isfinite(latent).all():
            raise InputError("latent vectors contain NaN or infinite values")
        return latent

    def check_counts(self, counts, expected: int) -> None:
        """Per-latent element counts over the vocabulary: right length, >= 0, at least one atom."""
        if len(counts) != expected:
            raise InputError(f"got {len(counts)} compositions for {expected} latent vectors")
        for row in counts:
            if len(row) != len(self.config.elements) or any(int(c) != c or c < 0 for c in row):
                raise InputError(
                    "a composition must give a non-negative integer count for each of the model's "
                    f"{len(self.config.elements)} elements"
                )
            if sum(row) < 1:
                raise InputError("a composition with zero atoms cannot be decoded")

    # -- the latent prior --------------------------------------------------------------------------
    def _set_mixture(self, weights: torch.Tensor, means: torch.Tensor, scale_trils: torch.Tensor) -> None:
        dtype = self.prior_mean.dtype
        self.register_buffer("prior_weights", weights.to(dtype))
        self.register_buffer("prior_means", means.to(dtype))
        self.register_buffer("prior_scale_trils", scale_trils.to(dtype))
        self.config.prior_components = len(weights)

    @torch.no_grad()
    def fit_latent_prior(self, latents: torch.Tensor, components: int | str = 1, seed: int = 0) -> dict:
        """Fit the latent prior to the latent means of the training set; returns what was chosen.

        Why: with the small KL weight that keeps compositions decodable, encoded structures do not
        fill N(0, I); decoding draws from where they actually lie (the aggregate posterior) gives
        structures like the training data instead of off-manifold latents. One full-covariance
        Gaussian describes that cloud poorly — it is a set of families, and a single Gaussian puts
        samples between them — so ``components`` > 1 fits a Gaussian mixture (ex-post density
        estimation, as for regularised autoencoders, Ghosh et al. 2020); ``"auto"`` picks the
        number by log-likelihood on a held-out fifth of the latents, then refits on all of them.
        """
        latents = latents.detach().to(self.prior_mean.dtype)
        if len(latents) < 2:
            raise InputError("fitting the latent prior needs at least 2 encoded structures")
        mean = latents.mean(0)
        cov = torch.cov(latents.T) + PRIOR_REG * torch.eye(self.latent_dim, dtype=latents.dtype)
        self.prior_mean.copy_(mean)
        self.prior_scale_tril.copy_(torch.linalg.cholesky(cov))
        weights, means, trils, summary = fit_gaussian_mixture(latents, components, PRIOR_REG, seed)
        if weights is None:  # one component: the Gaussian above
            weights, means, trils = torch.ones(1), mean[None], self.prior_scale_tril[None]
        self._set_mixture(weights, means, trils)
        return summary

    def sample_latents(
        self,
        n: int,
        generator: torch.Generator | None = None,
        temperature: float = 1.0,
        centres: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """(n, latent_dim) draws from the latent prior, each component's spread scaled by
        ``temperature``; with ``centres`` (n, latent_dim) steps shaped like the whole prior's
        Gaussian, scaled the same way, around those points instead."""
        eps = torch.randn((n, self.latent_dim), generator=generator, dtype=self.prior_mean.dtype)
        if centres is not None:
            return centres + float(temperature) * eps @ self.prior_scale_tril.T
        if len(self.prior_weights) == 1:
            return self.prior_means[0] + float(temperature) * eps @ self.prior_scale_trils[0].T
        which = torch.multinomial(self.prior_weights, n, replacement=True, generator=generator)
        return self.prior_means[which] + float(temperature) * torch.einsum(
            "nij,nj->ni", self.prior_scale_trils[which], eps
        )

    def latent_prior_energy(self, latent: torch.Tensor) -> torch.Tensor:
        """(B,) negative log-density of the prior up to a constant (differentiable: guided sampling
        adds it to keep optimised latents where structures live)."""
        diff = (latent[None] - self.prior_means[:, None, :]).transpose(1, 2)  # (K, D, B)
        white = torch.linalg.solve_triangular(self.prior_scale_trils, diff, upper=False)
        log_det = torch.log(torch.diagonal(self.prior_scale_trils, dim1=-2, dim2=-1)).sum(-1)  # (K,)
        log_component = torch.log(self.prior_weights)[:, None] - 0.5 * (white**2).sum(1) - log_det[:, None]
        return -torch.logsumexp(log_component, dim=0)

    # -- heads -------------------------------------------------------------------------------------
    def predict_properties(self, latent: torch.Tensor) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        """property -> (mean, std) in the property's units, differentiable in ``latent``."""
        if self.heads is None:
            return {}
        mean, var = ensemble_moments(*self.heads(latent))
        mean, std = self.target_scaler.denormalise(mean, var)
        return {name: (mean[:, i], std[:, i]) for i, name in enumerate(self.config.properties)}

    # -- training ----------------------------------------------------------------------------------
    def losses(self, batch: dict[str, torch.Tensor], targets: torch.Tensor | None = None, generator=None) -> dict:
        """Every loss term (unweighted) for one collated batch; ``targets`` (B, P) in
        ``config.properties`` order, NaN = missing."""
        mean, logvar = self.encode_batch(batch)
        eps = torch.randn(mean.shape, generator=generator, dtype=mean.dtype).to(mean.device)
        z = mean + eps * torch.exp(0.5 * logvar) if self.training else mean
        species = self.decoder.species_index(batch[keys.ATOMIC_NUMBERS])
        cell = batch[keys.CELL] if self.config.periodic else None
        out = self.decoder.losses(z, species, batch[keys.NUM_NODES], batch[keys.POSITIONS], cell, generator=generator)
        out["kl"] = (-0.5 * (1 + logvar - mean**2 - logvar.exp()).sum(-1)).mean()
        if self.heads is not None and targets is not None and torch.isfinite(targets).any():
            head_mean, head_log_var = self.heads(mean)
            out["property"] = heads_nll(head_mean, head_log_var, self.target_scaler.normalise(targets))
        return out

    def total_loss(self, terms: dict) -> torch.Tensor:
        w = self.config.loss_weights
        total = self.config.kl_weight * terms["kl"]
        for name, value in terms.items():
            if name == "kl":
                continue
            total = total + w.get(name, 1.0) * value
        return total

    # -- decoding ----------------------------------------------------------------------------------
    def decode(
        self,
        latent: torch.Tensor,
        counts=None,
        steps: int | None = None,
        generator=None,
        batch_size: int = 512,
        candidates: int | None = None,
        accept: Callable[[list[int]], bool] | None = None,
    ) -> list:
        """Latents -> pymatgen Structures (crystals) or Molecules.

        The flow is a stochastic decoder: from different noise it lands on different structures, not
        all of them the one the latent describes. With ``candidates`` K > 1 (default: the model's
        ``decoder.config.candidates``) each latent is decoded K times and the structure whose own
        encoding lies closest to the latent is kept: the encoder recognises its structure
        (measured on perov-5 in benchmarks/README.md). Without ``counts`` the decoder predicts the
        compositions; ``accept`` (per-element counts over the vocabulary -> bool), when given,
        restricts them to ones it accepts (see ``Decoder.predict_counts``): generation passes its
        chemistry rules this way."""
        latent = self.check_latent(latent)
        k = int(
            limits.DECODE_CANDIDATES.check(
                candidates if candidates is not None else self.decoder.config.candidates, "candidates"
            )
        )
        if counts is not None:
            self.check_counts(counts, len(latent))
        chunk = max(batch_size // k, 1)
        structures = []
        for start in range(0, len(latent), chunk):
            sub = latent[start : start + chunk]
            if counts is not None:
                sub_counts = counts[start : start + chunk]
            else:
                sub_counts = self.decoder.predict_counts(sub, accept=accept)
            if k > 1:
                sub = sub.repeat_interleave(k, 0)
                sub_counts = [row for row in sub_counts for _ in range(k)]
            decoded = to_structures(self.decoder.decode(sub, sub_counts, steps=steps, generator=generator))
            if k > 1:
                best = self.latent_distance(decoded, sub).view(-1, k).argmin(1)
                decoded = [decoded[i * k + int(j)] for i, j in enumerate(best)]
            structures.extend(decoded)
        return structures

    def latent_distance(self, structures: Sequence, latents: torch.Tensor, batch_size: int = 512) -> torch.Tensor:
        """(B,) squared distance between each structure's latent mean and ``latents``; infinite for a
        structure the encoder refuses (overlapping atoms, no atoms, ...)."""
        distance = torch.full((len(structures),), torch.inf, dtype=latents.dtype)
        readable, graphs = [], []
        for i, s in enumerate(structures):
            try:
                graphs.append(to_graph(s, self.cutoff, vocabulary=self.config.elements))
                readable.append(i)
            except InputError:
                continue
        with torch.no_grad():
            for start in range(0, len(graphs), batch_size):
                idx = readable[start : start + batch_size]
                mean, _ = self.encode_batch(collate(graphs[start : start + batch_size]))
                distance[idx] = ((mean - latents[idx]) ** 2).sum(-1)
        return distance


PRIOR_REG = 1e-4  # added to every covariance of the latent prior (latents have unit-order spread)


def to_structures(decoded) -> list[Structure | Molecule]:
    """A :class:`~motif_screen.model.decoder.DecodedBatch` as pymatgen objects."""
    out: list[Structure | Molecule] = []
    ends = torch.cumsum(decoded.num_nodes, 0).tolist()
    starts = [0] + ends[:-1]
    for b, (s, e) in enumerate(zip(starts, ends)):
        numbers = decoded.atomic_numbers[s:e].tolist()
        if decoded.cell is not None:
            lattice = Lattice(decoded.cell[b].double().numpy())
            out.append(
                Structure(lattice, numbers, decoded.frac_coords[s:e].double().numpy(), coords_are_cartesian=False)
            )
        else:
            out.append(Molecule(numbers, decoded.positions[s:e].double().numpy()))
    return out


def build_autoencoder(config: AutoencoderConfig | dict, encoder: Encoder | None = None) -> StructureAutoencoder:
    if isinstance(config, dict):
        config = AutoencoderConfig(**config)
    return StructureAutoencoder(config, encoder=encoder)
