"""`task: heads`: new property heads on a trained autoencoder's frozen latents, split by chemistry."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from pymatgen.core import Lattice, Structure

from motif_screen import keys
from motif_screen.errors import ConfigError
from motif_screen.model.checkpoint import load_autoencoder, save_autoencoder
from motif_screen.model.heads import MAX_LOG_VARIANCE
from motif_screen.structures.fingerprint import fingerprint
from motif_screen.training.labels import LABEL_FORMAT
from motif_screen.training.latent_heads import chemistry_split, load_head_data, train_latent_heads
from tests.model.test_autoencoder import TINY, tiny_model

A_SITE = ["Sr", "Ba", "K", "Cs"]
B_SITE = ["Ti", "Zr", "Nb", "Pb"]


def cell(a, b, x, length):
    return Structure(Lattice.cubic(length), [a, b, x, x, x],
                     [[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]])


def cells():
    out = []
    for i, a in enumerate(A_SITE):
        for j, b in enumerate(B_SITE):
            for x in ("O", "F"):
                out.append(cell(a, b, x, 3.9 + 0.1 * i + 0.05 * j))
    return out


def write_labels(path, structures, values, source=keys.SOURCE_CHGNET):
    with path.open("w") as handle:
        for i, (s, v) in enumerate(zip(structures, values)):
            handle.write(json.dumps({"format": LABEL_FORMAT, "id": f"{path.stem}{i}", "fingerprint": fingerprint(s),
                                     "formula": s.composition.reduced_formula, "source": source,
                                     "structure": s.as_dict(), keys.FORMATION_ENERGY: v, "error": None}) + "\n")
    return path


def write_csv(path, structures, heats):
    import pandas as pd

    pd.DataFrame({"material_id": range(len(structures)), "cif": [s.to(fmt="cif") for s in structures],
                  "heat_ref": heats}).to_csv(path)
    return path


@pytest.fixture
def setup(tmp_path):
    structures = cells()
    rng = np.random.default_rng(0)
    fe = [(-3.0 if "F" in s.composition else -1.5) + 0.1 * rng.normal() for s in structures]
    write_labels(tmp_path / "generated.jsonl", structures, fe)
    write_csv(tmp_path / "perov.csv", structures[::2], [0.1 * i for i in range(len(structures[::2]))])
    base = tmp_path / "base.pt"
    save_autoencoder(tiny_model(properties=[keys.FORMATION_ENERGY]), base)  # a head of that name, as shipped
    recipe = {
        "task": "heads", "base": str(base), "name": "tiny_heads", "output": str(tmp_path / "heads.pt"),
        "targets": {
            "heat_ref": [{"source": "csv", "path": str(tmp_path / "perov.csv"), "column": "heat_ref"}],
            keys.FORMATION_ENERGY: [{"source": "labels", "path": str(tmp_path / "generated.jsonl")}],
        },
        "test_elements": ["Cs"], "test_targets": [keys.FORMATION_ENERGY], "calibration_fraction": 0.25,
        "validation_fraction": 0.2, "epochs": 30, "patience": 10, "ensemble_size": 3,
    }
    return tmp_path, recipe


def test_heads_are_replaced_and_the_encoder_and_decoder_kept(setup):
    tmp_path, recipe = setup
    base = load_autoencoder(recipe["base"])
    model, metrics = train_latent_heads(recipe, log=lambda line: None)
    assert model.config.properties == ["heat_ref", keys.FORMATION_ENERGY]  # heat_ref is named what it is
    loaded = load_autoencoder(tmp_path / "heads.pt")  # torch.load(weights_only=True) inside
    assert loaded.config.properties == model.config.properties and loaded.model_name == "tiny_heads"
    before, after = base.state_dict(), loaded.state_dict()
    kept = [k for k in before if not k.startswith(("heads.", "target_scaler."))]
    assert kept and all(torch.equal(before[k], after[k]) for k in kept)  # generation is unchanged
    assert loaded.checkpoint_info["data_fingerprint"].startswith("v3:")
    assert loaded.checkpoint_info["config"]["heads_recipe"]["base"] == recipe["base"]
    assert metrics["n_test"] == 8 and metrics[f"test_count_{keys.FORMATION_ENERGY}"] == 8
    assert metrics[f"std_factor_{keys.FORMATION_ENERGY}"] > 0
    # the base model's head of the same name is scored on the same rows, for a before/after comparison
    assert f"test_base_mae_{keys.FORMATION_ENERGY}" in metrics
    with torch.no_grad():
        mean, std = loaded.predict_properties(loaded.encode(cells()))[keys.FORMATION_ENERGY]
    bound = np.exp(MAX_LOG_VARIANCE / 2) * float(loaded.target_scaler.scale[1] * loaded.target_scaler.std_factor[1])
    assert torch.isfinite(mean).all() and float(std.max()) <= bound * 1.8  # bounded aleatoric part, small spread


def test_heads_trained_again_in_place_keep_the_autoencoders_record(setup):
    tmp_path, recipe = setup
    save_autoencoder(tiny_model(properties=[keys.FORMATION_ENERGY]), recipe["base"], metrics={"val_coords": 0.1},
                     data_fingerprint="v2:autoencoder")
    base = load_autoencoder(recipe["base"]).checkpoint_info
    train_latent_heads(recipe, log=lambda line: None)
    first = load_autoencoder(recipe["output"]).checkpoint_info
    train_latent_heads({**recipe, "base": recipe["output"]}, log=lambda line: None)  # base == output, as shipped
    again = load_autoencoder(recipe["output"]).checkpoint_info
    assert again["config"]["base_data_fingerprint"] == first["config"]["base_data_fingerprint"] == base["data_fingerprint"]
    autoencoder = {k for k in first["metrics"] if k.startswith("base_")}
    assert autoencoder and {k for k in again["metrics"] if k.startswith("base_")} == autoencoder
    assert not any(k.startswith("base_base_") for k in again["metrics"])


def test_splits_hold_out_chemistry_and_whole_compositions(setup):
    tmp_path, recipe = setup
    from motif_screen.training.config import HeadsTrainConfig

    cfg = HeadsTrainConfig.from_dict(recipe)
    data = load_head_data(cfg)
    split = chemistry_split(data, ["Cs"], 0.25, 0.2, seed=0, test_targets=[keys.FORMATION_ENERGY])
    formulas, elements = data.formulas, data.elements
    assert all("Cs" in elements[i] for i in split["test"]) and all(data.roles[i] == "auto" for i in split["test"])
    assert not any("Cs" in elements[i] for k in ("train", "validation", "calibration") for i in split[k])
    assert {formulas[i] for i in split["excluded"]} <= {f for f in formulas if "Cs" in f}  # heat_ref rows with Cs
    train, cal = {formulas[i] for i in split["train"]}, {formulas[i] for i in split["calibration"]}
    assert train and cal and not (train & cal)


def test_mixed_sources_under_one_head_are_refused_unless_asked_for(setup):
    tmp_path, recipe = setup
    write_labels(tmp_path / "dft.jsonl", cells()[:4], [-2.0] * 4, source=keys.SOURCE_VASP)
    mixed = {**recipe, "targets": {keys.FORMATION_ENERGY: [
        {"source": "labels", "path": str(tmp_path / "generated.jsonl")},
        {"source": "labels", "path": str(tmp_path / "dft.jsonl"), "split": "train"}]}}
    with pytest.raises(ConfigError, match="mixes labels of chgnet, vasp"):
        train_latent_heads(mixed, log=lambda line: None)
    model, _ = train_latent_heads({**mixed, "allow_mixed_sources": True, "output": None}, log=lambda line: None)
    assert model.config.properties == [keys.FORMATION_ENERGY]
    with pytest.raises(ConfigError, match="split must be"):
        train_latent_heads({**recipe, "targets": {"heat_ref": [{"source": "csv", "path": str(tmp_path / "perov.csv"),
                                                                 "split": "test"}]}}, log=lambda line: None)


def test_the_train_command_runs_a_heads_recipe(setup, capsys):
    import yaml

    from motif_screen.cli.main import main

    tmp_path, recipe = setup
    config = tmp_path / "heads.yaml"
    config.write_text(yaml.safe_dump(recipe))
    assert main(["train", "--config", str(config)]) == 0
    out = capsys.readouterr().out
    assert f"{keys.FORMATION_ENERGY}: calibration MAE" in out and "test MAE" in out
    assert (tmp_path / "heads.pt").is_file() and TINY  # the tiny preset the base was built with


def test_polymorphs_of_one_element_are_held_out_by_structure_and_labelled_above_the_lowest(tmp_path):
    """Carbon-24-like data: one composition, so σ calibration and early stopping hold out whole
    structures; ``relative_to_lowest`` turns the total energies into formation energies against the
    set's own ground state (the lowest cell reads 0)."""
    import pandas as pd

    from motif_screen.model.autoencoder import AutoencoderConfig, build_autoencoder
    from motif_screen.training.config import HeadsTrainConfig

    rng = np.random.default_rng(1)
    polymorphs = []
    for k in range(24):
        lattice = Lattice.cubic(3.2 + 0.05 * k) if k % 2 else Lattice.hexagonal(2.5 + 0.02 * k, 6.7)
        polymorphs.append(Structure(lattice, ["C"] * 4, rng.uniform(0, 1, (4, 3)) * 0.2 + np.arange(4)[:, None] * 0.25))
    energies = [-154.5 + 0.02 * k for k in range(24)]
    pd.DataFrame({"cif": [s.to(fmt="cif") for s in polymorphs], "energy_per_atom": energies}).to_csv(tmp_path / "c.csv")
    torch.manual_seed(0)
    save_autoencoder(build_autoencoder(AutoencoderConfig(elements=[6], **TINY)), tmp_path / "base.pt")
    recipe = {"task": "heads", "base": str(tmp_path / "base.pt"), "output": None, "epochs": 5, "ensemble_size": 2,
              "targets": {keys.FORMATION_ENERGY: [{"source": "csv", "path": str(tmp_path / "c.csv"),
                                                   "column": "energy_per_atom", "relative_to_lowest": True}]},
              "calibration_fraction": 0.25, "validation_fraction": 0.2}
    data = load_head_data(HeadsTrainConfig.from_dict(recipe))
    assert np.allclose(data.y[:, 0], np.asarray(energies) + 154.5)  # the lowest cell is the reference: 0
    split = chemistry_split(data, [], 0.25, 0.2, seed=0)
    assert len(split["calibration"]) == 6 and len(split["validation"]) == 4 and len(split["train"]) == 14
    assert not set(split["train"]) & (set(split["calibration"]) | set(split["validation"]))
    lines = []
    _, metrics = train_latent_heads(recipe, log=lines.append)
    assert metrics["split_by_structure"] == 1 and metrics["n_calibration"] == 6
    assert any("held out by structure" in line for line in lines)
    assert any("energy_per_atom minus its lowest value -154.5" in line for line in lines)


def test_many_compositions_are_still_held_out_whole(setup):
    tmp_path, recipe = setup
    from motif_screen.training.config import HeadsTrainConfig

    data = load_head_data(HeadsTrainConfig.from_dict(recipe))
    _, metrics = train_latent_heads({**recipe, "output": None}, log=lambda line: None)
    assert metrics["split_by_structure"] == 0
    split = chemistry_split(data, [], 0.25, 0.2, seed=0)
    held = {data.formulas[i] for i in split["calibration"]}
    assert held and not held & {data.formulas[i] for i in split["train"]}
