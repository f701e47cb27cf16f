"""`motif-screen query --format cif`: files from stored data stay inside --out, and all or nothing."""

from __future__ import annotations

import csv

import pytest

from motif_screen.cli.main import main


@pytest.fixture
def store(db, config_dir, perovskites):
    """Two candidates; returns (config_dir, the Candidate collection, their ids by formula)."""
    from motif_screen.db.documents import Candidate
    from motif_screen.db.records import set_predictions, upsert_candidate

    ids = {}
    for rank, name in enumerate(("SrTiO3", "BaTiO3")):
        doc, _ = upsert_candidate("demo", perovskites[name], origin={"method": "prior", "round": 0})
        set_predictions(doc.id, {}, acquisition=float(10 - rank))  # SrTiO3 first in the default order
        ids[name] = doc.id
    db.flush()
    return config_dir, db, Candidate._get_collection(), ids


def _export(config_dir, out) -> int:
    return main(["query", "--config-dir", str(config_dir), "--format", "cif", "--out", str(out)])


def test_a_stored_formula_cannot_move_files_out_of_the_folder(store, tmp_path, capsys):
    config_dir, db, collection, ids = store
    collection.update_one({"_id": ids["SrTiO3"]}, {"$set": {"formula": "/../../../../x"}})
    collection.update_one({"_id": ids["BaTiO3"]}, {"$set": {"formula": "../.hidden"}})
    db.flush()
    out = tmp_path / "deep" / "er" / "out"
    before = {p for p in tmp_path.rglob("*")}
    assert _export(config_dir, out) == 0, capsys.readouterr().err
    created = {p for p in tmp_path.rglob("*")} - before
    assert all(p == out or out in p.parents for p in created if p not in out.parents)
    assert sorted(p.name for p in out.iterdir()) == sorted(["index.csv", f"x_{ids['SrTiO3']}.cif", f"hidden_{ids['BaTiO3']}.cif"])
    with open(out / "index.csv", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["file"] for r in rows] == [f"x_{ids['SrTiO3']}.cif", f"hidden_{ids['BaTiO3']}.cif"]
    assert [r["formula"] for r in rows] == ["/../../../../x", "../.hidden"]  # the data itself is reported as stored


def test_planted_links_are_replaced_not_followed(store, tmp_path, capsys):
    config_dir, _, _, ids = store
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    out = tmp_path / "out"
    out.mkdir()
    (out / "index.csv").symlink_to(victim)
    (out / f"SrTiO3_{ids['SrTiO3']}.cif").symlink_to(victim)
    assert _export(config_dir, out) == 0, capsys.readouterr().err
    assert victim.read_text() == "precious"
    assert not any(p.is_symlink() for p in out.iterdir())
    assert "SrTiO3" in (out / "index.csv").read_text()


def test_a_candidate_without_structure_leaves_no_partial_export(store, tmp_path, capsys):
    config_dir, db, collection, ids = store
    collection.update_one({"_id": ids["BaTiO3"]}, {"$unset": {"structure": ""}})  # sorted after a good one
    db.flush()
    out = tmp_path / "out"
    assert _export(config_dir, out) == 2
    err = capsys.readouterr().err
    assert f"candidate {ids['BaTiO3']} (BaTiO3) has no structure" in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not out.exists() or list(out.iterdir()) == []
