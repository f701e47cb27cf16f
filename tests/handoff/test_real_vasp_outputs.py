"""The hand-off on what real VASP writes: atomate's metaGGA workflow for LiF, its VASP runs replaced by
atomate's ``use_fake_vasp`` copying the real outputs of those two runs (atomate's own test files),
then our guard, links, collector and stability code. Each recorded value is checked against what
pymatgen reads from the same files.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from motif_screen import keys

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "vasp_reference"
STEPS = {"PBEsol structure optimization": "PBESol_pre_opt_for_SCAN_LiF",
         "R2SCAN structure optimization": "SCAN_structure_optimization_LiF"}
# Li and F references and a competing phase: made-up energies of plausible size (no real r2SCAN runs
# of them are available here), with the settings of the real LiF run so that they are comparable
MADE_UP = {"Li": -1.90, "F": -1.60, "Li2F": -2.80}


@pytest.fixture
def lif(db, tmp_path):
    if not SHARED.is_dir():
        pytest.skip(f"real VASP outputs not available ({SHARED} is absent: ../shared is not next to this clone)")
    from pymatgen.core import Lattice, Structure

    from motif_screen.db.records import set_status, upsert_candidate

    from pymatgen.io.vasp import Chgcar, Poscar, Vasprun

    refs = {}
    for step, folder in STEPS.items():
        # atomate's fake VASP copies outputs/ into the run folder, and the next step copies the INCAR
        # and POTCAR.spec from there: lay the real files out that way (the run's own INCAR, and the
        # POTCAR symbols its vasprun.xml names)
        run = tmp_path / "real" / folder
        shutil.copytree(SHARED / folder, run)
        shutil.copy(run / "inputs" / "INCAR", run / "outputs" / "INCAR")
        symbols = Vasprun(str(run / "outputs" / "vasprun.xml.gz"), parse_potcar_file=False).potcar_symbols
        (run / "outputs" / "POTCAR.spec").write_text("\n".join(s.split()[1] for s in symbols) + "\n")
        refs[step] = str(run)
    # the r2SCAN step copies the PBEsol run's CHGCAR (left out of the shared copy for its size) for VASP
    # to start from; fake VASP reads nothing, so a flat charge density on the real structure stands in
    pbesol = tmp_path / "real" / STEPS["PBEsol structure optimization"] / "outputs"
    final = Vasprun(str(pbesol / "vasprun.xml.gz"), parse_potcar_file=False).final_structure
    Chgcar(Poscar(final), {"total": np.full((4, 4, 4), 16.0)}).write_file(str(pbesol / "CHGCAR"))
    structure = Structure(Lattice.cubic(4.03), ["Li", "Li", "Li", "Li", "F", "F", "F", "F"],
                          [[0, 0, 0], [0, .5, .5], [.5, 0, .5], [.5, .5, 0],
                           [.5, .5, .5], [.5, 0, 0], [0, .5, 0], [0, 0, .5]])
    cand, _ = upsert_candidate("real", structure.get_primitive_structure(), origin={"method": "test", "round": 0})
    set_status(cand.id, keys.STATUS_SCREENED)
    set_status(cand.id, keys.STATUS_SUBMITTED)
    return cand, refs


def test_real_r2scan_outputs_give_pymatgens_energy_formation_energy_and_hull_distance(db, config_dir, lif, tmp_path,
                                                                                     monkeypatch, capsys):
    from atomate.vasp.powerups import use_fake_vasp, use_potcar_spec
    from fireworks import FWorker
    from fireworks.core.rocket_launcher import rapidfire
    from pymatgen.analysis.phase_diagram import PhaseDiagram
    from pymatgen.entries.computed_entries import ComputedEntry
    from pymatgen.io.vasp import Vasprun

    from motif_screen.campaign.launchpad import FireworksView
    from motif_screen.campaign.steps import record_vasp_result
    from motif_screen.cli.main import main
    from motif_screen.db import launchpad_for
    from motif_screen.db.repository import Repository
    from motif_screen.handoff.atomate_wf import build_oracle_workflow

    cand, refs = lif
    repo = Repository(db)
    wf = build_oracle_workflow(cand.to_structure(), keys.FORMATION_ENERGY, candidate_id=str(cand.id), campaign="real",
                               preset="metagga_optimization.yaml")
    repo.update_candidate(cand.id, handoff=wf.metadata["motif_screen_handoff"])
    assert wf.metadata["motif_screen_handoff"]["defines"]["energy"] == "r2scan structure optimization"
    wf = use_fake_vasp(use_potcar_spec(wf), refs, check_incar=False, check_kpoints=False, check_poscar=False,
                       check_potcar=False)
    lpad = launchpad_for(db)
    lpad.add_wf(wf)
    monkeypatch.chdir(tmp_path)
    rapidfire(lpad, FWorker(env={"db_file": str(config_dir / "db.json"), "vasp_cmd": "vasp_std"}),
              strm_lvl="CRITICAL")
    assert {lpad.get_fw_by_id(i).state for i in lpad.get_fw_ids()} == {"COMPLETED"}

    final = Vasprun(str(Path(refs["R2SCAN structure optimization"]) / "outputs" / "vasprun.xml.gz"),
                    parse_potcar_file=False)
    mine = final.get_computed_entry(inc_structure=True)
    result = record_vasp_result(repo, repo.candidate(cand.id),
                                fw_id=FireworksView(lpad).of_candidates([str(cand.id)])[str(cand.id)][0].fw_id)
    assert result.run_status == "successful" and result.functional == "r2SCAN"
    assert result.energy == pytest.approx(final.final_energy, abs=1e-8) == pytest.approx(-9.64589684, abs=1e-8)
    assert result.energy_per_atom == pytest.approx(final.final_energy / len(final.final_structure), abs=1e-8)
    assert result.awaiting_references == ["F", "Li"] and result.formation_energy_per_atom is None

    # the user adds references with the same settings: the waiting result is filled in at once
    params = {"run_type": "r2SCAN", "potcar_spec": [{"titel": t, "hash": None} for t in final.potcar_symbols],
              "incar": {"ENCUT": final.parameters["ENMAX"]}}
    entries = [ComputedEntry("Li", MADE_UP["Li"], parameters=params, entry_id="ref-Li"),
               ComputedEntry("F2", 2 * MADE_UP["F"], parameters=params, entry_id="ref-F"),
               ComputedEntry("Li2F", 3 * MADE_UP["Li2F"], parameters=params, entry_id="ref-Li2F")]
    (tmp_path / "refs.json").write_text(json.dumps([e.as_dict() for e in entries]))
    db.flush()
    assert main(["references", "add", str(tmp_path / "refs.json"), "--config-dir", str(config_dir)]) == 0
    assert "1 results filled in" in capsys.readouterr().out
    result.reload()
    expected_form = PhaseDiagram(entries[:2] + [mine]).get_form_energy_per_atom(mine)
    assert result.formation_energy_per_atom == pytest.approx(expected_form, abs=1e-8)
    _, expected_hull = PhaseDiagram(entries).get_decomp_and_e_above_hull(mine, allow_negative=True)
    assert result.energy_above_hull == pytest.approx(expected_hull, abs=1e-8)
    assert result.awaiting_references == [] and result.hull_history[-1]["energy_above_hull"] == result.energy_above_hull
    assert repo.candidate(cand.id).oracle[keys.FORMATION_ENERGY] == pytest.approx(expected_form, abs=1e-8)
