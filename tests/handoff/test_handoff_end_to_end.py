"""Whole atomate workflows on the embedded store, VASP replaced by the fake-VASP kit, run by rapidfire."""

from __future__ import annotations

import pytest

from motif_screen import keys

ENERGY_PER_ATOM = -7.25


@pytest.fixture
def run_handoff(db, submitted_candidate, fworker, tmp_path, monkeypatch):
    """Build the candidate's workflow, fake its VASP, add it to the LaunchPad and run it all.

    Returns the LaunchPad and the Fireworks' states; the candidate stores its hand-off record as
    the submit Firetask stores it.
    """
    from fireworks.core.rocket_launcher import rapidfire

    from motif_screen.db import launchpad_for
    from motif_screen.db.repository import Repository
    from motif_screen.handoff.atomate_wf import build_oracle_workflow
    from motif_screen.testing.fake_vasp import use_fake_vasp_for_tests

    def run(target=keys.FORMATION_ENERGY, **fake_kwargs):
        structure = submitted_candidate.to_structure()
        wf = build_oracle_workflow(structure, target, candidate_id=str(submitted_candidate.id), campaign="c1",
                                   model_version=3, priority=1.5)
        Repository(db).update_candidate(submitted_candidate.id, handoff=wf.metadata["motif_screen_handoff"])
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


def _record(db, candidate, lpad):
    """What the round's collector does for one candidate whose workflow has finished."""
    from motif_screen.campaign.launchpad import FireworksView
    from motif_screen.campaign.steps import record_vasp_result
    from motif_screen.db.repository import Repository

    repo, view = Repository(db), FireworksView(lpad)
    fws = view.of_candidates([str(candidate.id)])[str(candidate.id)]
    failure = view.failure(fws)
    if failure:
        return repo.record_oracle_result(candidate.id, keys.SOURCE_VASP, run_status="failed", errors=[failure])
    return record_vasp_result(repo, repo.candidate(candidate.id), fw_id=fws[0].fw_id)


def test_optimize_static_lands_linked_task_docs_and_the_static_defines_the_energy(db, submitted_candidate,
                                                                                 run_handoff):
    from motif_screen.db.documents import Candidate

    lpad, states = run_handoff(band_gap_fn=lambda s: 1.75)
    assert states == {"SrTiO3-structure optimization": "COMPLETED", "SrTiO3-static": "COMPLETED"}

    cid = str(submitted_candidate.id)
    docs = list(db.db[keys.ATOMATE_TASKS].find({}))
    assert sorted(d["task_label"] for d in docs) == ["static", "structure optimization"]
    for d in docs:  # atomate's own task documents, carrying our link
        assert d[keys.TASKDOC_CANDIDATE_ID] == cid
        assert d[keys.TASKDOC_CAMPAIGN] == "c1" and d[keys.TASKDOC_MODEL_VERSION] == 3
        assert d["state"] == "successful" and "candidate=" + cid in d["tags"]
    # linked as they landed, recorded only when the whole workflow has finished
    cand = Candidate.objects.get(id=submitted_candidate.id)
    assert sorted(cand.task_ids) == sorted(str(d["task_id"]) for d in docs)
    assert cand.status == keys.STATUS_SUBMITTED

    result = _record(db, submitted_candidate, lpad)
    static_doc = next(d for d in docs if d["task_label"] == "static")
    assert result.source == keys.SOURCE_VASP and result.is_dft
    assert result.run_status == "successful" and result.errors == []
    assert result.energy_per_atom == pytest.approx(ENERGY_PER_ATOM)
    assert result.energy == pytest.approx(ENERGY_PER_ATOM * 5)
    assert result.task_id == str(static_doc["task_id"])
    assert result.fw_id == min(lpad.get_fw_ids()) and result.final_structure["lattice"]
    assert result.awaiting_references == ["O", "Sr", "Ti"]  # no reference yet: never a guessed zero
    assert result.formation_energy_per_atom is None
    cand.reload()
    assert cand.status == keys.STATUS_COMPUTED and cand.oracle["awaiting_references"] == ["O", "Sr", "Ti"]


def test_band_gap_workflow_runs_whole_and_takes_the_gap(db, submitted_candidate, run_handoff):
    lpad, states = run_handoff(keys.BAND_GAP, band_gap_fn=lambda s: 3.1)
    assert set(states.values()) == {"COMPLETED"} and len(states) == 4
    assert db.db[keys.ATOMATE_TASKS].count_documents({keys.TASKDOC_CANDIDATE_ID: str(submitted_candidate.id)}) == 4
    result = _record(db, submitted_candidate, lpad)
    assert result.band_gap == pytest.approx(3.1, abs=1e-3)
    assert result.energy_per_atom == pytest.approx(ENERGY_PER_ATOM)  # from the static, not an NSCF run


