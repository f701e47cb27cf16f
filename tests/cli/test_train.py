"""`motif-screen train`: YAML config -> checkpoint, registration in the embedded store, clear errors."""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd
import yaml
from pymatgen.io.cif import CifWriter

from motif_screen.cli.main import main

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "training"))
from test_loop import perovskites  # noqa: E402


def _write_config(tmp_path, **extra):
    structures, targets = perovskites(12)
    pd.DataFrame({"cif": [str(CifWriter(s)) for s in structures], "volume": targets["volume"]}).to_csv(tmp_path / "d.csv")
    config = {"task": "property", "data": {"source": "csv", "path": "d.csv"}, "targets": ["volume"], "preset": "S",
              "encoder": {"channels": 8, "layers": 1, "latent_dim": 8}, "ensemble_size": 2, "epochs": 2,
              "batch_size": 6, "seed": 0, "early_stopping": {"patience": 5}, **extra}
    path = tmp_path / "train.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_train_writes_checkpoint_and_registers_model_version(config_dir, capsys):
    cfg = _write_config(config_dir)
    rc = main(["train", "--config", str(cfg), "--out", str(config_dir / "out"), "--quiet",
               "--register", "tiny", "--promote", "--config-dir", str(config_dir)])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert (config_dir / "out" / "model.pt").exists()
    assert "registered tiny v1 (promoted)" in out and "validation MAE" in out

    from motif_screen.db import connect
    from motif_screen.db import embedded
    from motif_screen.training.registry import load_model_version

    embedded.close_all()
    connect(config_dir / "db.json", readonly=True)
    model = load_model_version("tiny")
    assert model.targets == ["volume"] and (model.model_name, model.model_version) == ("tiny", 1)


def test_bad_configs_exit_2_with_one_line(tmp_path, capsys):
    assert main(["train", "--config", str(tmp_path / "missing.yaml")]) == 2
    assert "does not exist" in capsys.readouterr().err
    cfg = _write_config(tmp_path, learning_rate=0.1)
    assert main(["train", "--config", str(cfg), "--out", str(tmp_path / "o")]) == 2
    assert "unknown training setting(s): learning_rate" in capsys.readouterr().err
    cfg = _write_config(tmp_path, task="dance")
    assert main(["train", "--config", str(cfg)]) == 2


def test_refit_prior_needs_an_autoencoder_recipe_and_its_checkpoint(tmp_path, capsys):
    cfg = _write_config(tmp_path)
    assert main(["train", "--config", str(cfg), "--refit-prior"]) == 2
    assert "--refit-prior applies to `task: autoencoder`" in capsys.readouterr().err
    recipe = tmp_path / "ae.yaml"
    recipe.write_text(yaml.safe_dump({"task": "autoencoder", "data": "d.csv", "output": str(tmp_path / "none.pt")}))
    assert main(["train", "--config", str(recipe), "--refit-prior"]) == 2
    assert "needs the recipe's trained checkpoint" in capsys.readouterr().err


# --- bad training data: one clear line on stderr, exit status 2, nothing written ------------------
def _one_error_line(capsys) -> str:
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert "Traceback" not in err and len(lines) == 1, err
    assert lines[0].startswith("motif-screen train: error: ")
    return lines[0]


def _huge_cell_cif(structure) -> str:
    """A CIF of ``structure`` whose a axis is 1e300 Å long."""
    text = str(CifWriter(structure))
    head, _, tail = text.partition("_cell_length_a")
    return head + "_cell_length_a   1e300\n" + tail.split("\n", 1)[1]


def test_a_label_column_without_numbers_is_refused_before_training(tmp_path, capsys):
    cfg = _write_config(tmp_path)
    frame = pd.read_csv(tmp_path / "d.csv")
    frame["volume"] = "n/a"
    frame.to_csv(tmp_path / "d.csv", index=False)
    assert main(["train", "--config", str(cfg), "--out", str(tmp_path / "out"), "--quiet"]) == 2
    line = _one_error_line(capsys)
    assert "column volume of" in line and line.endswith("has no numeric value: nothing to train on")
    assert not (tmp_path / "out").exists()


