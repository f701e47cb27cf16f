"""`motif-screen references`: entries users already have, ground states they give, and bad files."""

from __future__ import annotations

import json

import pytest
from pymatgen.entries.computed_entries import ComputedEntry

from motif_screen import keys
from motif_screen.cli.main import main

GGA = {"run_type": "GGA", "is_hubbard": False, "hubbards": {},
       "potcar_spec": [{"titel": "PAW_PBE Li_sv 10Sep2004", "hash": None}, {"titel": "PAW_PBE O 08Apr2002", "hash": None}]}


def entries_file(tmp_path, entries, name="refs.json"):
    path = tmp_path / name
    path.write_text(json.dumps([e.as_dict() for e in entries]))
    return path


def test_add_is_idempotent_and_list_shows_what_was_stored(config_dir, tmp_path, capsys):
    li = ComputedEntry("Li", -1.909, parameters={**GGA, "potcar_spec": GGA["potcar_spec"][:1]}, entry_id="mp-135")
    o2 = ComputedEntry("O2", -9.86, parameters={**GGA, "potcar_spec": GGA["potcar_spec"][1:]}, entry_id="mp-12957")
    path = entries_file(tmp_path, [li, o2])
    assert main(["references", "add", str(path), "--config-dir", str(config_dir)]) == 0
    assert "2 new of 2 entries" in capsys.readouterr().out
    assert main(["references", "add", str(path), "--config-dir", str(config_dir)]) == 0
    assert "0 new of 2 entries" in capsys.readouterr().out  # re-adding the same file changes nothing
    assert main(["references", "list", "--config-dir", str(config_dir), "--elements", "Li", "O"]) == 0
    out = capsys.readouterr().out
    assert "Li" in out and "O2" in out and "GGA" in out and "user" in out


@pytest.mark.parametrize("content, message", [
    ("{not json", "not JSON"),
    ("[]", "no entries"),
    (json.dumps([{"@class": "ComputedEntry", "composition": {"Li": 1}, "energy": None}]), "energy"),
])
def test_bad_reference_files_store_nothing(config_dir, tmp_path, capsys, content, message):
    from motif_screen.db import embedded

    path = tmp_path / "bad.json"
    path.write_text(content)
    before = (config_dir / "embedded_store.json").read_bytes()
    assert main(["references", "add", str(path), "--config-dir", str(config_dir)]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    embedded.close_all()
    assert (config_dir / "embedded_store.json").read_bytes() == before


def test_mixed_functionals_are_refused_whole(config_dir, tmp_path, capsys):
    r2scan = {"run_type": "r2SCAN", "potcar_spec": GGA["potcar_spec"][1:]}
    path = entries_file(tmp_path, [ComputedEntry("Li", -1.9, parameters={**GGA, "potcar_spec": GGA["potcar_spec"][:1]}),
                                   ComputedEntry("O2", -12.0, parameters=r2scan)])
    assert main(["references", "add", str(path), "--config-dir", str(config_dir)]) == 2
    assert "functional" in capsys.readouterr().err.lower()
    assert main(["references", "list", "--config-dir", str(config_dir)]) == 0
    assert "no references stored" in capsys.readouterr().out


def test_a_ground_state_the_user_gives_is_used_for_an_element_without_one(config_dir, tmp_path, capsys, db):
    from pymatgen.core import Lattice, Structure

    from motif_screen.campaign.steps import missing_references
    from motif_screen.db.repository import Repository

    repo = Repository(db)
    refs, impossible = missing_references(repo, None, ["B", "Li"], "optimize_static")
    assert [r["element"] for r in refs] == ["Li"] and "B" in impossible and "supply" in impossible["B"]
    boron = Structure(Lattice.hexagonal(4.9, 12.6), ["B"] * 3, [[0, 0, 0], [1 / 3, 2 / 3, 0.1], [2 / 3, 1 / 3, 0.2]])
    boron.to(filename=str(tmp_path / "B.cif"))
    db.flush()
    assert main(["references", "prototype", "B", str(tmp_path / "B.cif"), "--config-dir", str(config_dir)]) == 0
    assert "B: ground state from" in capsys.readouterr().out
    refs, impossible = missing_references(Repository(db), None, ["B", "Li"], "optimize_static")
    assert [r["element"] for r in refs] == ["B"] and not impossible  # Li was submitted the first time
    assert refs[0]["structure"].composition.reduced_formula == "B"
    (tmp_path / "LiB.cif").write_text(boron.copy().replace_species({"B": "Li"}).to(fmt="cif"))
    assert main(["references", "prototype", "B", str(tmp_path / "LiB.cif"), "--config-dir", str(config_dir)]) == 2
    assert "not ordered B alone" in capsys.readouterr().err


def test_status_says_which_references_computed_candidates_wait_for(db, config_dir, perovskites, capsys):
    from motif_screen.db.documents import Campaign
    from motif_screen.db.records import record_oracle_result, set_status, upsert_candidate

    Campaign(name="wait", target={"property": keys.FORMATION_ENERGY, "goal": "minimize", "upper": -1.0},
             budget=2, rounds=1, config={}).save()
    cand, _ = upsert_candidate("wait", perovskites["SrTiO3"], origin={"method": "prior", "round": 0})
    set_status(cand.id, keys.STATUS_SCREENED, selection=keys.SELECTED_BY_ACQUISITION)
    set_status(cand.id, keys.STATUS_SUBMITTED)
    record_oracle_result(cand.id, keys.SOURCE_VASP, run_status="successful", energy=-40.0, energy_per_atom=-8.0,
                         awaiting_references=["Sr", "O"])
    db.flush()
    assert main(["status", "--config-dir", str(config_dir)]) == 0
    assert "computed, awaiting references: 1 candidates (no reference yet for O, Sr)" in capsys.readouterr().out
    assert main(["query", "--config-dir", str(config_dir), "--campaign", "wait", "--format", "json"]) == 0
    [row] = json.loads(capsys.readouterr().out)
    assert row["awaiting_references"] == "O Sr" and row[f"oracle_{keys.FORMATION_ENERGY}"] is None
