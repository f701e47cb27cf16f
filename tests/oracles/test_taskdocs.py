"""Oracle values from atomate task documents: each value from its defining step, on real VASP outputs."""

from __future__ import annotations

import copy

import numpy as np
import pytest
from pymatgen.core import Structure
from pymatgen.entries.computed_entries import ComputedStructureEntry

from motif_screen import keys
from motif_screen.errors import InputError
from motif_screen.oracles.taskdocs import (
    DEFINING_STEPS,
    candidate_id_of,
    defining_steps,
    entry_from_taskdoc,
    step_name,
    values_from_taskdocs,
)

BANDSTRUCTURE_STEPS = ["structure optimization", "static", "nscf uniform", "nscf line"]  # wf_bandstructure
METAGGA_STEPS = ["PBEsol structure optimization", "R2SCAN structure optimization"]  # metagga_optimization.yaml


# --- real VASP outputs ----------------------------------------------------------------------


@pytest.mark.parametrize("folder", ["PBESol_pre_opt_for_SCAN_LiF", "SCAN_structure_optimization_LiF", "Al_nscf_uniform"])
def test_entry_from_taskdoc_is_what_vasprun_reads(real_runs, vasprun, folder):
    run_dir, doc = real_runs[folder]
    vr = vasprun(run_dir)
    entry = entry_from_taskdoc(doc)
    assert isinstance(entry, ComputedStructureEntry)
    assert entry.uncorrected_energy == float(vr.final_energy)
    assert entry.energy_per_atom == float(vr.final_energy) / len(vr.final_structure)
    assert entry.correction == 0  # uncorrected: corrections belong to stability.corrected
    assert entry.entry_id == str(doc["task_id"])
    assert entry.parameters["run_type"] == vr.run_type
    assert entry.parameters["ENCUT"] == vr.parameters["ENMAX"] == vr.incar["ENCUT"]
    assert entry.parameters["potcar_spec"] == vr.potcar_spec
    assert entry.parameters["hubbards"] == vr.hubbards and entry.parameters["is_hubbard"] == vr.is_hubbard
    assert entry.structure.species == vr.final_structure.species
    np.testing.assert_allclose(entry.structure.lattice.matrix, vr.final_structure.lattice.matrix, rtol=0, atol=1e-12)
    np.testing.assert_allclose(entry.structure.frac_coords, vr.final_structure.frac_coords, rtol=0, atol=1e-12)


def test_metagga_workflow_takes_energies_from_its_last_optimisation(real_runs, vasprun):
    """atomate's metagga_optimization.yaml: a PBEsol pre-optimisation, then the r2SCAN optimisation."""
    (pbesol_dir, pbesol), (scan_dir, scan) = real_runs["PBESol_pre_opt_for_SCAN_LiF"], real_runs["SCAN_structure_optimization_LiF"]
    defines = defining_steps(METAGGA_STEPS)
    assert defines == {"energy": "r2scan structure optimization", keys.BAND_GAP: None}
    values = values_from_taskdocs([pbesol, scan], defines)
    vr = vasprun(scan_dir)
    assert values["run_status"] == "successful" and values["errors"] == []
    assert values["energy"] == float(vr.final_energy) == pytest.approx(-9.64589684, abs=1e-8)
    assert values["energy_per_atom"] == float(vr.final_energy) / 2
    assert values["functional"] == "r2SCAN" and values["input_set"] == "PAW_PBE ENCUT=680"
    assert values["task_id"] == str(scan["task_id"])
    assert values["task_ids"] == [str(pbesol["task_id"]), str(scan["task_id"])]
    final = Structure.from_dict(values["final_structure"])
    assert final.species == vr.final_structure.species
    np.testing.assert_allclose(final.lattice.matrix, vr.final_structure.lattice.matrix, rtol=0, atol=1e-12)
    np.testing.assert_allclose(final.frac_coords, vr.final_structure.frac_coords, rtol=0, atol=1e-12)
    assert values["entry"] == entry_from_taskdoc(scan).as_dict()
    assert values[keys.BAND_GAP] is None  # no step of this workflow defines a band gap
    assert float(vasprun(pbesol_dir).final_energy) != values["energy"]  # the PBEsol run is not read


def test_band_gap_is_the_uniform_nscf_gap_vasprun_reads(real_runs, vasprun):
    run_dir, doc = real_runs["Al_nscf_uniform"]
    defines = defining_steps(["nscf uniform"])
    values = values_from_taskdocs([doc], defines)
    expected = vasprun(run_dir).get_band_structure(efermi="smart").get_band_gap()["energy"]  # as VaspDrone reads it
    assert values["run_status"] == "successful"
    assert values[keys.BAND_GAP] == expected == doc["output"]["bandgap"]
    assert values["energy"] is None and values["entry"] is None  # an NSCF run defines no energy


