"""Checkpoints: weights_only round trip, clear errors, refusal of non-finite weights."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from pymatgen.core import Lattice, Structure

import motif_screen
from motif_screen import __version__
from motif_screen.errors import ModelError
from motif_screen.model import build_property_model, load_checkpoint, save_checkpoint
from motif_screen.provenance import code_commit


def _structure():
    return Structure(Lattice.cubic(4.0), ["Cs", "Cl"], [[0, 0, 0], [0.5, 0.52, 0.5]])


@pytest.fixture
def model():
    torch.manual_seed(0)
    m = build_property_model(["heat_ref", "gap"], "S", ensemble_size=2, channels=8, layers=1, latent_dim=8)
    m.scaler.shift.copy_(torch.tensor([1.0, 2.0]))
    m.scaler.std_factor.copy_(torch.tensor([1.5, 0.5]))
    return m


def test_round_trip_keeps_predictions_and_metadata(tmp_path, model):
    path = save_checkpoint(tmp_path / "m.pt", model, config={"epochs": 3}, metrics={"mae": 0.1}, data_fingerprint="abc")
    raw = torch.load(path, weights_only=True)  # no pickled code inside
    assert raw["normalisation"]["gap"] == {"shift": 2.0, "scale": 1.0, "std_factor": 0.5}
    assert raw["vocabulary"][0] == 1 and raw["data_fingerprint"] == "abc"
    loaded = load_checkpoint(path)
    a, b = model.predict([_structure()]), loaded.predict([_structure()])
    for t in ("heat_ref", "gap"):
        np.testing.assert_allclose(a[t][0], b[t][0])
        np.testing.assert_allclose(a[t][1], b[t][1])
    assert loaded.checkpoint_info["metrics"] == {"mae": 0.1}
    assert loaded.encode([_structure()]).shape == (1, 8)


def test_a_checkpoint_names_the_code_that_wrote_it(tmp_path, model):
    raw = torch.load(save_checkpoint(tmp_path / "m.pt", model, config={"epochs": 3}), weights_only=True)
    assert raw["code_version"] == __version__ and raw["config"] == {"epochs": 3}  # the recipe it was trained by
    assert raw["code_commit"] == code_commit()
    source = Path(motif_screen.__file__).resolve().parent
    if (source.parent / ".git").exists():  # a checkout (CI's clean clone): the commit is named, 40 hex digits
        assert re.fullmatch(r"[0-9a-f]{40}(\+modified)?", raw["code_commit"])


def test_missing_corrupt_and_foreign_files_raise_model_error(tmp_path, model):
    with pytest.raises(ModelError, match="does not exist"):
        load_checkpoint(tmp_path / "nope.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint at all")
    with pytest.raises(ModelError, match="corrupt"):
        load_checkpoint(tmp_path / "junk.pt")
    torch.save({"state_dict": {}}, tmp_path / "foreign.pt")
    with pytest.raises(ModelError, match="not a motif_screen checkpoint"):
        load_checkpoint(tmp_path / "foreign.pt")


def test_a_checkpoint_of_another_kind_is_refused_by_name(tmp_path, model):
    from motif_screen.model.checkpoint import load_autoencoder

    path = save_checkpoint(tmp_path / "m.pt", model)
    with pytest.raises(ModelError, match="holds a model of kind 'property', not 'autoencoder'"):
        load_autoencoder(path)
    raw = torch.load(path, weights_only=True)
    raw["kind"] = "crystal_graph_gan"
    torch.save(raw, path)
    with pytest.raises(ModelError, match="kind 'crystal_graph_gan', which this code cannot build"):
        load_checkpoint(path)


def test_incompatible_architecture_is_a_clear_error(tmp_path, model):
    path = save_checkpoint(tmp_path / "m.pt", model)
    raw = torch.load(path, weights_only=True)
    raw["model_config"]["encoder"]["channels"] = 16  # weights no longer fit
    torch.save(raw, path)
    with pytest.raises(ModelError, match="does not match this code's property architecture"):
        load_checkpoint(path)


def test_code_version_mismatch_warns(tmp_path, model):
    path = save_checkpoint(tmp_path / "m.pt", model)
    raw = torch.load(path, weights_only=True)
    raw["code_version"] = "0.0.1"
    torch.save(raw, path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        load_checkpoint(path)
    assert any("0.0.1" in str(w.message) for w in caught)


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_a_checkpoint_with_non_finite_weights_is_refused(tmp_path, model, bad):
    path = save_checkpoint(tmp_path / "m.pt", model)
    raw = torch.load(path, weights_only=True)
    name = next(k for k in raw["state_dict"] if k.startswith("heads."))
    raw["state_dict"][name].view(-1)[0] = bad
    torch.save(raw, path)
    with pytest.raises(ModelError, match=f"checkpoint {path} holds NaN or infinite weights \\({name}\\)"):
        load_checkpoint(path)


def test_a_model_with_non_finite_weights_is_not_saved(tmp_path, model):
    with torch.no_grad():
        model.heads.w1.view(-1)[0] = float("nan")
    with pytest.raises(ModelError, match="NaN or infinite weights \\(heads.w1\\)"):
        save_checkpoint(tmp_path / "m.pt", model)
    assert not list(tmp_path.iterdir())  # nothing written, not even a temporary file
