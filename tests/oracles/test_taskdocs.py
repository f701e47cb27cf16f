"""Oracle values from atomate task documents: real VaspDrone documents, then the edge cases."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from motif_screen import keys
from motif_screen.errors import InputError
from motif_screen.oracles.taskdocs import oracle_values_from_taskdoc, oracle_values_from_taskdocs


@pytest.fixture(scope="module")
def drone_docs(tmp_path_factory):
    """Task documents exactly as VaspToDb builds them, from fake-VASP outputs of a band-gap workflow."""
    from atomate.vasp.drones import VaspDrone
    from pymatgen.core import Lattice, Structure

    from motif_screen.handoff.atomate_wf import build_oracle_workflow
    from motif_screen.testing.fake_vasp import make_fake_vasp_refs

    s = Structure(Lattice.cubic(4.0), ["Ba", "Ti", "O", "O", "O"],
                  [[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]])
    wf = build_oracle_workflow(s, keys.BAND_GAP, candidate_id="cand-9", campaign="c")
    refs = make_fake_vasp_refs(wf, tmp_path_factory.mktemp("refs"), lambda st: -8.0 * len(st),
                               band_gap_fn=lambda st: 2.0)
    docs = {}
    for i, (name, ref) in enumerate(sorted(refs.items())):
        label = name.split("-", 1)[1]
        to_db = next(t for fw in wf.fws if fw.name == name for t in fw.tasks if "VaspToDb" in str(t))
        doc = VaspDrone(additional_fields=to_db["additional_fields"], parse_potcar_file=False).assimilate(
            str(Path(ref) / "outputs"))
        doc["task_id"] = i + 1
        docs[label] = doc
    return docs


def test_values_from_one_drone_document(drone_docs):
    values = oracle_values_from_taskdoc(drone_docs["static"])
    assert values["candidate_id"] == "cand-9" and values["task_label"] == "static"
    assert values["run_status"] == "successful" and values["errors"] == []
    assert values["energy"] == pytest.approx(-40.0)
    assert values["energy_per_atom"] == pytest.approx(-8.0)
    assert values[keys.BAND_GAP] == pytest.approx(2.0, abs=1e-3)
    assert values["final_structure"]["lattice"]["a"] == pytest.approx(4.0)
    assert values[keys.FORMATION_ENERGY] is None  # no references given: never guessed


def test_nscf_runs_give_no_energy_and_formation_energy_needs_every_reference(drone_docs):
    assert oracle_values_from_taskdoc(drone_docs["nscf uniform"])["energy"] is None
    refs = {"Ba": -2.0, "Ti": -8.0, "O": -5.0}
    values = oracle_values_from_taskdoc(drone_docs["static"], refs)
    assert values[keys.FORMATION_ENERGY] == pytest.approx((-40.0 - (-2.0 - 8.0 - 15.0)) / 5)
    refs.pop("O")
    assert oracle_values_from_taskdoc(drone_docs["static"], refs)[keys.FORMATION_ENERGY] is None


def test_combined_documents_fit_record_oracle_result(drone_docs):
    import inspect

    from motif_screen.db.records import record_oracle_result

    values = oracle_values_from_taskdocs(drone_docs.values())
    assert set(values) <= set(inspect.signature(record_oracle_result).parameters)
    assert values["energy_per_atom"] == pytest.approx(-8.0)
    assert values[keys.BAND_GAP] == pytest.approx(2.0, abs=1e-3)
    assert values["run_status"] == "successful"


def test_gap_comes_from_the_uniform_nscf_and_failures_propagate(drone_docs):
    docs = copy.deepcopy(drone_docs)
    docs["nscf uniform"]["output"]["bandgap"] = 1.234
    docs["nscf line"]["output"]["bandgap"] = 0.9
    docs["static"]["output"]["bandgap"] = 1.1
    assert oracle_values_from_taskdocs(docs.values())[keys.BAND_GAP] == 1.234
    docs["static"]["state"] = "unsuccessful"
    values = oracle_values_from_taskdocs(docs.values())
    assert values["run_status"] == "failed" and "static" in values["errors"][0]


def test_task_document_without_candidate_id_is_a_clear_error(drone_docs):
    doc = copy.deepcopy(drone_docs["static"])
    del doc[keys.TASKDOC_CANDIDATE_ID]
    with pytest.raises(InputError, match=f"has no `{keys.TASKDOC_CANDIDATE_ID}` field"):
        oracle_values_from_taskdoc(doc)
    with pytest.raises(InputError, match="no atomate task documents"):
        oracle_values_from_taskdocs([])
    other = copy.deepcopy(drone_docs["static"])
    other[keys.TASKDOC_CANDIDATE_ID] = "someone-else"
    with pytest.raises(InputError, match="different candidates"):
        oracle_values_from_taskdocs([drone_docs["static"], other])
