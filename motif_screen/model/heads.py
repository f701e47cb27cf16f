"""Property heads on the invariant latent: a small deep ensemble with mean–variance outputs.

Why this uncertainty: K independently initialised heads, each trained on its own bootstrap
weighting of the data, give epistemic spread (Lakshminarayanan et al. 2017); each head also
predicts an aleatoric variance (Gaussian NLL). The heads share the encoder, so the ensemble costs
almost nothing at inference (one encoder pass). Because shared-encoder ensembles are known to be
over-confident, the total variance is rescaled per target after training by a factor fitted on a
validation split (Levi et al. 2019 / Kuleshov et al. 2018 "variance scaling"), and the calibration
(1σ/2σ coverage, miscalibration area) is reported by :func:`motif_screen.training.metrics`.
"""

from __future__ import annotations

import math

import torch
from e3nn import o3
from torch import nn

MIN_LOG_VARIANCE = -12.0
# In normalised units the training labels have variance 1: an aleatoric variance above 4 (σ twice
# the labels' own spread) says nothing a constant prediction would not. Unbounded above (it was
# e^6, σ ≈ 20 label spreads), the log-variance of a head extrapolated on unfamiliar latents to
# σ of tens of eV/atom for 5-atom perovskites, and UCB acquisition then chased those.
MAX_LOG_VARIANCE = math.log(4.0)


class EnsembleHeads(nn.Module):
    """K two-layer MLPs evaluated as one batched einsum: latent (B, L) -> mean, log-variance (K, B, T).

    Works in normalised target units; :class:`PropertyModel` holds the per-target normalisation
    and calibration and converts back.
    """

    def __init__(self, latent_dim: int, num_targets: int, ensemble_size: int = 5, hidden: int = 64):
        super().__init__()
        self.irreps_in = o3.Irreps(f"{latent_dim}x0e")
        self.irreps_out = o3.Irreps(f"{2 * num_targets}x0e")
        self.num_targets = int(num_targets)
        self.ensemble_size = int(ensemble_size)
        k, d, h, t = ensemble_size, latent_dim, hidden, num_targets
        self.w1 = nn.Parameter(torch.randn(k, d, h) / math.sqrt(d))
        self.b1 = nn.Parameter(torch.zeros(k, 1, h))
        self.w2 = nn.Parameter(torch.randn(k, h, h) / math.sqrt(h))
        self.b2 = nn.Parameter(torch.zeros(k, 1, h))
        self.w3 = nn.Parameter(torch.randn(k, h, 2 * t) / math.sqrt(h) * 0.1)
        self.b3 = nn.Parameter(torch.zeros(k, 1, 2 * t))

    def forward(self, latent: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        act = torch.nn.functional.silu
        x = act(torch.einsum("bl,klh->kbh", latent, self.w1) + self.b1)
        x = act(torch.bmm(x, self.w2) + self.b2)
        out = torch.bmm(x, self.w3) + self.b3
        mean, log_var = out[..., : self.num_targets], out[..., self.num_targets :]
        return mean, log_var.clamp(MIN_LOG_VARIANCE, MAX_LOG_VARIANCE)


def ensemble_moments(mean: torch.Tensor, log_var: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mixture mean and total variance (aleatoric mean + epistemic spread) over the K heads."""
    mu = mean.mean(0)
    aleatoric = log_var.exp().mean(0)
    epistemic = mean.var(0, unbiased=False) if mean.shape[0] > 1 else torch.zeros_like(mu)
    return mu, aleatoric + epistemic


def heads_nll(mean: torch.Tensor, log_var: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Gaussian negative log-likelihood (without its constant), averaged over the known labels.

    ``mean`` / ``log_var`` (K, B, T) are the heads' outputs and ``target`` (B, T) the labels, both in
    normalised units; NaN marks a missing label."""
    target = target[None].expand_as(mean)
    known = torch.isfinite(target)
    nll = 0.5 * (log_var + (mean - torch.nan_to_num(target)) ** 2 / log_var.exp())
    return nll[known].mean()


class TargetScaler(nn.Module):
    """Per-target shift/scale (fitted on the training labels) and variance calibration factor."""

    # buffers (register_buffer), declared so they type as tensors rather than Module attributes
    shift: torch.Tensor
    scale: torch.Tensor
    std_factor: torch.Tensor

    def __init__(self, num_targets: int):
        super().__init__()
        self.register_buffer("shift", torch.zeros(num_targets))
        self.register_buffer("scale", torch.ones(num_targets))
        self.register_buffer("std_factor", torch.ones(num_targets))

    @torch.no_grad()
    def fit(self, labels: torch.Tensor) -> None:
        """``labels`` (N, T) with NaN for missing values."""
        for t in range(labels.shape[1]):
            col = labels[:, t]
            col = col[torch.isfinite(col)]
            if col.numel():
                self.shift[t] = col.mean()
                self.scale[t] = col.std().clamp(min=1e-6) if col.numel() > 1 else 1.0

    def normalise(self, labels: torch.Tensor) -> torch.Tensor:
        return (labels - self.shift) / self.scale

    def denormalise(self, mean: torch.Tensor, var: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return mean * self.scale + self.shift, var.sqrt() * self.scale * self.std_factor
