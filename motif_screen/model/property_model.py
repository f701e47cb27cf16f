"""PropertyModel: encoder + ensemble heads for several targets, with calibrated uncertainty.

The object screening code holds: ``predict(structures)`` gives calibrated mean ± std per target
in the targets' own units, ``encode(structures)`` gives the invariant latent used for
de-duplication, maps and the decoder.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from motif_screen import keys
from motif_screen.graphs import DEFAULT_MAX_ATOMS, collate, to_batch, to_graph
from motif_screen.model.encoder import Encoder, build_encoder
from motif_screen.model.heads import EnsembleHeads, TargetScaler, ensemble_moments
from motif_screen.model.presets import encoder_config

MEAN = "mean"
STD = "std"


class PropertyModel(nn.Module):
    """forward(batch) -> {LATENT, "mean" (B, T), "std" (B, T), "head_mean"/"head_log_var" (K, B, T)}.

    "mean"/"std" are in target units with the calibration factor applied; the head outputs are in
    normalised units (what the loss uses).
    """

    KIND = "property"  # checkpoint kind (motif_screen.model.builders)

    checkpoint_info: dict[str, Any]  # set by training and by motif_screen.model.checkpoint

    def __init__(self, encoder: Encoder, targets: Sequence[str], ensemble_size: int = 5, head_hidden: int = 64):
        super().__init__()
        if not targets:
            raise ValueError("a PropertyModel needs at least one target")
        self.encoder = encoder
        self.targets = list(targets)
        self.heads = EnsembleHeads(encoder.latent_dim, len(self.targets), ensemble_size, head_hidden)
        self.scaler = TargetScaler(len(self.targets))
        self.head_hidden = int(head_hidden)
        self.irreps_in = encoder.irreps_in
        self.irreps_out = {keys.LATENT: encoder.irreps_out[keys.LATENT], MEAN: self.heads.irreps_out}
        self.model_version: int | None = None  # the ModelVersion number, when loaded from the database
        self.model_name: str | None = None

    # --- construction ------------------------------------------------------------------------
    @property
    def model_config(self) -> dict:
        """Everything needed to rebuild this architecture (JSON/weights_only-safe primitives)."""
        return {
            "encoder": dict(self.encoder.config),
            "targets": list(self.targets),
            "ensemble_size": self.heads.ensemble_size,
            "head_hidden": self.head_hidden,
        }

    @classmethod
    def from_config(cls, config: dict) -> PropertyModel:
        enc = dict(config["encoder"])
        preset = enc.pop("preset", "S")
        encoder = Encoder(**encoder_config(preset, **enc))
        return cls(encoder, config["targets"], config.get("ensemble_size", 5), config.get("head_hidden", 64))

    @property
    def cutoff(self) -> float:
        return self.encoder.cutoff

    @property
    def vocabulary(self) -> tuple[int, ...]:
        return self.encoder.vocabulary

    # --- forward -----------------------------------------------------------------------------
    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        encoded = self.encoder(batch)
        head_mean, head_log_var = self.heads(encoded[keys.LATENT])
        mu, var = ensemble_moments(head_mean, head_log_var)
        mean, std = self.scaler.denormalise(mu, var)
        return {
            keys.LATENT: encoded[keys.LATENT],
            MEAN: mean,
            STD: std,
            "head_mean": head_mean,
            "head_log_var": head_log_var,
        }

    # --- convenience for screening -------------------------------------------------------------
    def graphs(self, structures: Iterable, max_atoms: int = DEFAULT_MAX_ATOMS) -> list[dict[str, torch.Tensor]]:
        return [to_graph(s, self.cutoff, self.vocabulary, max_atoms) for s in structures]

    def _batches(self, structures, batch_size: int):
        structures = list(structures)
        for start in range(0, len(structures), batch_size):
            chunk = structures[start : start + batch_size]
            if any(isinstance(s, dict) for s in chunk):  # graphs given (training data, edited graphs)
                yield collate([s if isinstance(s, dict) else to_graph(s, self.cutoff, self.vocabulary) for s in chunk])
            else:
                yield to_batch(chunk, self.cutoff, self.vocabulary)

    @torch.inference_mode()
    def predict(self, structures, batch_size: int = 64) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """{target: (mean, std)} in target units; std is the calibrated 1σ. Accepts graphs too."""
        was_training = self.training
        self.eval()
        means, stds = [], []
        for batch in self._batches(structures, batch_size):
            out = self(batch)
            means.append(out[MEAN].double().numpy())
            stds.append(out[STD].double().numpy())
        self.train(was_training)
        if not means:
            return {t: (np.zeros(0), np.zeros(0)) for t in self.targets}
        mean, std = np.concatenate(means), np.concatenate(stds)
        return {t: (mean[:, i], std[:, i]) for i, t in enumerate(self.targets)}

    @torch.inference_mode()
    def encode(self, structures, batch_size: int = 64) -> np.ndarray:
        """(B, latent_dim) invariant latent vectors."""
        was_training = self.training
        self.eval()
        parts = [self.encoder(b)[keys.LATENT].double().numpy() for b in self._batches(structures, batch_size)]
        self.train(was_training)
        return np.concatenate(parts) if parts else np.zeros((0, self.encoder.latent_dim))


def build_property_model(
    targets: Sequence[str], preset: str = "S", ensemble_size: int = 5, head_hidden: int = 64, **encoder_overrides
) -> PropertyModel:
    return PropertyModel(build_encoder(preset, **encoder_overrides), targets, ensemble_size, head_hidden)