def test_no_usable_structures_says_which_failed_and_why(tmp_path, capsys):
    structures, _ = perovskites(4)
    for s in structures:  # Ti on top of Sr: every structure has overlapping atoms
        s.replace(1, "Ti", [0.01, 0.0, 0.0])
    cfg = _write_config(tmp_path)
    pd.DataFrame({"cif": [str(CifWriter(s)) for s in structures], "volume": [1.0, 2.0, 3.0, 4.0]}).to_csv(tmp_path / "d.csv")
    assert main(["train", "--config", str(cfg), "--out", str(tmp_path / "out"), "--quiet"]) == 2
    line = _one_error_line(capsys)
    assert "no usable structures for training: all 4 were refused: " in line and "overlapping atoms" in line
    assert line.endswith("and 1 more") and not (tmp_path / "out").exists()


def test_a_1e300_angstrom_lattice_is_skipped_with_its_reason(tmp_path, capsys, caplog):
    structures, targets = perovskites(12)
    cifs = [str(CifWriter(s)) for s in structures]
    cifs[3] = _huge_cell_cif(structures[3])
    cfg = _write_config(tmp_path)
    pd.DataFrame({"material_id": [f"p{i}" for i in range(12)], "cif": cifs, "volume": targets["volume"]}).to_csv(tmp_path / "d.csv")
    assert main(["train", "--config", str(cfg), "--out", str(tmp_path / "out"), "--quiet"]) == 0
    assert "(11 structures, 1 rows skipped)" in capsys.readouterr().out  # refused when read, with its reason
    assert "row 5 (p3): (block BaZrO3): _cell_length_a is 1e300; cell lengths must be above 0" in caplog.text
    pd.DataFrame({"cif": [_huge_cell_cif(s) for s in structures[:2]], "volume": [1.0, 2.0]}).to_csv(tmp_path / "d.csv")
    assert main(["train", "--config", str(cfg), "--out", str(tmp_path / "out2"), "--quiet"]) == 2
    assert "_cell_length_a is 1e300; cell lengths must be above 0 and at most 1,000" in _one_error_line(capsys)
    assert not (tmp_path / "out2").exists()


def test_autoencoder_recipe_on_non_numeric_or_unusable_data_exits_2(tmp_path, capsys):
    structures, targets = perovskites(6)
    csv = tmp_path / "ae.csv"
    pd.DataFrame({"cif": [str(CifWriter(s)) for s in structures], "heat": ["high", "low", "1", "2", "3", "4"]}).to_csv(csv)
    recipe = tmp_path / "ae.yaml"
    recipe.write_text(yaml.safe_dump({"task": "autoencoder", "data": str(csv), "epochs": 1, "output": str(tmp_path / "ae.pt"),
                                      "properties": {"formation_energy_per_atom": "heat"}}))
    assert main(["train", "--config", str(recipe)]) == 2
    line = _one_error_line(capsys)
    assert "column heat of" in line and "non-numeric values in row 2 ('high'), row 3 ('low')" in line
    pd.DataFrame({"cif": ["42", "7"], "heat": [1.0, 2.0]}).to_csv(csv)
    assert main(["train", "--config", str(recipe)]) == 2
    assert "the cif cell is not a CIF ('42'" in _one_error_line(capsys)
    pd.DataFrame({"cif": [_huge_cell_cif(s) for s in structures], "heat": [1.0] * 6}).to_csv(csv)
    assert main(["train", "--config", str(recipe)]) == 2
    line = _one_error_line(capsys)
    assert "no usable structures in" in line and "cell lengths must be above 0 and at most 1,000" in line
    assert not (tmp_path / "ae.pt").exists()


def test_a_checkpoint_with_nan_weights_is_refused_not_used(tmp_path, capsys):
    import torch

    from motif_screen.model.autoencoder import AutoencoderConfig, build_autoencoder
    from motif_screen.model.checkpoint import save_autoencoder

    model = build_autoencoder(AutoencoderConfig(elements=[8, 22, 38], latent_dim=4,
                                                encoder_options=dict(channels=8, layers=1, latent_dim=8, latent_vectors=2),
                                                decoder=dict(channels=8, num_layers=1, max_atoms=6)))
    path = save_autoencoder(model, tmp_path / "ae.pt")
    payload = torch.load(path, weights_only=True)
    payload["state_dict"]["to_mean.weight"][0, 0] = float("nan")
    torch.save(payload, path)
    recipe = tmp_path / "ae.yaml"
    recipe.write_text(yaml.safe_dump({"task": "autoencoder", "data": "unused.csv", "output": str(path)}))
    assert main(["train", "--config", str(recipe), "--refit-prior"]) == 2
    line = _one_error_line(capsys)
    assert f"checkpoint {path} holds NaN or infinite weights (to_mean.weight)" in line