def test_a_fizzled_static_stops_every_later_step_and_fails_the_candidate_with_its_reason(db, submitted_candidate,
                                                                                        run_handoff):
    from motif_screen.campaign.launchpad import SKIPPED_MARK, FireworksView
    from motif_screen.db.documents import Candidate, OracleResult

    lpad, states = run_handoff(keys.BAND_GAP, fizzle=["static"])
    assert states == {"SrTiO3-structure optimization": "COMPLETED", "SrTiO3-static": "FIZZLED",
                      "SrTiO3-nscf uniform": "FIZZLED", "SrTiO3-nscf line": "FIZZLED"}  # nothing left WAITING
    view = FireworksView(lpad)
    by_name = {lpad.get_fw_by_id(i).name: i for i in lpad.get_fw_ids()}
    assert SKIPPED_MARK in view.fizzle_reason(by_name["SrTiO3-nscf uniform"])
    assert "SrTiO3-static" in view.fizzle_reason(by_name["SrTiO3-nscf uniform"])

    _record(db, submitted_candidate, lpad)
    _record(db, submitted_candidate, lpad)  # a collector running twice changes nothing
    cand = Candidate.objects.get(id=submitted_candidate.id)
    assert cand.status == keys.STATUS_FAILED
    assert cand.status_reason.startswith("vasp: SrTiO3-static (Firework") and "not successful" in cand.status_reason
    result = OracleResult.objects.get(candidate=submitted_candidate.id)
    assert result.run_status == "failed" and result.energy is None and result.band_gap is None
    assert OracleResult.objects.count() == 1


def test_a_failed_uniform_nscf_is_never_replaced_by_another_steps_gap(db, submitted_candidate, run_handoff):
    from motif_screen.db.documents import Candidate

    lpad, states = run_handoff(keys.BAND_GAP, fizzle=["nscf uniform"])
    assert states["SrTiO3-nscf uniform"] == "FIZZLED" and states["SrTiO3-nscf line"] == "COMPLETED"
    result = _record(db, submitted_candidate, lpad)
    assert result.run_status == "failed" and result.band_gap is None
    cand = Candidate.objects.get(id=submitted_candidate.id)
    assert cand.status == keys.STATUS_FAILED and "nscf uniform" in cand.status_reason


def test_missing_outputs_of_the_first_step_reach_the_last(db, submitted_candidate, run_handoff):
    lpad, states = run_handoff(fizzle=["structure optimization"], fizzle_mode="missing_outputs")
    assert states == {"SrTiO3-structure optimization": "FIZZLED", "SrTiO3-static": "FIZZLED"}
    result = _record(db, submitted_candidate, lpad)
    assert result.run_status == "failed" and "SrTiO3-structure optimization" in result.errors[0]


PRESET_STEPS = [(keys.FORMATION_ENERGY, "structure optimization"), (keys.FORMATION_ENERGY, "static"),
                (keys.BAND_GAP, "structure optimization"), (keys.BAND_GAP, "static"),
                (keys.BAND_GAP, "nscf uniform"), (keys.BAND_GAP, "nscf line")]


@pytest.mark.parametrize("mode", ["unconverged", "missing_outputs", "truncated"])
@pytest.mark.parametrize("target, step", PRESET_STEPS)
def test_a_failure_at_any_step_of_any_preset_fails_with_its_reason_then_a_rerun_recovers(
        db, submitted_candidate, fworker, run_handoff, tmp_path, target, step, mode):
    """Every step of both presets, broken three ways a real VASP run breaks: the candidate fails
    naming the step; after the outputs are fixed, `lpad rerun_fws` of that step makes it computed."""
    from fireworks.core.rocket_launcher import rapidfire

    from motif_screen.db.documents import Candidate, OracleResult
    from motif_screen.handoff.atomate_wf import build_oracle_workflow
    from motif_screen.testing.fake_vasp import make_fake_vasp_refs

    lpad, states = run_handoff(target, fizzle=[step], fizzle_mode=mode, band_gap_fn=lambda s: 2.5)
    assert states[f"SrTiO3-{step}"] == "FIZZLED"
    assert "WAITING" not in states.values() and "READY" not in states.values()
    result = _record(db, submitted_candidate, lpad)
    cand = Candidate.objects.get(id=submitted_candidate.id)
    assert result.run_status == "failed" and cand.status == keys.STATUS_FAILED
    assert cand.status_reason.startswith(f"vasp: SrTiO3-{step} (Firework")

    clean = build_oracle_workflow(submitted_candidate.to_structure(), target, candidate_id=str(cand.id), campaign="c1",
                                  model_version=3, priority=1.5)
    make_fake_vasp_refs(clean, tmp_path / "refs", lambda s: ENERGY_PER_ATOM * len(s), band_gap_fn=lambda s: 2.5)
    fw_id = next(i for i in lpad.get_fw_ids() if lpad.get_fw_by_id(i).name == f"SrTiO3-{step}")
    lpad.rerun_fw(fw_id)
    rapidfire(lpad, fworker, strm_lvl="CRITICAL")
    assert {lpad.get_fw_by_id(i).state for i in lpad.get_fw_ids()} == {"COMPLETED"}
    result = _record(db, submitted_candidate, lpad)
    cand.reload()
    assert result.run_status == "successful" and cand.status == keys.STATUS_COMPUTED
    assert result.energy_per_atom == pytest.approx(ENERGY_PER_ATOM)
    if target == keys.BAND_GAP:
        assert result.band_gap == pytest.approx(2.5, abs=1e-3)
    assert OracleResult.objects.count() == 1