# --- which step defines what ----------------------------------------------------------------


def test_defining_steps_of_atomate_presets():
    assert set(DEFINING_STEPS) == {"energy", keys.BAND_GAP}
    assert defining_steps(BANDSTRUCTURE_STEPS) == {"energy": "static", keys.BAND_GAP: "nscf uniform"}
    assert defining_steps(["structure optimization", "static"]) == {"energy": "static", keys.BAND_GAP: "static"}
    assert defining_steps(["structure optimization"]) == {"energy": "structure optimization", keys.BAND_GAP: None}
    assert defining_steps([" Static ", "NSCF Line"]) == {"energy": "static", keys.BAND_GAP: "static"}


def test_step_name_is_the_normalised_task_label(bandstructure_docs):
    doc = copy.deepcopy(bandstructure_docs["nscf uniform"])
    assert step_name(doc) == "nscf uniform"
    doc["task_label"] = "  NSCF   Uniform "
    assert step_name(doc) == "nscf uniform"
    del doc["task_label"]
    with pytest.raises(InputError, match="has no task_label"):
        step_name(doc)


def test_each_value_comes_from_its_own_step(bandstructure_docs):
    docs = {step: copy.deepcopy(bandstructure_docs[step]) for step in BANDSTRUCTURE_STEPS}
    docs["nscf uniform"]["output"]["bandgap"] = 1.234
    docs["nscf line"]["output"]["bandgap"] = 0.9
    docs["static"]["output"]["bandgap"] = 1.1
    docs["structure optimization"]["output"]["energy"] = -99.0
    values = values_from_taskdocs(list(docs.values()), defining_steps(BANDSTRUCTURE_STEPS))
    assert values["run_status"] == "successful" and values["errors"] == []
    assert values[keys.BAND_GAP] == 1.234
    assert values["energy"] == docs["static"]["output"]["energy"] == pytest.approx(-40.0)
    assert values["energy_per_atom"] == docs["static"]["output"]["energy_per_atom"]
    assert values["final_structure"] == docs["static"]["output"]["structure"]
    assert values["task_id"] == str(docs["static"]["task_id"])
    assert sorted(values["task_ids"]) == sorted(str(d["task_id"]) for d in docs.values())
    assert (values["functional"], values["input_set"]) == ("GGA", "PAW_PBE ENCUT=520")


# --- failures: never a substitute -----------------------------------------------------------


def _workflow(bandstructure_docs, **replace):
    docs = {step: copy.deepcopy(bandstructure_docs[step]) for step in BANDSTRUCTURE_STEPS}
    for step, doc in replace.items():
        docs[step.replace("_", " ")] = doc
    return [doc for doc in docs.values() if doc is not None]


def test_line_mode_gap_never_replaces_a_missing_uniform_nscf(bandstructure_docs):
    docs = _workflow(bandstructure_docs, nscf_uniform=None)  # fizzled before VaspToDb: no document
    values = values_from_taskdocs(docs, defining_steps(BANDSTRUCTURE_STEPS))
    assert values["run_status"] == "failed"
    assert values["errors"] == [
        "nscf uniform: no task document (its Firework fizzled, was lost or has not run), so band_gap is unknown"
    ]
    assert values[keys.BAND_GAP] is None
    assert values["energy"] == pytest.approx(-40.0)  # the static succeeded: its own value stays


def test_line_mode_gap_never_replaces_an_unsuccessful_uniform_nscf(bandstructure_docs):
    failed = copy.deepcopy(bandstructure_docs["nscf uniform (unconverged)"])
    assert failed["state"] == "unsuccessful"  # VaspDrone's verdict on the unconverged run
    values = values_from_taskdocs(_workflow(bandstructure_docs, nscf_uniform=failed), defining_steps(BANDSTRUCTURE_STEPS))
    assert values["run_status"] == "failed"
    assert values["errors"] == ["nscf uniform: VASP run state is 'unsuccessful' (atomate's VaspDrone)"]
    assert values[keys.BAND_GAP] is None


