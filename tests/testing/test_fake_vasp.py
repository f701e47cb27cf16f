"""The fake-VASP kit: reference inputs are what atomate writes, outputs parse with atomate's VaspDrone."""

from __future__ import annotations

from pathlib import Path

import pytest

from motif_screen import keys
from motif_screen.testing.fake_vasp import make_fake_vasp_refs, use_fake_vasp_for_tests, write_outputs


@pytest.fixture(scope="module")
def structure():
    from pymatgen.core import Lattice, Structure

    return Structure(Lattice.cubic(3.905), ["Sr", "Ti", "O", "O", "O"],
                     [[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]])


@pytest.fixture(scope="module")
def energy_wf(structure):
    from motif_screen.handoff.atomate_wf import build_oracle_workflow

    return build_oracle_workflow(structure, keys.FORMATION_ENERGY, candidate_id="c", campaign="camp")


def _expand(structure):
    """A relaxation that changes the cell, so later steps must read it from CONTCAR."""
    out = structure.copy()
    out.scale_lattice(structure.volume * 1.03)
    return out


@pytest.fixture(scope="module")
def refs(energy_wf, tmp_path_factory):
    root = tmp_path_factory.mktemp("refs")
    return make_fake_vasp_refs(energy_wf, root, lambda s: -7.25 * len(s), band_gap_fn=lambda s: 2.5,
                               final_structure_fn=_expand)


def test_inputs_are_atomates_own_with_potcar_spec(refs, structure):
    from pymatgen.io.vasp.inputs import Incar, Kpoints, Poscar
    from pymatgen.io.vasp.sets import MPRelaxSet

    opt = Path(refs["SrTiO3-structure optimization"]) / "inputs"
    expected = MPRelaxSet(structure, force_gamma=True)
    incar = Incar.from_file(opt / "INCAR")
    for key in ("ENCUT", "ISIF", "IBRION", "NSW", "ISPIN", "LDAU", "EDIFF"):
        assert incar.get(key) == expected.incar.get(key), key
    assert Kpoints.from_file(opt / "KPOINTS").kpts == expected.kpoints.kpts
    assert (opt / "POTCAR.spec").read_text().split() == ["Sr_sv", "Ti_pv", "O"]
    assert not (opt / "POTCAR").exists()
    assert Poscar.from_file(opt / "POSCAR").structure.composition.reduced_formula == "SrTiO3"


def test_later_steps_are_written_from_earlier_outputs(refs, structure):
    from pymatgen.io.vasp.inputs import Incar, Poscar

    static = Path(refs["SrTiO3-static"]) / "inputs"
    assert Poscar.from_file(static / "POSCAR").structure.volume == pytest.approx(structure.volume * 1.03, rel=1e-6)
    incar = Incar.from_file(static / "INCAR")
    assert incar["NSW"] == 0 and incar["ISMEAR"] == -5  # MPStaticSet.from_prev_calc


def test_outputs_parse_with_atomates_drone(refs, structure):
    from atomate.vasp.drones import VaspDrone

    doc = VaspDrone(parse_potcar_file=False).assimilate(str(Path(refs["SrTiO3-static"]) / "outputs"))
    assert doc["state"] == "successful"
    assert doc["output"]["energy"] == pytest.approx(-7.25 * 5)
    assert doc["output"]["energy_per_atom"] == pytest.approx(-7.25)
    assert doc["output"]["bandgap"] == pytest.approx(2.5, abs=1e-3)
    assert doc["calcs_reversed"][0]["run_type"] == "GGA"  # MP applies no U to Ti
    assert doc["input"]["pseudo_potential"]["labels"] == ["Sr_sv", "Ti_pv", "O"]
    assert doc["output"]["structure"]["lattice"]["volume"] == pytest.approx(structure.volume * 1.03, rel=1e-5)


def test_unconverged_and_missing_outputs(energy_wf, tmp_path):
    from atomate.vasp.drones import VaspDrone

    refs = make_fake_vasp_refs(energy_wf, tmp_path / "a", fizzle=["static"])
    doc = VaspDrone(parse_potcar_file=False).assimilate(str(Path(refs["SrTiO3-static"]) / "outputs"))
    assert doc["state"] == "unsuccessful"  # electronic loop hit NELM
    refs = make_fake_vasp_refs(energy_wf, tmp_path / "b", fizzle=["static"], fizzle_mode="missing_outputs")
    assert list((Path(refs["SrTiO3-static"]) / "outputs").iterdir()) == []
    with pytest.raises(ValueError, match="fizzle_mode"):
        make_fake_vasp_refs(energy_wf, tmp_path / "c", fizzle_mode="explode")


def test_use_fake_vasp_for_tests_replaces_only_the_vasp_run(energy_wf, tmp_path):
    from fireworks import Workflow

    wf = use_fake_vasp_for_tests(Workflow.from_dict(energy_wf.to_dict()), tmp_path)
    names = [str(t) for fw in wf.fws for t in fw.tasks]
    assert sum("RunVaspFake" in n for n in names) == 2
    assert not any("RunVaspCustodian" in n for n in names)
    assert sum("LinkTaskDocument" in n for n in names) == 2
    fake = next(t for fw in wf.fws for t in fw.tasks if "RunVaspFake" in str(t))
    assert fake["check_potcar"] is False and fake.get("check_incar", True)


def test_a_workflow_without_vasp_is_refused(tmp_path):
    from fireworks import Firework, ScriptTask, Workflow

    with pytest.raises(ValueError, match="no Firework that runs VASP"):
        make_fake_vasp_refs(Workflow([Firework(ScriptTask.from_str("true"))]), tmp_path)


def test_write_outputs_metal(tmp_path, structure):
    from pymatgen.io.vasp.outputs import Vasprun
    from pymatgen.io.vasp.sets import MPStaticSet

    MPStaticSet(structure).write_input(tmp_path / "in", potcar_spec=True)
    write_outputs(tmp_path / "in", tmp_path / "out", band_gap_fn=lambda s: 0.0)
    run = Vasprun(str(tmp_path / "out" / "vasprun.xml"), parse_potcar_file=False)
    assert run.final_energy == pytest.approx(-25.0)
    assert run.converged
    assert run.get_band_structure().get_band_gap()["energy"] == pytest.approx(0.0)
