"""The autoencoder: invariant latents, decoding, checkpoints, end-to-end training, overfitting."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from pymatgen.core import Lattice, Molecule, Structure

from motif_screen import keys
from motif_screen.errors import ConfigError, InputError, ModelError
from motif_screen.model.autoencoder import AutoencoderConfig, build_autoencoder
from motif_screen.model.checkpoint import load_autoencoder, save_autoencoder

TINY = dict(latent_dim=8, encoder_options=dict(channels=8, layers=2, latent_dim=8, latent_vectors=2),
            decoder=dict(channels=8, num_layers=2, max_atoms=8, flow_steps=4))


def perovskite(a, b, x, length, d=0.0):
    return Structure(Lattice.cubic(length), [a, b, x, x, x],
                     [[0, 0, 0], [0.5, 0.5, 0.5 + d], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]])


DATA = [perovskite("Sr", "Ti", "O", 3.9), perovskite("Ba", "Zr", "O", 4.2, 0.03),
        perovskite("K", "Nb", "O", 4.0), perovskite("Cs", "Pb", "F", 4.8)]
ELEMENTS = sorted({site.specie.Z for s in DATA for site in s})


def tiny_model(seed=0, **extra):
    torch.manual_seed(seed)
    return build_autoencoder(AutoencoderConfig(elements=ELEMENTS, **{**TINY, **extra})).eval()


def test_latent_is_invariant_to_rotation_translation_and_atom_order():
    model = tiny_model()
    s = DATA[1]
    rot = Structure(Lattice(s.lattice.matrix @ np.linalg.qr(np.random.default_rng(0).normal(size=(3, 3)))[0].T),
                    s.species, s.frac_coords)
    shuffled = Structure(s.lattice, [s.species[i] for i in (3, 1, 4, 0, 2)], (s.frac_coords[[3, 1, 4, 0, 2]] + 0.37) % 1)
    z = model.encode([s, rot, shuffled])
    assert torch.allclose(z[0], z[1], atol=1e-5) and torch.allclose(z[0], z[2], atol=1e-5)


def test_decode_returns_structures_with_requested_composition():
    model = tiny_model()
    out = model.decode(torch.randn(2, 8), counts=[[3, 0, 0, 1, 1, 0, 0, 0, 0, 0], [3, 0, 1, 0, 0, 0, 1, 0, 0, 0]], steps=3)
    assert isinstance(out[0], Structure) and out[0].composition.reduced_formula == "SrTiO3"
    assert out[1].composition.reduced_formula == "KNbO3"
    with pytest.raises(InputError, match="zero atoms"):
        model.decode(torch.randn(1, 8), counts=[[0] * 10])


def test_bad_latent_and_unreadable_structures_raise_input_error():
    model = tiny_model()
    with pytest.raises(InputError, match="8 components"):
        model.decode(torch.zeros(3, 5))
    with pytest.raises(InputError, match="NaN"):
        model.decode(torch.full((1, 8), float("nan")))
    with pytest.raises(InputError, match="not a crystal"):
        model.encode([Molecule(["O", "H"], [[0, 0, 0], [0, 0, 0.97]])])
    with pytest.raises(InputError, match="vocabulary"):
        model.encode([Structure(Lattice.cubic(3.0), ["U"], [[0, 0, 0]])])
    with pytest.raises(InputError, match="not a pymatgen"):
        model.encode(["SrTiO3.cif"])


def test_checkpoint_round_trip_reproduces_decoding(tmp_path):
    model = tiny_model(properties=[keys.FORMATION_ENERGY])
    path = tmp_path / "ae.pt"
    save_autoencoder(model, path, metrics={"note": 1.0})
    loaded = load_autoencoder(path)
    z = torch.randn(2, 8)
    a = model.decode(z, steps=3, generator=torch.Generator().manual_seed(3))
    b = loaded.decode(z, steps=3, generator=torch.Generator().manual_seed(3))
    assert [s.formula for s in a] == [s.formula for s in b]
    assert np.allclose(a[0].frac_coords, b[0].frac_coords, atol=1e-6)
    assert set(loaded.predict_properties(z)) == {keys.FORMATION_ENERGY}
    (tmp_path / "bad.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ModelError):
        load_autoencoder(tmp_path / "bad.pt")
    with pytest.raises(ModelError):
        load_autoencoder(tmp_path / "missing.pt")


def test_decoding_several_candidates_keeps_the_one_the_encoder_maps_closest():
    """With K candidates per latent the kept structure is, among the K decoded from the same noise
    stream, the one whose encoding is nearest the latent; an unreadable structure is never preferred."""
    model = tiny_model()
    z = model.encode(DATA)
    counts = [[int(round(x)) for x in row] for row in (model.composition_features(model.graphs(DATA)) * 5).tolist()]
    k = 3
    chosen = model.decode(z, counts=counts, candidates=k, generator=torch.Generator().manual_seed(5))
    every = model.decode(z.repeat_interleave(k, 0), counts=[c for c in counts for _ in range(k)],
                         generator=torch.Generator().manual_seed(5))
    distance = model.latent_distance(every, z.repeat_interleave(k, 0)).view(-1, k)
    assert len(chosen) == len(DATA)
    for i, s in enumerate(chosen):
        j = int(distance[i].argmin())
        assert np.allclose(s.frac_coords, every[i * k + j].frac_coords)
        assert float(model.latent_distance([s], z[i : i + 1])[0]) == pytest.approx(float(distance[i].min()), rel=1e-5)
    overlapping = Structure(Lattice.cubic(4.0), ["Sr", "Ti"], [[0, 0, 0], [0.01, 0, 0]])
    assert torch.isinf(model.latent_distance([overlapping], z[:1])).all()
    with pytest.raises(InputError, match="at least 1"):
        model.decode(z, candidates=0)


def test_old_checkpoints_rebuild_the_decoder_they_were_trained_with(tmp_path):
    """A checkpoint whose decoder config predates the recorded options loads as the older network
    (no per-layer conditioning, no denoiser); new checkpoints record every option."""
    model = tiny_model()
    assert model.config.decoder["denoise_sigma_max"] > 0 and model.config.decoder["condition_every_layer"]
    legacy = tiny_model(decoder={**TINY["decoder"], "condition_every_layer": False, "denoise_sigma_max": 0.0})
    path = tmp_path / "legacy.pt"
    save_autoencoder(legacy, path)
    payload = torch.load(path, weights_only=True)
    for option in ("condition_every_layer", "denoise_sigma_max", "snap_steps", "candidates"):
        payload["model_config"]["decoder"].pop(option)
    payload["format_version"] = 1  # the format of checkpoints written before every option was recorded
    torch.save(payload, path)
    loaded = load_autoencoder(path)
    assert loaded.decoder.snap_sigmas() == [] and len(loaded.decoder.velocity.conditioning) == 0


def _write_csv(path, structures, heats):
    import pandas as pd

    pd.DataFrame({"material_id": range(len(structures)), "cif": [s.to(fmt="cif") for s in structures],
                  "heat_ref": heats}).to_csv(path)


def test_train_autoencoder_end_to_end_from_a_recipe(tmp_path):
    from motif_screen.training.autoencoder import train_autoencoder

    csv = tmp_path / "data.csv"
    _write_csv(csv, DATA * 3, [0.1, -0.4, 0.3, -1.2] * 3)
    config = {"task": "autoencoder", "name": "tiny", "data": str(csv), "properties": {keys.FORMATION_ENERGY: "heat_ref"},
              "epochs": 2, "batch_size": 4, "val_fraction": 0.25, "output": str(tmp_path / "tiny.pt"), "log_every": 0,
              "model": {k: v for k, v in TINY.items()}}
    model, metrics = train_autoencoder(config)
    assert metrics["n_train"] == 9 and metrics["n_val"] == 3 and metrics["epochs_run"] == 2
    assert all(isinstance(v, (int, float)) and np.isfinite(v) for v in metrics.values())
    assert f"val_mae_{keys.FORMATION_ENERGY}" in metrics
    loaded = load_autoencoder(tmp_path / "tiny.pt")
    assert loaded.model_name == "tiny" and loaded.config.elements == ELEMENTS
    with pytest.raises(ConfigError, match="unknown"):
        train_autoencoder({**config, "epoch": 3})


def test_cells_larger_than_the_decoder_emits_are_skipped_by_name_and_counted(tmp_path, caplog):
    """A training CSV with a cell of more atoms than the decoder's max_atoms: that row is skipped with
    its reason and counted, never a crash mid-training."""
    from motif_screen.training.autoencoder import train_autoencoder

    supercell = DATA[0].copy()
    supercell.make_supercell([2, 1, 1])
    csv = tmp_path / "data.csv"
    _write_csv(csv, DATA * 3 + [supercell], [0.1] * 13)
    config = {"task": "autoencoder", "data": str(csv), "epochs": 1, "batch_size": 4, "val_fraction": 0.25,
              "log_every": 0, "model": {**TINY, "decoder": {**TINY["decoder"], "max_atoms": 6}}}
    with caplog.at_level("WARNING"):
        model, metrics = train_autoencoder(config)
    assert metrics["skipped_structures"] == 1 and metrics["n_train"] + metrics["n_val"] == 12
    assert "structure 12 has 10 atoms, more than the limit of 6" in caplog.text
    assert model.decoder.config.max_atoms == 6


def test_training_can_start_from_a_trained_checkpoint_and_add_a_decoder_head(tmp_path):
    """init_from: every tensor of the same name and shape is copied (the species head is new, the
    property heads of another recipe and the prior are left to this run); another network is refused."""
    from motif_screen.training.autoencoder import start_from, train_autoencoder

    csv = tmp_path / "data.csv"
    _write_csv(csv, DATA * 3, [0.1, -0.4, 0.3, -1.2] * 3)
    base = {"task": "autoencoder", "data": str(csv), "properties": {keys.FORMATION_ENERGY: "heat_ref"}, "epochs": 1,
            "batch_size": 4, "val_fraction": 0.25, "output": str(tmp_path / "base.pt"), "log_every": 0,
            "model": dict(TINY)}
    first, _ = train_autoencoder(base)
    typed = {**base, "properties": {}, "output": str(tmp_path / "typed.pt"), "init_from": str(tmp_path / "base.pt"),
             "model": {**TINY, "decoder": {**TINY["decoder"], "type_head": True}}}
    fresh = build_autoencoder(AutoencoderConfig(elements=ELEMENTS, **typed["model"]))
    message = start_from(fresh, tmp_path / "base.pt")
    assert "new: decoder.velocity.type_readout" in message and "not carried over: heads" in message
    copied = first.state_dict()
    assert all(torch.equal(v, copied[k]) for k, v in fresh.state_dict().items()
               if k.startswith(("encoder.", "decoder.velocity.layers")))
    model, metrics = train_autoencoder(typed)
    assert model.decoder.config.type_head and metrics["train_types"] > 0
    with pytest.raises(ConfigError, match="another network"):
        train_autoencoder({**typed, "model": {**TINY, "latent_dim": 12}})


@pytest.mark.slow
def test_overfit_a_handful_of_perovskites():
    """Five-atom cells: after a short training the invariant parts (size, composition, lattice)
    reconstruct exactly and the coordinate flow's loss has fallen well below its start."""
    from motif_screen.graphs import collate  # noqa: F401  (the batch comes from model.graphs)

    model = tiny_model(seed=1)
    batch = model.graphs(DATA * 2)
    model.decoder.fit_lattice_scaler(batch[keys.CELL], batch[keys.NUM_NODES])
    optimizer = torch.optim.Adam(model.parameters(), lr=5e-3)
    generator = torch.Generator().manual_seed(0)
    model.eval()
    with torch.no_grad():  # the same estimate before and after: mean of 5 noisy flow-matching losses
        first = np.mean([float(model.losses(batch, generator=generator)["coords"]) for _ in range(5)])
    model.train()
    for step in range(300):
        terms = model.losses(batch, generator=generator)
        optimizer.zero_grad()
        model.total_loss(terms).backward()
        optimizer.step()
    model.eval()
    with torch.no_grad():
        late = np.mean([float(model.losses(batch, generator=generator)["coords"]) for _ in range(5)])
    assert late < 0.75 * first
    decoded = model.decode(model.encode(DATA), steps=10, generator=torch.Generator().manual_seed(0))
    for original, rebuilt in zip(DATA, decoded):
        assert rebuilt.composition == original.composition
        assert np.allclose(rebuilt.lattice.abc, original.lattice.abc, atol=0.15)
        assert np.allclose(rebuilt.lattice.angles, 90.0, atol=2.0)
