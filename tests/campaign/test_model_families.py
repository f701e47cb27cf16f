"""A campaign's model may be of any crystal family: the ABX3 mode needs a perovskite model, and a
model of another family (carbon allotropes, molecules) is one clear message before anything is stored."""

import pytest
import torch

from motif_screen import keys
from motif_screen.campaign import steps
from motif_screen.campaign.spec import parse_spec
from motif_screen.db.repository import Repository
from motif_screen.errors import InputError
from motif_screen.model.autoencoder import AutoencoderConfig, build_autoencoder
from motif_screen.model.checkpoint import save_autoencoder
from motif_screen.training.registry import register_model_version
from tests.model.test_autoencoder import TINY

SPEC = {"name": "family-check", "target": {"property": "energy_above_hull", "goal": "minimize", "upper": 0.1},
        "budget": 4, "rounds": 1, "candidates_per_round": 8}


def register(tmp_path, name, elements, periodic=True):
    torch.manual_seed(0)
    model = build_autoencoder(AutoencoderConfig(elements=elements, periodic=periodic,
                                                properties=[keys.FORMATION_ENERGY], **TINY))
    path = tmp_path / f"{name}.pt"
    save_autoencoder(model, path)
    register_model_version(name, path, promoted=True)


def test_family_mode_with_a_carbon_model_is_refused_before_anything_is_stored(db, tmp_path):
    register(tmp_path, "carbon", [6])
    repo = Repository(db)
    with pytest.raises(InputError, match=r"model carbon v1 \(C\) cannot make ABX3 perovskites.*--generation prior"):
        steps.create_campaign(repo, parse_spec({**SPEC, "model": {"name": "carbon"}}))
    assert repo.campaigns("family-check") == []
    created = steps.create_campaign(repo, parse_spec({**SPEC, "model": {"name": "carbon"},
                                                      "generation": {"mode": "prior"}}))
    assert created["created"]


def test_a_molecule_model_is_refused_for_a_campaign(db, tmp_path):
    register(tmp_path, "molecules", [1, 6, 7, 8], periodic=False)
    repo = Repository(db)
    with pytest.raises(InputError, match="model molecules v1 decodes molecules; a campaign screens crystals"):
        steps.create_campaign(repo, parse_spec({**SPEC, "model": {"name": "molecules"},
                                                "generation": {"mode": "prior"}}))
    assert repo.campaigns("family-check") == []
