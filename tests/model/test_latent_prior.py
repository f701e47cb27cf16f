"""The latent prior: a Gaussian mixture chosen by held-out likelihood, old one-Gaussian checkpoints,
sampling and the differentiable prior energy, and refitting a trained recipe's prior."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from motif_screen.errors import ConfigError, InputError
from motif_screen.model.checkpoint import load_autoencoder, save_autoencoder
from motif_screen.model.latent_prior import fit_gaussian_mixture

from tests.model.test_autoencoder import DATA, TINY, _write_csv, tiny_model


def clusters(n_per=150, dim=4, centres=((-6, 0), (6, 0), (0, 8)), seed=0):
    """Three tight, well separated clouds: what a single Gaussian describes badly."""
    g = torch.Generator().manual_seed(seed)
    points = []
    for cx, cy in centres:
        centre = torch.zeros(dim)
        centre[0], centre[1] = cx, cy
        points.append(centre + 0.3 * torch.randn(n_per, dim, generator=g))
    return torch.cat(points)


def test_auto_picks_several_components_for_separate_clusters_and_one_for_one_gaussian():
    weights, means, trils, summary = fit_gaussian_mixture(clusters(), "auto", 1e-4)
    assert summary["prior_components"] >= 3 and len(weights) == summary["prior_components"]
    assert summary["prior_heldout_loglik_k1"] < summary[f"prior_heldout_loglik_k{summary['prior_components']}"]
    assert torch.isclose(weights.sum(), torch.tensor(1.0)) and trils.shape == (len(weights), 4, 4)
    one = torch.randn(600, 4, generator=torch.Generator().manual_seed(1))
    assert fit_gaussian_mixture(one, "auto", 1e-4)[3]["prior_components"] in (1, 2)
    # too few points for more than one component per latent dimension: a single Gaussian
    assert fit_gaussian_mixture(one[:6], "auto", 1e-4)[0] is None


@pytest.mark.parametrize("bad", [0, -1, "many", 10_000])
def test_impossible_component_counts_are_refused(bad):
    with pytest.raises(InputError, match="prior components"):
        fit_gaussian_mixture(clusters(), bad, 1e-4)


def test_mixture_prior_samples_the_clusters_not_the_space_between():
    model = tiny_model(latent_dim=4)
    latents = clusters()
    summary = model.fit_latent_prior(latents, "auto")
    assert model.config.prior_components == summary["prior_components"] >= 3
    z = model.sample_latents(600, torch.Generator().manual_seed(0))
    nearest = torch.cdist(z, latents).min(1).values
    assert float(nearest.median()) < 1.0  # on the clouds (spread 0.3 per axis)
    single = tiny_model(latent_dim=4)
    single.fit_latent_prior(latents, 1)
    between = torch.cdist(single.sample_latents(600, torch.Generator().manual_seed(0)), latents).min(1).values
    assert float(between.median()) > 2 * float(nearest.median())
    # the energy is lowest on the clouds and differentiable (guided sampling follows its gradient)
    probe = torch.tensor([[-6.0, 0, 0, 0], [0.0, 3.0, 0, 0]], requires_grad=True)
    energy = model.latent_prior_energy(probe)
    assert energy[0] < energy[1]
    energy.sum().backward()
    assert torch.isfinite(probe.grad).all()


def test_mixture_prior_survives_the_checkpoint(tmp_path):
    model = tiny_model(latent_dim=4)
    model.fit_latent_prior(clusters(), 3)
    save_autoencoder(model, tmp_path / "m.pt")
    loaded = load_autoencoder(tmp_path / "m.pt")
    assert loaded.config.prior_components == 3
    g1, g2 = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    assert torch.equal(model.sample_latents(20, g1), loaded.sample_latents(20, g2))


def test_checkpoints_with_one_gaussian_prior_load_and_sample_as_before(tmp_path):
    """Written before the mixture: only prior_mean / prior_scale_tril in the state dict."""
    model = tiny_model()
    model.fit_latent_prior(torch.randn(50, 8, generator=torch.Generator().manual_seed(2)) * 2 + 1, 1)
    path = tmp_path / "old.pt"
    save_autoencoder(model, path)
    payload = torch.load(path, weights_only=True)
    for key in ("prior_weights", "prior_means", "prior_scale_trils"):
        payload["state_dict"].pop(key)
    payload["model_config"].pop("prior_components")
    payload["format_version"] = 1  # the format of checkpoints written before the mixture prior
    torch.save(payload, path)
    loaded = load_autoencoder(path)
    eps = torch.randn((7, 8), generator=torch.Generator().manual_seed(3))
    before = model.prior_mean + eps @ model.prior_scale_tril.T  # the one-Gaussian draw of the old code
    assert torch.allclose(loaded.sample_latents(7, torch.Generator().manual_seed(3)), before)


def test_refit_prior_of_a_trained_recipe_keeps_the_network(tmp_path):
    from motif_screen.training.autoencoder import refit_latent_prior, train_autoencoder

    csv = tmp_path / "data.csv"
    _write_csv(csv, DATA * 4, [0.0] * 16)
    config = {"task": "autoencoder", "name": "tiny", "data": str(csv), "epochs": 1, "batch_size": 8, "val_fraction": 0.25,
              "output": str(tmp_path / "tiny.pt"), "log_every": 0, "prior_components": 1, "model": dict(TINY)}
    trained, metrics = train_autoencoder(config)
    assert metrics["prior_components"] == 1
    model, summary = refit_latent_prior({**config, "prior_components": 2})
    assert summary["prior_components"] == 2
    reloaded = load_autoencoder(tmp_path / "tiny.pt")
    assert reloaded.config.prior_components == 2 and reloaded.checkpoint_info["metrics"]["n_train"] == 12
    for name, value in trained.state_dict().items():
        if not name.startswith("prior_"):
            assert torch.equal(value, reloaded.state_dict()[name]), name
    with pytest.raises(ConfigError, match="trained checkpoint"):
        refit_latent_prior({**config, "output": str(tmp_path / "missing.pt")})
