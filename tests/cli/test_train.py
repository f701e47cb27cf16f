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

    embedded.reset_for_tests()
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
