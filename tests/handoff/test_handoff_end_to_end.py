"""Whole atomate workflows on the embedded store, VASP replaced by the fake-VASP kit, run by rapidfire."""

from __future__ import annotations

import pytest

from motif_screen import keys

ENERGY_PER_ATOM = -7.25


@pytest.fixture
def run_handoff(db, submitted_candidate, fworker, tmp_path, monkeypatch):
    """Build the candidate's workflow, fake its VASP, add it to the LaunchPad and run it all."""
    from fireworks.core.rocket_launcher import rapidfire

    from motif_screen.db import launchpad_for
    from motif_screen.handoff.atomate_wf import build_oracle_workflow
    from motif_screen.testing.fake_vasp import use_fake_vasp_for_tests

    def run(target=keys.FORMATION_ENERGY, **fake_kwargs):
        structure = submitted_candidate.to_structure()
        wf = build_oracle_workflow(structure, target, candidate_id=str(submitted_candidate.id), campaign="c1",
                                   model_version=3, priority=1.5)
        wf = use_fake_vasp_for_tests(wf, tmp_path / "refs", lambda s: ENERGY_PER_ATOM * len(s), **fake_kwargs)
        lpad = launchpad_for(db)
        lpad.add_wf(wf)
        launches = tmp_path / "launches"
        launches.mkdir(exist_ok=True)
        monkeypatch.chdir(launches)
        rapidfire(lpad, fworker, strm_lvl="CRITICAL")
        states = {lpad.get_fw_by_id(i).name: lpad.get_fw_by_id(i).state for i in lpad.get_fw_ids()}
        return lpad, states

    return run


def test_optimize_static_lands_task_docs_and_a_linked_oracle_result(db, submitted_candidate, run_handoff):
    from motif_screen.db.documents import Candidate, OracleResult

    _, states = run_handoff(band_gap_fn=lambda s: 1.75)
    assert states == {"SrTiO3-structure optimization": "COMPLETED", "SrTiO3-static": "COMPLETED"}

    cid = str(submitted_candidate.id)
    docs = list(db.db[keys.ATOMATE_TASKS].find({}))
    assert sorted(d["task_label"] for d in docs) == ["static", "structure optimization"]
    for d in docs:  # atomate's own task documents, carrying our link
        assert d[keys.TASKDOC_CANDIDATE_ID] == cid
        assert d[keys.TASKDOC_CAMPAIGN] == "c1" and d[keys.TASKDOC_MODEL_VERSION] == 3
        assert d["state"] == "successful" and "candidate=" + cid in d["tags"]

    result = OracleResult.objects.get(candidate=submitted_candidate.id)
    static_doc = next(d for d in docs if d["task_label"] == "static")
    assert result.source == keys.SOURCE_VASP and result.is_dft
    assert result.run_status == "successful" and result.errors == []
    assert result.energy_per_atom == pytest.approx(ENERGY_PER_ATOM)
    assert result.energy == pytest.approx(ENERGY_PER_ATOM * 5)
    assert result.band_gap == pytest.approx(1.75, abs=1e-3)
    assert result.task_id == str(static_doc["task_id"])
    assert result.fw_id is not None and result.final_structure["lattice"]
    cand = Candidate.objects.get(id=submitted_candidate.id)
    assert cand.status == keys.STATUS_COMPUTED
    assert cand.oracle["source"] == keys.SOURCE_VASP


def test_band_gap_workflow_runs_whole_and_takes_the_gap(db, submitted_candidate, run_handoff):
    from motif_screen.db.documents import OracleResult

    _, states = run_handoff(keys.BAND_GAP, band_gap_fn=lambda s: 3.1)
    assert set(states.values()) == {"COMPLETED"} and len(states) == 4
    assert db.db[keys.ATOMATE_TASKS].count_documents({keys.TASKDOC_CANDIDATE_ID: str(submitted_candidate.id)}) == 4
    result = OracleResult.objects.get(candidate=submitted_candidate.id)
    assert result.band_gap == pytest.approx(3.1, abs=1e-3)
    assert result.energy_per_atom == pytest.approx(ENERGY_PER_ATOM)  # from the static, not an NSCF run


def test_fizzled_static_marks_the_candidate_failed_with_the_reason(db, submitted_candidate, run_handoff):
    from motif_screen.db.documents import Candidate, OracleResult
    from motif_screen.handoff.failures import fizzle_reason, record_fizzled_firework

    lpad, states = run_handoff(fizzle=["static"])
    assert states == {"SrTiO3-structure optimization": "COMPLETED", "SrTiO3-static": "FIZZLED"}
    fizzled = next(i for i in lpad.get_fw_ids() if lpad.get_fw_by_id(i).state == "FIZZLED")
    assert "VaspToDb indicates that job is not successful" in fizzle_reason(lpad, fizzled)
    # the relaxation finished, but the candidate was not marked computed before its last step
    assert Candidate.objects.get(id=submitted_candidate.id).status == keys.STATUS_SUBMITTED

    record_fizzled_firework(lpad, fizzled)
    record_fizzled_firework(lpad, fizzled)  # a collector running twice changes nothing
    cand = Candidate.objects.get(id=submitted_candidate.id)
    assert cand.status == keys.STATUS_FAILED
    assert "SrTiO3-static" in cand.status_reason and "not successful" in cand.status_reason
    result = OracleResult.objects.get(candidate=submitted_candidate.id)
    assert result.run_status == "failed" and result.energy is None
    assert OracleResult.objects.count() == 1


def test_missing_outputs_fizzle_too(db, submitted_candidate, run_handoff):
    from motif_screen.handoff.failures import fizzle_reason

    lpad, states = run_handoff(fizzle=["structure optimization"], fizzle_mode="missing_outputs")
    assert states["SrTiO3-structure optimization"] == "FIZZLED"
    assert states["SrTiO3-static"] == "WAITING"
    fizzled = next(i for i in lpad.get_fw_ids() if lpad.get_fw_by_id(i).state == "FIZZLED")
    assert "fizzled:" in fizzle_reason(lpad, fizzled)
