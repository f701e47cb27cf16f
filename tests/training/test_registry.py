"""Model versions in GridFS: numbering, promotion, loading by name and version, stored fingerprints."""

from __future__ import annotations

import mongoengine
import mongomock
import mongomock.gridfs
import pytest
import torch

from motif_screen.db.documents import ModelVersion
from motif_screen.errors import ModelError
from motif_screen.model import build_property_model, save_checkpoint
from motif_screen.training.registry import load_model_version, migrate_stored_fingerprints, register_model_version


@pytest.fixture
def model():
    torch.manual_seed(0)
    return build_property_model(["heat_ref", "gap"], "S", ensemble_size=2, channels=8, layers=1, latent_dim=8)


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
    latest_promoted = load_model_version("perov")
    assert (latest_promoted.model_name, latest_promoted.model_version) == ("perov", 1)
    assert isinstance(latest_promoted.model_version, int)
    assert load_model_version("perov", 2).model_version == 2
    v3 = register_model_version("perov", path, metrics={}, data_fingerprint="f3", config={}, promoted=True)
    assert [d.version for d in ModelVersion.objects(name="perov", promoted=True)] == [v3.version]
    with pytest.raises(ModelError, match="no version 9"):
        load_model_version("perov", 9)
    with pytest.raises(ModelError, match="no model named"):
        load_model_version("other")
    (tmp_path / "junk.pt").write_bytes(b"junk")
    with pytest.raises(ModelError):
        register_model_version("perov", tmp_path / "junk.pt", metrics={}, data_fingerprint="x", config={})
    assert ModelVersion.objects(name="perov").count() == 3  # the refused one left no document


def test_stored_fingerprints_of_older_schemes_are_tagged_once(tmp_path, model, memory_db):
    path = save_checkpoint(tmp_path / "m.pt", model)
    for fingerprint in ("0123456789abcdef", "0123456789abcdef0123", "v2:0123456789abcdef", None):
        register_model_version("perov", path, data_fingerprint=fingerprint)
    assert migrate_stored_fingerprints() == 2
    stored = [d.data_fingerprint for d in ModelVersion.objects(name="perov").order_by("version")]
    assert stored == ["legacy-sha256:0123456789abcdef", "legacy-sha1:0123456789abcdef0123", "v2:0123456789abcdef", None]
    assert migrate_stored_fingerprints() == 0
