"""The atomate workflow a candidate is handed off with: preset by target, powerups, bad input."""

from __future__ import annotations

import pytest

from motif_screen import keys
from motif_screen.errors import InputError
from motif_screen.handoff.atomate_wf import build_oracle_workflow, preset_for_target
from motif_screen.handoff.powerups import (
    candidate_id_of_firework,
    priority_from_acquisition,
    set_queue,
    track_candidate,
)


def _task_names(fw):
    return [t["_fw_name"] if "_fw_name" in t else str(t) for t in fw.to_dict()["spec"]["_tasks"]]


def _tasks(wf, name_part):
    return [(fw, t) for fw in wf.fws for t in fw.tasks if name_part in str(t)]


@pytest.fixture(scope="module")
def energy_wf():
    from pymatgen.core import Lattice, Structure

    s = Structure(Lattice.cubic(3.905), ["Sr", "Ti", "O", "O", "O"],
                  [[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]])
    return build_oracle_workflow(
        s, keys.FORMATION_ENERGY, candidate_id="cand-1", campaign="c1", model_version=3,
        priority=0.4567, queue_options={"walltime": "02:00:00", "nodes": 2, "account": "m1234"},
    )


def test_energy_target_is_optimize_then_static_reading_the_optimised_structure(energy_wf):
    names = sorted(fw.name for fw in energy_wf.fws)
    assert names == ["SrTiO3-static", "SrTiO3-structure optimization"]
    by_name = {fw.name: fw for fw in energy_wf.fws}
    opt, static = by_name["SrTiO3-structure optimization"], by_name["SrTiO3-static"]
    assert energy_wf.links[opt.fw_id] == [static.fw_id]
    static_tasks = [str(t) for t in static.tasks]
    # atomate's from_prev_calc chain: copy CONTCAR -> POSCAR, then the static input set from it
    assert any("CopyVaspOutputs" in t for t in static_tasks)
    assert any("WriteVaspStaticFromPrev" in t for t in static_tasks)
    opt_write = next(t for t in opt.tasks if "WriteVaspFromIOSet" in str(t))
    assert type(opt_write["vasp_input_set"]).__name__ == "MPRelaxSet"


def test_band_gap_target_uses_atomate_bandstructure_preset(perovskites):
    wf = build_oracle_workflow(perovskites["BaTiO3"], keys.BAND_GAP, candidate_id="x", campaign="c")
    assert sorted(fw.name.split("-", 1)[1] for fw in wf.fws) == [
        "nscf line", "nscf uniform", "static", "structure optimization"]
    assert preset_for_target(keys.BAND_GAP) == "bandstructure"


def test_powerups_tags_fields_priority_queue_and_placeholders(energy_wf):
    for fw in energy_wf.fws:
        assert fw.spec["tags"] == ["motif_screen", "campaign=c1", "candidate=cand-1"]
        assert fw.spec["_priority"] == priority_from_acquisition(0.4567) == 457
        assert fw.spec["_queueadapter"] == {"walltime": "02:00:00", "nodes": 2, "account": "m1234"}
        assert fw.spec[keys.TASKDOC_CANDIDATE_ID] == "cand-1"
        assert candidate_id_of_firework(fw) == "cand-1"
    to_db = _tasks(energy_wf, "VaspToDb")
    assert len(to_db) == 2
    for _, task in to_db:
        fields = task["additional_fields"]
        assert fields[keys.TASKDOC_CANDIDATE_ID] == "cand-1"
        assert fields[keys.TASKDOC_CAMPAIGN] == "c1"
        assert fields[keys.TASKDOC_MODEL_VERSION] == 3
        assert fields["tags"] == ["motif_screen", "campaign=c1", "candidate=cand-1"]
        assert task["db_file"] == ">>db_file<<"
    runs = _tasks(energy_wf, "RunVaspCustodian")
    assert len(runs) == 2
    for _, task in runs:
        assert task["vasp_cmd"] == ">>vasp_cmd<<"  # resolved by env_chk on each worker
        assert "handler_group" not in task  # custodian handlers exactly as atomate chooses them
    assert energy_wf.metadata[keys.TASKDOC_CANDIDATE_ID] == "cand-1"
    assert "tags" in energy_wf.metadata


