"""Ensemble heads, normalisation and the calibration metrics they are judged by."""

from __future__ import annotations

import numpy as np
import torch

from motif_screen.model import EnsembleHeads, TargetScaler, ensemble_moments
from motif_screen.training.metrics import coverage, miscalibration_area, regression_metrics, std_scale_factor


def test_heads_shapes_and_clamped_variance():
    torch.manual_seed(0)
    heads = EnsembleHeads(latent_dim=16, num_targets=3, ensemble_size=4, hidden=8)
    mean, log_var = heads(torch.randn(5, 16) * 1e3)
    assert mean.shape == log_var.shape == (4, 5, 3)
    assert log_var.min() >= -12 and log_var.max() <= 6


def test_ensemble_moments_add_spread_to_aleatoric_variance():
    mean = torch.tensor([[[1.0]], [[3.0]]])  # two heads disagree by 2
    log_var = torch.zeros(2, 1, 1)  # each says variance 1
    mu, var = ensemble_moments(mean, log_var)
    assert mu.item() == 2.0 and var.item() == 2.0  # 1 (aleatoric) + 1 (spread)


def test_scaler_ignores_missing_labels_and_round_trips():
    scaler = TargetScaler(2)
    labels = torch.tensor([[1.0, float("nan")], [3.0, 10.0], [5.0, 20.0]])
    scaler.fit(labels)
    assert scaler.shift.tolist() == [3.0, 15.0]
    z = scaler.normalise(labels)
    mean, std = scaler.denormalise(z, torch.ones_like(z))
    torch.testing.assert_close(mean[1:], labels[1:])
    torch.testing.assert_close(std[0], scaler.scale)


def test_calibration_metrics_on_gaussian_errors():
    rng = np.random.default_rng(0)
    y = rng.normal(size=20000)
    mean, std = np.zeros_like(y), np.ones_like(y)
    assert abs(coverage(y, mean, std, 1) - 0.683) < 0.01
    assert abs(coverage(y, mean, std, 2) - 0.954) < 0.01
    assert miscalibration_area(y, mean, std) < 0.01
    assert miscalibration_area(y, mean, 0.3 * std) > 0.2  # over-confident is caught
    assert abs(std_scale_factor(y, mean, 0.5 * std) - 2.0) < 0.05  # and the recalibration fixes it
    # a few huge errors (a broken cell's oracle value) must not inflate sigma for everything else
    tailed = y.copy()
    tailed[:200] = 50.0
    assert abs(std_scale_factor(tailed, mean, std) - 1.0) < 0.05
    assert np.sqrt(np.mean(tailed**2)) > 4.0  # what the likelihood-optimal factor would have been
    metrics = regression_metrics(np.append(y, np.nan), np.append(mean, 0.0), np.append(std, 1.0))
    assert metrics["count"] == 20000 and abs(metrics["mae"] - np.sqrt(2 / np.pi)) < 0.02