def test_a_failed_or_missing_static_fails_the_energies(bandstructure_docs):
    defines = defining_steps(BANDSTRUCTURE_STEPS)
    static = copy.deepcopy(bandstructure_docs["static"])
    static["state"] = "error"
    static["analysis"]["errors"] = ["Bad structure (atoms are too close!)"]
    values = values_from_taskdocs(_workflow(bandstructure_docs, static=static), defines)
    assert values["run_status"] == "failed"
    assert values["errors"] == ["static: Bad structure (atoms are too close!)"]
    assert values["energy"] is values["energy_per_atom"] is values["entry"] is values["task_id"] is None
    assert values[keys.BAND_GAP] == pytest.approx(2.0, abs=1e-3)  # the uniform NSCF's own gap

    values = values_from_taskdocs(_workflow(bandstructure_docs, static=None), defines)
    assert values["run_status"] == "failed" and values["errors"][0].startswith("static: no task document")
    assert values["energy"] is None  # never the optimisation's energy


def test_any_failed_step_fails_the_result(bandstructure_docs):
    line = copy.deepcopy(bandstructure_docs["nscf line"])
    line["state"] = "unsuccessful"
    values = values_from_taskdocs(_workflow(bandstructure_docs, nscf_line=line), defining_steps(BANDSTRUCTURE_STEPS))
    assert values["run_status"] == "failed" and values["errors"][0].startswith("nscf line: ")


def test_no_documents_at_all_names_the_defining_steps():
    values = values_from_taskdocs([], defining_steps(BANDSTRUCTURE_STEPS))
    assert values["run_status"] == "failed" and values["task_ids"] == []
    assert [e.split(":")[0] for e in values["errors"]] == ["static", "nscf uniform"]


def test_a_rerun_supersedes_the_failed_attempt(bandstructure_docs):
    """`lpad rerun_fws` after a fix adds a newer document for the step; the latest one counts."""
    failed = copy.deepcopy(bandstructure_docs["nscf uniform (unconverged)"])
    rerun = copy.deepcopy(bandstructure_docs["nscf uniform"])
    failed["completed_at"], rerun["completed_at"] = "2026-01-01 10:00:00", "2026-01-02 09:00:00"
    docs = _workflow(bandstructure_docs, nscf_uniform=rerun) + [failed]
    values = values_from_taskdocs(docs, defining_steps(BANDSTRUCTURE_STEPS))
    assert values["run_status"] == "successful" and values[keys.BAND_GAP] == rerun["output"]["bandgap"]
    assert str(failed["task_id"]) in values["task_ids"]
    failed["completed_at"] = "2026-01-03 09:00:00"  # the failure is the newer one
    assert values_from_taskdocs(docs, defining_steps(BANDSTRUCTURE_STEPS))["run_status"] == "failed"


# --- bad input ------------------------------------------------------------------------------


def test_documents_must_belong_to_one_candidate(bandstructure_docs):
    doc = copy.deepcopy(bandstructure_docs["static"])
    assert candidate_id_of(doc) == "cand-9"
    del doc[keys.TASKDOC_CANDIDATE_ID]
    with pytest.raises(InputError, match=f"has no `{keys.TASKDOC_CANDIDATE_ID}` field"):
        candidate_id_of(doc)
    with pytest.raises(InputError, match=f"has no `{keys.TASKDOC_CANDIDATE_ID}` field"):
        values_from_taskdocs([doc], defining_steps(["static"]))
    other = copy.deepcopy(bandstructure_docs["static"])
    other[keys.TASKDOC_CANDIDATE_ID] = "someone-else"
    with pytest.raises(InputError, match="different candidates were combined: cand-9, someone-else"):
        values_from_taskdocs([bandstructure_docs["static"], other], defining_steps(["static"]))


def test_defines_must_name_energy_and_band_gap(bandstructure_docs):
    with pytest.raises(InputError, match="defines must map exactly"):
        values_from_taskdocs([bandstructure_docs["static"]], {"energy": "static"})
    with pytest.raises(InputError, match="defines must map exactly"):
        values_from_taskdocs([bandstructure_docs["static"]], {"energy": "static", keys.BAND_GAP: None, "bandgap": "x"})


def test_entry_from_taskdoc_refuses_documents_without_output(bandstructure_docs):
    doc = copy.deepcopy(bandstructure_docs["static"])
    doc["output"]["energy"] = float("nan")
    with pytest.raises(InputError, match="output.energy of atomate task document .* is nan"):
        entry_from_taskdoc(doc)
    values = values_from_taskdocs(_workflow(bandstructure_docs, static=doc), defining_steps(BANDSTRUCTURE_STEPS))
    assert values["run_status"] == "failed" and values["errors"][0].startswith("static: output.energy")
    del doc["output"]["structure"]
    with pytest.raises(InputError, match="has no output.structure"):
        entry_from_taskdoc(doc)
