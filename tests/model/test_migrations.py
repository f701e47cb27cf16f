"""Checkpoint format versions: migrations applied on load, shipped format-1 checkpoints unchanged."""

from __future__ import annotations

import pytest
import torch
from pymatgen.core import Lattice, Molecule, Structure

from motif_screen.errors import ModelError
from motif_screen.model.autoencoder import AutoencoderConfig, build_autoencoder
from motif_screen.model.checkpoint import checkpoint_dict, load_autoencoder, read_checkpoint
from motif_screen.model.decoder import DecoderConfig
from motif_screen.model.migrations import FORMAT_VERSION, MIGRATIONS, V1_DECODER_OPTIONS, migrate
from motif_screen.pretrained import shipped_checkpoint

SRTIO3 = Structure(Lattice.cubic(3.905), ["Sr", "Ti", "O", "O", "O"],
                   [[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]])
METHANE = Molecule(["C", "H", "H", "H", "H"], [[0, 0, 0], [0.629, 0.629, 0.629], [-0.629, -0.629, 0.629],
                                                [-0.629, 0.629, -0.629], [0.629, -0.629, -0.629]])
# what the shipped models give (qm9: as before checkpoints had migrations, format-1 loading by dated
# defaults; perov5: the two-stage model with the species head, written in format 2 — a new model
# pins new values, and any change of loading would move them)
BEFORE = {
    "perov5": {"latent": [0.1864781528711319, 1.4713549613952637, -0.9013572931289673, 0.13311009109020233],
               # heads of perov5_heads.yaml, trained on the second stage's frozen encoder
               "heat_ref": (-0.08178842067718506, 0.11490078270435333),
               "formation_energy_per_atom": (-3.296663761138916, 0.2905521094799042),
               "prior_draws": [[-0.4721425473690033, -0.750918984413147, -0.2484329640865326],
                               [-0.17309994995594025, 0.7726294994354248, 0.6469717025756836]]},
    "qm9": {"latent": [3.977663040161133, -3.1410303115844727, -0.21460111439228058, -0.36827149987220764],
            "prior_draws": [[-2.0039918422698975, -1.5832619667053223, -0.032017190009355545],
                            [-1.1986740827560425, 0.15473948419094086, -0.04281816631555557]]},
}


def tiny_payload(**decoder):
    torch.manual_seed(0)
    model = build_autoencoder(AutoencoderConfig(elements=[8, 22, 38], latent_dim=4,
                                                encoder_options=dict(channels=8, layers=1, latent_dim=8, latent_vectors=2),
                                                decoder=dict(channels=8, num_layers=1, max_atoms=6, **decoder)))
    return checkpoint_dict(model)


def test_every_older_version_has_a_migration():
    assert FORMAT_VERSION == 2 and sorted(MIGRATIONS) == list(range(1, FORMAT_VERSION))
    names = set(DecoderConfig.__dataclass_fields__) - {"latent_dim", "elements", "periodic"}
    assert set(V1_DECODER_OPTIONS) == names  # a format-1 decoder is defined in every option


def test_v1_autoencoder_gets_every_decoder_option_and_its_prior_as_a_mixture():
    payload = tiny_payload()
    payload["format_version"] = 1
    payload["model_config"]["decoder"] = {"channels": 8, "num_layers": 1, "max_atoms": 6}
    del payload["model_config"]["prior_components"]
    mean, tril = payload["state_dict"]["prior_mean"] + 1.0, 2.0 * payload["state_dict"]["prior_scale_tril"]
    payload["state_dict"].update(prior_mean=mean, prior_scale_tril=tril)
    for key in ("prior_weights", "prior_means", "prior_scale_trils"):
        del payload["state_dict"][key]
    migrated = migrate(payload, "test")
    assert migrated["format_version"] == 2
    decoder = migrated["model_config"]["decoder"]
    assert decoder == {**V1_DECODER_OPTIONS, "channels": 8, "num_layers": 1, "max_atoms": 6}
    assert decoder["condition_every_layer"] is False and decoder["denoise_sigma_max"] == 0.0
    assert migrated["model_config"]["prior_components"] == 1
    state = migrated["state_dict"]
    assert torch.equal(state["prior_weights"], torch.ones(1))
    assert torch.equal(state["prior_means"], mean[None]) and torch.equal(state["prior_scale_trils"], tril[None])


def test_v1_checkpoints_of_other_kinds_only_change_their_version():
    payload = tiny_payload()
    payload.update(format_version=1, kind="property")
    before = {k: v for k, v in payload.items() if k != "format_version"}
    migrated = migrate(payload, "test")
    assert migrated["format_version"] == 2 and {k: v for k, v in migrated.items() if k != "format_version"} == before


def test_unknown_versions_are_refused(tmp_path):
    for version, message in ((3, "newer motif_screen"), (None, "no valid format version"), (0, "no valid format version")):
        payload = tiny_payload()
        payload["format_version"] = version
        torch.save(payload, tmp_path / "m.pt")
        with pytest.raises(ModelError, match=message):
            read_checkpoint(tmp_path / "m.pt")
    payload = tiny_payload()
    payload["format_version"] = 1
    del payload["state_dict"]["prior_mean"], payload["state_dict"]["prior_weights"]
    torch.save(payload, tmp_path / "m.pt")
    with pytest.raises(ModelError, match="format version 1.*lacks what its format holds"):
        read_checkpoint(tmp_path / "m.pt")


@pytest.mark.parametrize(("name", "format_version"), [("perov5", 2), ("qm9", 1)])
def test_shipped_checkpoints_load_as_before(name, format_version):
    """qm9's is still format 1 (read through the migration); perov5's is format 2 (the two-stage model
    with the species head, its heads retrained on its frozen encoder). Every stored weight loads as
    stored, and the latent, prior draws and head predictions are the pinned ones."""
    path = shipped_checkpoint(name)
    raw = torch.load(path, weights_only=True)
    assert raw["format_version"] == format_version
    model = load_autoencoder(path)
    state = model.state_dict()
    for key, value in raw["state_dict"].items():  # every stored weight, unchanged
        assert torch.equal(state[key], value.to(state[key].dtype)), key
    expected = BEFORE[name]
    with torch.no_grad():
        latent = model.encode([SRTIO3 if name == "perov5" else METHANE])
        torch.testing.assert_close(latent[0, :4], torch.tensor(expected["latent"]), rtol=0, atol=1e-6)
        draws = model.sample_latents(2, torch.Generator().manual_seed(0))[:, :3]
        torch.testing.assert_close(draws, torch.tensor(expected["prior_draws"]), rtol=0, atol=1e-6)
        for prop, (mean, std) in model.predict_properties(latent).items():
            assert (float(mean[0]), float(std[0])) == pytest.approx(expected[prop], abs=1e-6)
    assert set(model.predict_properties(latent)) == ({"heat_ref", "formation_energy_per_atom"} if name == "perov5" else set())
