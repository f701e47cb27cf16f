"""A tiny autoencoder checkpoint (seconds to build and run) and two seed structure files for CLI tests."""

from __future__ import annotations

import pytest
import torch

from motif_screen import keys
from motif_screen.model.autoencoder import AutoencoderConfig, build_autoencoder
from motif_screen.model.checkpoint import save_autoencoder

TINY = dict(latent_dim=8, encoder_options=dict(channels=8, layers=1, latent_dim=8, latent_vectors=2),
            decoder=dict(channels=8, num_layers=1, max_atoms=8, flow_steps=2))
ELEMENTS = [8, 19, 22, 38, 41]  # O K Ti Sr Nb


@pytest.fixture(scope="session")
def checkpoint(tmp_path_factory):
    """A tiny untrained autoencoder over O, K, Ti, Sr, Nb whose cells come out near 4 Å."""
    torch.manual_seed(0)
    model = build_autoencoder(AutoencoderConfig(elements=ELEMENTS, properties=[keys.FORMATION_ENERGY], **TINY))
    model.decoder.lattice_mean.copy_(torch.tensor([2.3, 2.3, 2.3, 90.0, 90.0, 90.0]))
    model.decoder.lattice_std.copy_(torch.tensor([0.1, 0.1, 0.1, 1.0, 1.0, 1.0]))
    model.model_name = "tiny"
    path = tmp_path_factory.mktemp("ckpt") / "tiny.pt"
    save_autoencoder(model, path)
    return path


@pytest.fixture
def seed_files(tmp_path, perovskites):
    """SrTiO3.cif and KNbO3.cif."""
    paths = []
    for name in ("SrTiO3", "KNbO3"):
        paths.append(tmp_path / f"{name}.cif")
        perovskites[name].to(filename=str(paths[-1]))
    return paths
