"""The oracle Firetasks as FireWorks runs them: CHGNet oracle, fizzles, and bad db_file / params."""

from __future__ import annotations

import pytest

from motif_screen import keys
from motif_screen.errors import ConfigError, InputError
from motif_screen.firetasks.oracle import GuardOracleStep, LinkTaskDocument, RunChgnetOracle

ORIGIN = {"method": "perturb", "parents": [], "model_version": 1, "round": 0}


@pytest.fixture(autouse=True)
def _mongomock_gridfs():
    """FireWorks enables mongomock's GridFS only when first imported with the store configured."""
    import mongomock.gridfs

    mongomock.gridfs.enable_gridfs_integration()


@pytest.fixture(autouse=True)
def _one_thread():
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _submitted(structure, campaign="c1"):
    from motif_screen.db.records import set_status, upsert_candidate

    cand, _ = upsert_candidate(campaign, structure, origin=ORIGIN)
    set_status(cand.id, keys.STATUS_SCREENED)
    set_status(cand.id, keys.STATUS_SUBMITTED)
    return cand


def _run(db, config_dir, tmp_path, monkeypatch, firework):
    from fireworks import FWorker, Workflow
    from fireworks.core.rocket_launcher import rapidfire

    from motif_screen.db import launchpad_for

    lpad = launchpad_for(db)
    lpad.add_wf(Workflow([firework]))
    monkeypatch.chdir(tmp_path)
    rapidfire(lpad, FWorker(env={"db_file": str(config_dir / "db.json")}), strm_lvl="CRITICAL")
    fw = lpad.get_fw_by_id(lpad.get_fw_ids()[0])
    return fw


def test_chgnet_oracle_firework_records_a_labelled_non_dft_result(db, config_dir, perovskites, tmp_path, monkeypatch):
    from fireworks import Firework

    from motif_screen.db.documents import Candidate, OracleResult

    cand = _submitted(perovskites["SrTiO3"])
    task = RunChgnetOracle(
        candidate_id=str(cand.id), db_file=">>db_file<<", steps=20, references_file=str(tmp_path / "refs.json")
    )
    fw = _run(db, config_dir, tmp_path, monkeypatch, Firework([task], name="chgnet"))
    assert fw.state == "COMPLETED"
    result = OracleResult.objects.get(candidate=cand.id)
    assert result.source == keys.SOURCE_CHGNET and not result.is_dft
    assert result.run_status == "successful"
    assert -10.0 < result.energy_per_atom < -6.0
    assert -4.5 < result.formation_energy_per_atom < -2.5  # SrTiO3 is strongly bound
    assert result.functional == "CHGNet" and result.entry["energy"] == pytest.approx(result.energy)
    # the hull of the shipped CHGNet competing phases (SrO, TiO2, elements): SrTiO3 lies on or below it,
    # by far less than its formation energy (experiment: SrO + TiO2 -> SrTiO3 gives -0.28 eV/atom)
    assert result.formation_energy_per_atom < result.energy_above_hull < 0.1
    assert set(result.stability["decomposition"]) == {"SrO", "TiO2"}
    assert result.fw_id is None or isinstance(result.fw_id, int)
    cand = Candidate.objects.get(id=cand.id)
    assert cand.status == keys.STATUS_COMPUTED and cand.oracle["source"] == keys.SOURCE_CHGNET
    stored = fw.launches[-1].action.stored_data
    assert stored["source"] == "chgnet" and stored["steps"] <= 21


def test_a_failing_relaxation_fizzles_and_marks_the_candidate_failed(db, config_dir, tmp_path, monkeypatch):
    from fireworks import Firework
    from pymatgen.core import Lattice, Structure

    from motif_screen.db.documents import Candidate, OracleResult

    # element 118 is beyond CHGNet's element table: the model itself fails
    cand = _submitted(Structure(Lattice.cubic(5.0), ["Og"], [[0, 0, 0]]))
    task = RunChgnetOracle(candidate_id=str(cand.id), steps=5, references_file=str(tmp_path / "refs.json"))
    fw = _run(db, config_dir, tmp_path, monkeypatch, Firework([task], name="chgnet"))
    assert fw.state == "FIZZLED"
    trace = fw.launches[-1].action.stored_data["_exception"]["_stacktrace"]
    assert f"CHGNet relaxation of candidate {cand.id} (Og) failed" in trace
    result = OracleResult.objects.get(candidate=cand.id)
    assert result.run_status == "failed" and "CHGNet relaxation" in result.errors[0]
    assert Candidate.objects.get(id=cand.id).status == keys.STATUS_FAILED


def test_db_file_pointing_nowhere_or_unset_is_a_clear_error(db, tmp_path):
    task = LinkTaskDocument(candidate_id="abc", db_file=str(tmp_path / "missing" / "db.json"))
    with pytest.raises(ConfigError, match="does not exist"):
        task.run_task({})
    with pytest.raises(ConfigError, match="add `db_file` under `env:`"):
        LinkTaskDocument(candidate_id="abc").run_task({"_fw_env": {}})


def test_record_without_a_task_document_and_for_unknown_candidates(db, config_dir, tmp_path, monkeypatch):
    spec = {"_fw_env": {"db_file": str(config_dir / "db.json")}}
    monkeypatch.chdir(tmp_path)
    with pytest.raises(InputError, match="no atomate task document"):
        LinkTaskDocument(candidate_id="6b06474ff6b0e233b56df534").run_task(spec)
    db.db[keys.ATOMATE_TASKS].insert_one({"task_id": 7, "dir_name": f"host:{tmp_path}", "state": "successful"})
    with pytest.raises(InputError, match=f"has no `{keys.TASKDOC_CANDIDATE_ID}` field"):
        LinkTaskDocument(candidate_id="6b06474ff6b0e233b56df534").run_task(spec)
    with pytest.raises(InputError, match="no candidate with id"):
        RunChgnetOracle(candidate_id="6b06474ff6b0e233b56df534").run_task(spec)


def test_params_are_strict():
    with pytest.raises(Exception, match="required parameter|candidate_id"):
        RunChgnetOracle(db_file=">>db_file<<")
    with pytest.raises(Exception, match="fmaxx"):
        RunChgnetOracle(candidate_id="x", fmaxx=0.1)


def test_the_guard_stops_after_a_fizzled_parent_and_skips_what_is_already_computed(db, config_dir, perovskites):
    from motif_screen.campaign.launchpad import SKIPPED_MARK
    from motif_screen.db.records import record_oracle_result

    spec = {"_fw_env": {"db_file": str(config_dir / "db.json")}}
    cand = _submitted(perovskites["SrTiO3"])
    guard = GuardOracleStep(candidate_id=str(cand.id))
    assert not guard.run_task(spec).exit  # nothing known: the step runs
    with pytest.raises(RuntimeError, match=SKIPPED_MARK):
        guard.run_task({**spec, "_fizzled_parents": [{"fw_id": 4, "name": "SrTiO3-static"}]})
    record_oracle_result(cand.id, keys.SOURCE_VASP, run_status="successful", energy=-40.0, energy_per_atom=-8.0)
    action = guard.run_task(spec)
    assert action.exit and "already computed" in action.stored_data["skipped"]
