"""Training lowers the loss; missing labels, evaluation, divergence guard, data sources."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from pymatgen.core import Lattice, Structure
from pymatgen.io.cif import CifWriter

from motif_screen.errors import ConfigError, InputError
from motif_screen.training import TrainingDiverged, evaluate, load_data, train_property_model
from motif_screen.training.fingerprint import data_fingerprint

TINY = {"channels": 8, "layers": 1, "latent_dim": 8, "radial_hidden": 8}


def perovskites(n: int, seed: int = 0):
    """ABO3 cells with random A/B and lattice constants; label = volume per atom (learnable)."""
    rng = np.random.default_rng(seed)
    structures, volume, fake_gap = [], [], []
    for _ in range(n):
        a_site, b_site = rng.choice(["Sr", "Ba", "Ca"]), rng.choice(["Ti", "Zr"])
        a = rng.uniform(3.7, 4.3)
        s = Structure(Lattice.cubic(a), [a_site, b_site, "O", "O", "O"],
                      [[0, 0, 0], [0.5, 0.5, 0.5 + rng.uniform(-0.03, 0.03)], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]])
        structures.append(s)
        volume.append(s.volume / len(s))
        fake_gap.append(None if rng.random() < 0.3 else (2.0 if b_site == "Ti" else 4.0))
    return structures, {"volume": volume, "gap": fake_gap}


def config(**extra):
    return {"encoder": TINY, "ensemble_size": 2, "epochs": 12, "batch_size": 8, "lr": 5e-3, "progress": False, "seed": 0, **extra}


def test_training_lowers_loss_and_beats_the_mean(tmp_path):
    structures, targets = perovskites(40)
    model, metrics = train_property_model(structures, targets, config(out_dir=str(tmp_path)))
    assert metrics["final_train_loss"] < metrics["initial_train_loss"]
    assert metrics["n_train"] == 36 and metrics["n_val"] == 4
    test_structures, test_targets = perovskites(20, seed=1)
    result = evaluate(model, test_structures, test_targets)
    y = np.array(test_targets["volume"])
    assert result["volume_mae"] < np.mean(np.abs(y - np.mean(targets["volume"])))
    assert 0.0 <= result["volume_coverage_1sigma"] <= 1.0 and "gap_mae" in result
    assert (tmp_path / "model.pt").exists() and (tmp_path / "best.pt").exists()
    assert metrics["data_fingerprint"] == data_fingerprint(structures, targets)
    mean, std = model.predict(test_structures[:3])["volume"]
    assert mean.shape == (3,) and (std > 0).all()


def test_training_is_seeded():
    structures, targets = perovskites(16)
    a, _ = train_property_model(structures, targets, config(epochs=2))
    b, _ = train_property_model(structures, targets, config(epochs=2))
    np.testing.assert_allclose(a.predict(structures[:2])["volume"][0], b.predict(structures[:2])["volume"][0])


def test_a_target_without_any_label_is_refused_and_nothing_is_written(tmp_path):
    structures, targets = perovskites(12)
    out = tmp_path / "out"
    with pytest.raises(InputError, match="target gap has no numeric value among the 12 usable structures"):
        train_property_model(structures, {"volume": targets["volume"], "gap": [None] * 12}, config(out_dir=str(out)))
    assert not out.exists()


def test_structures_that_cannot_be_graphs_are_skipped_by_name():
    structures, targets = perovskites(12)
    broken = structures[5].copy()
    broken.replace(1, "Ti", [0.01, 0.0, 0.0])
    structures[5] = broken
    _, metrics = train_property_model(structures, targets, config(epochs=1), names=[f"s{i}" for i in range(12)])
    assert metrics["skipped_structures"] == 1 and metrics["n_train"] + metrics["n_val"] == 11
    with pytest.raises(InputError, match=r"no usable structures for training: all 2 were refused: s0 has overlapping atoms.*; s1 has"):
        train_property_model([broken, broken], {"volume": [1.0, 2.0]}, config(epochs=1), names=["s0", "s1"])
    with pytest.raises(InputError, match=r"all 2 were refused: #0: \w+O3 \(5 atoms\) has overlapping atoms"):
        train_property_model([broken, broken], {"volume": [1.0, 2.0]}, config(epochs=1))  # unnamed: index and formula


def test_nan_loss_stops_with_message_and_keeps_last_good_checkpoint(tmp_path):
    structures, targets = perovskites(12)
    with pytest.raises(TrainingDiverged, match="diverged at epoch") as info:
        train_property_model(structures, {"volume": targets["volume"]}, config(lr=1e30, epochs=5, out_dir=str(tmp_path)))
    assert info.value.checkpoint is not None and info.value.checkpoint.exists()
    from motif_screen.model import load_checkpoint

    restored = load_checkpoint(info.value.checkpoint)
    assert np.isfinite(restored.predict(structures[:2])["volume"][0]).all()


def test_csv_files_and_extxyz_sources(tmp_path):
    structures, targets = perovskites(6)
    frame = pd.DataFrame({"material_id": range(6), "cif": [str(CifWriter(s)) for s in structures], "volume": targets["volume"]})
    frame.to_csv(tmp_path / "data.csv")
    ds = load_data({"source": "csv", "path": "data.csv"}, ["volume"], base_dir=tmp_path)
    assert len(ds) == 6 and ds.names[0] == "0"
    np.testing.assert_allclose(ds.targets["volume"], targets["volume"], rtol=1e-6)

    folder = tmp_path / "poscars"
    folder.mkdir()
    for i, s in enumerate(structures[:3]):
        s.to(filename=str(folder / f"s{i}.vasp"), fmt="poscar")
    pd.DataFrame({"file": ["s0.vasp", "s1.vasp"], "volume": [1.0, 2.0]}).to_csv(tmp_path / "labels.csv", index=False)
    ds = load_data({"source": "files", "path": "poscars", "labels": "labels.csv"}, ["volume"], base_dir=tmp_path)
    assert ds.targets["volume"][:2] == [1.0, 2.0] and np.isnan(ds.targets["volume"][2])

    from ase.io import write

    frames = []
    for s, v in zip(structures[:2], targets["volume"][:2]):
        atoms = s.to_ase_atoms()
        atoms.info["volume"] = v
        frames.append(atoms)
    write(str(tmp_path / "frames.extxyz"), frames)
    ds = load_data({"source": "files", "path": "frames.extxyz"}, ["volume"], base_dir=tmp_path)
    np.testing.assert_allclose(ds.targets["volume"], targets["volume"][:2])

    with pytest.raises(InputError, match="no column"):
        load_data({"source": "csv", "path": "data.csv"}, ["heat_ref"], base_dir=tmp_path)


def test_data_fingerprint_depends_on_structures_and_labels_not_their_order():
    structures, targets = perovskites(4)
    a = data_fingerprint(structures, {"volume": targets["volume"]})
    assert a.startswith("v3:") and a == data_fingerprint(structures, {"volume": targets["volume"]})
    assert a != data_fingerprint(structures, {"volume": [v + 0.01 for v in targets["volume"]]})
    assert a == data_fingerprint(structures[::-1], {"volume": targets["volume"][::-1]})  # same pairs, other order
    assert a != data_fingerprint(structures, {"volume": targets["volume"][::-1]})  # other pairs


def test_oracle_results_from_mongodb_become_a_dft_only_training_set():
    import mongoengine
    import mongomock

    from motif_screen import keys
    from motif_screen.db.documents import Candidate, OracleResult, Origin
    from motif_screen.structures.fingerprint import fingerprint

    mongoengine.disconnect_all()
    mongoengine.connect(db="t", mongo_client_class=mongomock.MongoClient, host="localhost", uuidRepresentation="standard")
    try:
        structures, targets = perovskites(3)
        for i, s in enumerate(structures):
            cand = Candidate(campaign="c1", structure=s.as_dict(), formula=s.composition.reduced_formula,
                             elements=sorted(e.symbol for e in s.composition), nsites=len(s), fingerprint=fingerprint(s) + str(i),
                             origin=Origin(method="prior")).save()
            source = keys.SOURCE_CHGNET if i == 2 else keys.SOURCE_VASP
            OracleResult(candidate=cand, campaign="c1", source=source, run_status="successful",
                         formation_energy_per_atom=-1.0 - i, final_structure=s.as_dict()).save()
        ds = load_data({"source": "mongodb", "campaign": "c1"}, [keys.FORMATION_ENERGY])
        assert len(ds) == 2 and ds.targets[keys.FORMATION_ENERGY] == [-1.0, -2.0]  # CHGNet result left out
        mixed = {"source": "mongodb", "sources": [keys.SOURCE_VASP, keys.SOURCE_CHGNET]}
        with pytest.raises(ConfigError, match="allow_mixed_sources"):  # CHGNet and DFT: only when asked for
            load_data(mixed, [keys.FORMATION_ENERGY])
        ds = load_data({**mixed, "allow_mixed_sources": True}, [keys.FORMATION_ENERGY])
        assert len(ds) == 3 and sorted(ds.sources) == [keys.SOURCE_CHGNET, keys.SOURCE_VASP, keys.SOURCE_VASP]
    finally:
        mongoengine.disconnect_all()
