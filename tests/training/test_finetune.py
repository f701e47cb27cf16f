"""Fine-tuning the autoencoder's property heads on a few labels: only the heads move."""

from __future__ import annotations

import pytest
import torch
from pymatgen.core import Lattice, Structure

from motif_screen import keys
from motif_screen.errors import InputError
from motif_screen.model.autoencoder import AutoencoderConfig, build_autoencoder
from motif_screen.training.finetune import fine_tune_heads

TINY = dict(latent_dim=8, encoder_options=dict(channels=8, layers=1, latent_dim=8, latent_vectors=2),
            decoder=dict(channels=8, num_layers=1, max_atoms=8, flow_steps=2))


def perovskites():
    return [Structure(Lattice.cubic(a), [x, "Ti", "O", "O", "O"], [[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]])
            for a, x in ((3.9, "Sr"), (4.0, "Ba"), (3.84, "Ca"), (4.1, "Sr"), (3.95, "Ba"), (3.8, "Ca"))]


@pytest.fixture
def model():
    torch.manual_seed(0)
    m = build_autoencoder(AutoencoderConfig(elements=[8, 20, 22, 38, 56], properties=[keys.FORMATION_ENERGY], **TINY)).eval()
    m.target_scaler.shift.fill_(-1.0)
    m.target_scaler.scale.fill_(0.5)
    return m


def test_only_the_heads_move_and_the_normalisation_is_kept(model):
    before = {k: v.clone() for k, v in model.state_dict().items()}
    values = torch.linspace(-2.0, 0.0, 6).numpy()
    result = fine_tune_heads(model, perovskites(), {keys.FORMATION_ENERGY: values}, epochs=40, lr=1e-2)
    assert result["task"] == "fine_tune_heads" and result["epochs"] == 40
    assert result["last_loss"] < result["first_loss"]
    after = model.state_dict()
    moved = {k for k in before if not torch.equal(before[k], after[k])}
    assert moved and all(k.startswith("heads.") for k in moved)
    assert float(model.target_scaler.shift[0]) == -1.0 and float(model.target_scaler.scale[0]) == 0.5
    assert not model.heads.training


def test_bad_requests_leave_the_heads_unchanged(model):
    before = {k: v.clone() for k, v in model.heads.state_dict().items()}
    with pytest.raises(InputError, match="no head for band_gap, so it cannot be fine-tuned on it"):
        fine_tune_heads(model, perovskites(), {"band_gap": [1.0] * 6})
    with pytest.raises(InputError, match="no finite target values"):
        fine_tune_heads(model, perovskites(), {keys.FORMATION_ENERGY: [float("nan")] * 6})
    with pytest.raises(InputError, match="nothing to fine-tune"):
        fine_tune_heads(model, [], {keys.FORMATION_ENERGY: []})
    assert all(torch.equal(before[k], v) for k, v in model.heads.state_dict().items())
