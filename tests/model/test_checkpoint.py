"""Checkpoints (weights_only round trip, clear errors) and ModelVersion registration in GridFS."""

from __future__ import annotations

import warnings

import mongoengine
import mongomock
import mongomock.gridfs
import numpy as np
import pytest
import torch
from pymatgen.core import Lattice, Structure

from motif_screen.errors import ModelError
from motif_screen.model import build_property_model, load_checkpoint, load_model_version, register_model_version, save_checkpoint


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


def test_missing_corrupt_and_foreign_files_raise_model_error(tmp_path, model):
    with pytest.raises(ModelError, match="does not exist"):
        load_checkpoint(tmp_path / "nope.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint at all")
    with pytest.raises(ModelError, match="corrupt"):
        load_checkpoint(tmp_path / "junk.pt")
    torch.save({"state_dict": {}}, tmp_path / "foreign.pt")
    with pytest.raises(ModelError, match="not a motif_screen checkpoint"):
        load_checkpoint(tmp_path / "foreign.pt")


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


@pytest.fixture
def memory_db():
    mongomock.gridfs.enable_gridfs_integration()
    mongoengine.disconnect_all()
    mongoengine.connect(db="t", mongo_client_class=mongomock.MongoClient, host="localhost", uuidRepresentation="standard")
    yield
    mongoengine.disconnect_all()


def test_model_versions_in_gridfs(tmp_path, model, memory_db):
    path = save_checkpoint(tmp_path / "m.pt", model, metrics={"mae": 0.2})
    v1 = register_model_version("perov", path, metrics={"mae": 0.2}, data_fingerprint="f1", config={"a": 1}, promoted=True)
    v2 = register_model_version("perov", path, parent=v1.version, metrics={"mae": 0.3}, data_fingerprint="f2", config={})
    assert (v1.version, v2.version) == (1, 2) and v2.parent == 1
    assert load_model_version("perov").model_version == {"name": "perov", "version": 1}  # latest promoted
    assert load_model_version("perov", 2).model_version["version"] == 2
    v3 = register_model_version("perov", path, metrics={}, data_fingerprint="f3", config={}, promoted=True)
    from motif_screen.db.documents import ModelVersion

    assert [d.version for d in ModelVersion.objects(name="perov", promoted=True)] == [v3.version]
    with pytest.raises(ModelError, match="no version 9"):
        load_model_version("perov", 9)
    with pytest.raises(ModelError, match="no model named"):
        load_model_version("other")
    (tmp_path / "junk.pt").write_bytes(b"junk")
    with pytest.raises(ModelError):
        register_model_version("perov", tmp_path / "junk.pt", metrics={}, data_fingerprint="x", config={})