def test_every_vasp_step_links_its_task_document_and_every_step_is_guarded(energy_wf):
    links = _tasks(energy_wf, "LinkTaskDocument")
    assert {fw.name for fw, _ in links} == {"SrTiO3-structure optimization", "SrTiO3-static"}
    assert all(task["candidate_id"] == "cand-1" for _, task in links)
    for fw in energy_wf.fws:  # the guard runs first; a child runs (and stops at once) after a fizzled parent
        assert "GuardOracleStep" in str(fw.tasks[0])
        assert fw.spec.get("_allow_fizzled_parents", False) == (fw.fw_id not in energy_wf.root_fw_ids)
    again = track_candidate(energy_wf, "cand-1")  # idempotent
    assert len(_tasks(again, "LinkTaskDocument")) == 2


def test_the_candidate_knows_which_step_defines_each_value(perovskites):
    energy = build_oracle_workflow(perovskites["SrTiO3"], keys.FORMATION_ENERGY, candidate_id="a", campaign="c")
    assert energy.metadata["motif_screen_handoff"] == {
        "preset": "optimize_static", "steps": ["structure optimization", "static"],
        "defines": {"energy": "static", "band_gap": "static"}}
    gap = build_oracle_workflow(perovskites["SrTiO3"], keys.BAND_GAP, candidate_id="b", campaign="c")
    record = gap.metadata["motif_screen_handoff"]
    assert record["preset"] == "bandstructure" and record["defines"] == {"energy": "static", "band_gap": "nscf uniform"}
    assert set(record["steps"]) == {"structure optimization", "static", "nscf uniform", "nscf line"}


def test_workflow_survives_json_round_trip_like_lpad_add(energy_wf):
    from fireworks import Workflow

    from motif_screen.firetasks.oracle import GuardOracleStep, LinkTaskDocument

    text = energy_wf.to_format("json")  # what `lpad add wf.json` reads back
    back = Workflow.from_format(text, "json")
    assert any(isinstance(t, LinkTaskDocument) for fw in back.fws for t in fw.tasks)
    assert all(isinstance(fw.tasks[0], GuardOracleStep) for fw in back.fws)
    assert "motif_screen.firetasks.oracle.LinkTaskDocument" in text


def test_named_atomate_preset_and_yaml_file(perovskites, tmp_path):
    wf = build_oracle_workflow(perovskites["KNbO3"], keys.ENERGY_PER_ATOM, candidate_id="k", campaign="c",
                               preset="static_only.yaml")
    assert [fw.name for fw in wf.fws] == ["KNbO3-static"]
    spec = tmp_path / "mine.yaml"
    spec.write_text("fireworks:\n- fw: atomate.vasp.fireworks.core.OptimizeFW\n", encoding="utf-8")
    wf2 = build_oracle_workflow(perovskites["KNbO3"], keys.ENERGY_PER_ATOM, candidate_id="k", campaign="c",
                                preset=str(spec))
    assert [fw.name for fw in wf2.fws] == ["KNbO3-structure optimization"]


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"target": "bulk_modulus"}, "unknown screening target 'bulk_modulus'"),
        ({"preset": "no_such_workflow.yaml"}, "unknown atomate preset 'no_such_workflow.yaml'"),
        ({"candidate_id": " "}, "needs the candidate id"),
        ({"priority": float("nan")}, "not finite"),
        ({"queue_options": ["walltime"]}, "queue_options must be a mapping"),
    ],
)
def test_bad_input_is_one_clear_input_error(perovskites, kwargs, message):
    args = {"target": keys.FORMATION_ENERGY, "candidate_id": "c", "campaign": "camp", **kwargs}
    target = args.pop("target")
    with pytest.raises(InputError, match=message):
        build_oracle_workflow(perovskites["SrTiO3"], target, **args)


def test_molecules_and_disordered_cells_are_refused(perovskites):
    from pymatgen.core import Molecule

    with pytest.raises(InputError, match="periodic pymatgen Structure"):
        build_oracle_workflow(Molecule(["H", "H"], [[0, 0, 0], [0, 0, 0.74]]), keys.FORMATION_ENERGY,
                              candidate_id="c", campaign="camp")
    disordered = perovskites["SrTiO3"].copy()
    disordered.replace(0, {"Sr": 0.5, "Ba": 0.5})
    with pytest.raises(InputError, match="disordered"):
        build_oracle_workflow(disordered, keys.FORMATION_ENERGY, candidate_id="c", campaign="camp")


def test_queue_options_without_atomate_keys_merge_into_qadapter(energy_wf):
    from fireworks import Workflow

    wf = set_queue(Workflow.from_dict(energy_wf.to_dict()), {"ntasks": 64})
    assert all(fw.spec["_queueadapter"]["ntasks"] == 64 for fw in wf.fws)
