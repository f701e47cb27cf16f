"""Task documents built by atomate's own VaspDrone: from real VASP outputs, and from the fake-VASP kit."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from motif_screen import keys

REFERENCE_DIR = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "vasp_reference"
CANDIDATE = "cand-LiF"

# folder of real outputs -> (where its vasprun.xml lies inside it, the atomate step it is)
REAL_RUNS = {
    "PBESol_pre_opt_for_SCAN_LiF": ("outputs", "PBEsol structure optimization"),  # metagga_optimization.yaml
    "SCAN_structure_optimization_LiF": ("outputs", "R2SCAN structure optimization"),
    "Al_nscf_uniform": (".", "nscf uniform"),  # wf_bandstructure's uniform NSCF
}


def drone_doc(run_dir: Path, task_label: str, task_id, candidate_id: str = CANDIDATE) -> dict:
    """The task document VaspToDb would insert for ``run_dir``, with our candidate field."""
    from atomate.vasp.drones import VaspDrone

    fields = {"task_label": task_label, keys.TASKDOC_CANDIDATE_ID: candidate_id}
    doc = VaspDrone(additional_fields=fields, parse_potcar_file=False).assimilate(str(run_dir))
    doc["task_id"] = task_id
    return doc


@pytest.fixture(scope="session")
def vasp_reference():
    if not REFERENCE_DIR.is_dir():
        pytest.skip(f"real VASP outputs not available ({REFERENCE_DIR} is absent: ../shared is not next to this clone)")
    return REFERENCE_DIR


@pytest.fixture(scope="session")
def real_runs(vasp_reference, tmp_path_factory):
    """``{folder: (run_dir, task document)}`` for each real run, read from a copy in a temporary folder."""
    root = tmp_path_factory.mktemp("vasp_reference")
    runs = {}
    for task_id, (folder, (inner, label)) in enumerate(REAL_RUNS.items(), start=101):
        shutil.copytree(vasp_reference / folder, root / folder)
        run_dir = root / folder / inner
        runs[folder] = (run_dir, drone_doc(run_dir, label, task_id))
    return runs


@pytest.fixture(scope="session")
def vasprun():
    """pymatgen's own reading of a run folder: what every value is checked against."""
    from pymatgen.io.vasp import Vasprun

    def read(run_dir: Path) -> Vasprun:
        return Vasprun(str(next(run_dir.glob("vasprun.xml*"))), parse_potcar_file=False)

    return read


@pytest.fixture(scope="session")
def bandstructure_docs(tmp_path_factory):
    """Task documents of atomate's wf_bandstructure on BaTiO3 run by the fake-VASP kit (synthetic outputs).

    ``{step: doc}`` for its four steps, plus ``"nscf uniform (unconverged)"``: the uniform NSCF
    again with an electronic loop that hit NELM, which VaspDrone marks unsuccessful.
    """
    from atomate.common.powerups import add_additional_fields_to_taskdocs
    from atomate.vasp.workflows.presets.core import wf_bandstructure
    from pymatgen.core import Lattice, Structure

    from motif_screen.testing.fake_vasp import make_fake_vasp_refs, write_outputs

    s = Structure(Lattice.cubic(4.0), ["Ba", "Ti", "O", "O", "O"],
                  [[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]])
    wf = add_additional_fields_to_taskdocs(wf_bandstructure(s), {keys.TASKDOC_CANDIDATE_ID: "cand-9"})
    refs = make_fake_vasp_refs(wf, tmp_path_factory.mktemp("refs"), lambda st: -8.0 * len(st),
                               band_gap_fn=lambda st: 2.0)
    docs = {}
    for task_id, (name, ref) in enumerate(sorted(refs.items()), start=1):
        fields = next(t["additional_fields"] for fw in wf.fws if fw.name == name for t in fw.tasks if "VaspToDb" in str(t))
        docs[fields["task_label"]] = drone_doc(Path(ref) / "outputs", fields["task_label"], task_id, "cand-9")
    failed_dir = tmp_path_factory.mktemp("unconverged")
    write_outputs(Path(refs[next(n for n in refs if "nscf uniform" in n)]) / "inputs", failed_dir,
                  energy_fn=lambda st: -8.0 * len(st), band_gap_fn=lambda st: 2.0, converged=False)
    docs["nscf uniform (unconverged)"] = drone_doc(failed_dir, "nscf uniform", 99, "cand-9")
    return docs


@pytest.fixture(scope="session")
def make_entry():
    """``make_entry(formula, energy_per_atom, run_type="GGA", **parameters)``: a ComputedEntry shaped as
    the Materials Project API exports it (run_type, is_hubbard, hubbards, potcar_spec with the
    Materials Project's POTCARs; no INCAR). Keyword arguments replace or add parameters."""
    from pymatgen.core import Composition
    from pymatgen.entries.computed_entries import ComputedEntry
    from pymatgen.io.vasp.sets import MPRelaxSet

    def make(formula, energy_per_atom, run_type="GGA", entry_id=None, **parameters):
        comp = Composition(formula)
        potcars = MPRelaxSet.CONFIG["POTCAR"]
        params = {
            "run_type": run_type,
            "is_hubbard": "+U" in (run_type or ""),
            "hubbards": {},
            "potcar_spec": [{"titel": f"PAW_PBE {potcars[el.symbol]} 08Apr2002", "hash": None} for el in comp.elements],
        }
        params.update(parameters)
        if run_type is None:
            del params["run_type"]
        return ComputedEntry(comp, energy_per_atom * comp.num_atoms, parameters=params,
                             entry_id=entry_id or f"test-{comp.reduced_formula}-{run_type}")

    return make
