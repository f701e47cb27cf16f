"""Which energies may be compared, elemental ground states, and reference files a user brings."""

from __future__ import annotations

import json

import pytest
from pymatgen.entries.computed_entries import ComputedEntry, ComputedStructureEntry

from motif_screen.errors import InputError
from motif_screen.oracles.references import (
    BOX,
    GAS_DIMERS,
    MissingPrototypeError,
    comparable_settings,
    ground_state_structure,
    prototype_structure,
    read_reference_entries,
)
from motif_screen.oracles.taskdocs import entry_from_taskdoc

GGA_KEY = ("GGA", "PAW_PBE ENCUT=520")


# --- comparable settings --------------------------------------------------------------------


def test_pbesol_and_r2scan_runs_of_lif_are_not_comparable(real_runs):
    pbesol = entry_from_taskdoc(real_runs["PBESol_pre_opt_for_SCAN_LiF"][1])
    r2scan = entry_from_taskdoc(real_runs["SCAN_structure_optimization_LiF"][1])
    assert comparable_settings(pbesol) == ("PBEsol", "PAW_PBE ENCUT=680")
    assert comparable_settings(r2scan) == ("r2SCAN", "PAW_PBE ENCUT=680")
    assert comparable_settings(pbesol.parameters) == comparable_settings(pbesol)


def test_one_preset_on_different_materials_gets_one_key(real_runs, bandstructure_docs):
    """wf_bandstructure's steps: real Al (uniform NSCF) and fake-VASP BaTiO3 (static, uniform NSCF)."""
    al = entry_from_taskdoc(real_runs["Al_nscf_uniform"][1])
    batio3_static = entry_from_taskdoc(bandstructure_docs["static"])
    batio3_nscf = entry_from_taskdoc(bandstructure_docs["nscf uniform"])
    assert comparable_settings(al) == comparable_settings(batio3_static) == comparable_settings(batio3_nscf) == GGA_KEY


def test_materials_project_exports_take_mp_defaults(make_entry):
    """Entries from the Materials Project API carry no INCAR: MPRelaxSet's settings for GGA(+U)."""
    fe2o3 = make_entry("Fe2O3", -6.85, "GGA+U", hubbards={"Fe": 5.3, "O": 0.0})
    assert comparable_settings(fe2o3) == comparable_settings(make_entry("Fe", -8.47)) == GGA_KEY
    # no titles either: the POTCAR family is MP's too
    assert comparable_settings({"run_type": "GGA"}) == GGA_KEY
    # an explicit cutoff is never overridden by the default
    assert comparable_settings(make_entry("Fe", -8.47, ENCUT=600)) == ("GGA", "PAW_PBE ENCUT=600")


def test_r2scan_exports_compare_with_atomate_r2scan_runs(real_runs, make_entry):
    """MPScanRelaxSet's settings for r2SCAN exports: those of atomate's r2SCAN preset."""
    atomate_r2scan = entry_from_taskdoc(real_runs["SCAN_structure_optimization_LiF"][1])
    assert comparable_settings(make_entry("LiF", -4.8, "r2SCAN")) == comparable_settings(atomate_r2scan)


def test_run_types_are_normalised():
    def functional(run_type):
        return comparable_settings({"run_type": run_type, "ENCUT": 520, "potcar_symbols": ["PAW_PBE Si 05Jan2001"]})[0]

    assert functional("GGA") == functional("gga+u") == functional("GGA+U") == "GGA"
    assert functional("R2SCAN") == functional("r2scan") == "r2SCAN"
    assert functional("PBESOL") == "PBEsol" and functional("hse06") == "HSE06"
    assert functional("R2SCAN+rVV10") == "r2SCAN+rVV10" and functional("r2SCAN+U") == "r2SCAN+U"
    assert functional("PBE") == "PBE"  # not "GGA": MaterialsProject2020Compatibility does not take it
    assert comparable_settings({"run_type": "chgnet", "model_version": "0.3.0"}) == ("CHGNet", "model 0.3.0")


def test_settings_that_cannot_be_known_are_errors(make_entry):
    with pytest.raises(InputError, match=r"entry test-LiF-None \(LiF\) has no run_type"):
        comparable_settings(make_entry("LiF", -4.9, run_type=None))
    with pytest.raises(InputError, match="no ENCUT and POTCAR titles .* no default input set for PBEsol"):
        comparable_settings({"run_type": "PBEsol"})
    with pytest.raises(InputError, match="mixes POTCAR families"):
        comparable_settings({"run_type": "GGA", "potcar_symbols": ["PAW_PBE Li_sv 10Sep2004", "PAW_GGA F 07Sep2000"]})
    with pytest.raises(InputError, match="ENCUT 'high', not a number"):
        comparable_settings({"run_type": "GGA", "ENCUT": "high"})
    with pytest.raises(InputError, match="without parameters\\['model_version'\\]"):
        comparable_settings({"run_type": "CHGNet"})
    with pytest.raises(InputError, match="not str"):
        comparable_settings("GGA")


# --- elemental ground states ----------------------------------------------------------------


def test_ground_state_prototypes():
    o2 = ground_state_structure("O")
    assert o2.composition.reduced_formula == "O2" and len(o2) == 2 and o2.lattice.abc == (BOX, BOX, BOX)
    assert o2.get_distance(0, 1) == pytest.approx(GAS_DIMERS["O"])
    ar = ground_state_structure("Ar")
    assert len(ar) == 1 and ar.lattice.a == BOX  # a noble gas: one atom in the box, not ASE's fcc solid
    li = ground_state_structure("Li")  # ASE's reference state: bcc
    assert len(li) == 1 and li.lattice.alpha == pytest.approx(109.4712206, abs=1e-6)
    assert len(ground_state_structure("Si")) == 2  # diamond


def test_elements_without_a_prototype_name_the_element():
    with pytest.raises(MissingPrototypeError, match="no ground-state prototype is shipped for B .* supply a structure for B"):
        ground_state_structure("B")
    assert issubclass(MissingPrototypeError, InputError)
    with pytest.raises(InputError, match="'Xx' is not an element symbol"):
        ground_state_structure("Xx")


def test_prototype_structures():
    fcc = prototype_structure("B", "fcc")
    assert len(fcc) == 1 and 1.0 < fcc.lattice.a < 3.0
    with pytest.raises(InputError, match="unknown prototype lattice 'hcp'"):
        prototype_structure("B", "hcp")


# --- reference files ------------------------------------------------------------------------


def _write(path, data, *, bom=False):
    text = data if isinstance(data, str) else json.dumps(data)
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + text.encode())
    return path


def test_reads_materials_project_style_exports(tmp_path, bandstructure_docs, make_entry):
    structured = entry_from_taskdoc(bandstructure_docs["static"])  # a ComputedStructureEntry
    entries = [make_entry("Fe2O3", -6.85, "GGA+U", hubbards={"Fe": 5.3, "O": 0.0}), make_entry("O2", -4.95), structured]
    as_list = read_reference_entries(_write(tmp_path / "list.json", [e.as_dict() for e in entries], bom=True))
    as_dict = read_reference_entries(_write(tmp_path / "dict.json", {"entries": [e.as_dict() for e in entries]}))
    for read in (as_list, as_dict):
        assert [type(e) for e in read] == [ComputedEntry, ComputedEntry, ComputedStructureEntry]
        assert [e.uncorrected_energy for e in read] == [e.uncorrected_energy for e in entries]
        assert [e.entry_id for e in read] == [e.entry_id for e in entries]
        assert read[0].parameters == entries[0].parameters
    # items without "@class" are read by their shape
    bare = [{k: v for k, v in e.as_dict().items() if not k.startswith("@")} for e in entries]
    assert [type(e) for e in read_reference_entries(_write(tmp_path / "bare.json", bare))][2] is ComputedStructureEntry


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "is not JSON: Expecting property name"),
        ('{"references": []}', "neither a list of entries nor an object"),
        ("[]", "contains no entries"),
        ("[1, 2]", "item 1 of .* is a int, not a pymatgen entry"),
        ('[{"@class": "PDEntry", "energy": 1.0}]', "item 1 of .* is a PDEntry; expected a ComputedEntry"),
        ('[{"composition": {"Li": 1}}]', "item 1 of .* has no energy"),
        ('[{"composition": {"Li": 1}, "energy": NaN}]', "item 1 of .* has energy nan"),
        ('[{"composition": {"Li": 1}, "energy": "-1.9"}]', "has energy '-1.9'; a reference needs a finite energy"),
        ('[{"energy": -1.9}]', "item 1 of .* is not a readable ComputedEntry"),
    ],
)
def test_bad_reference_files_are_one_clear_error(tmp_path, content, message):
    with pytest.raises(InputError, match=message):
        read_reference_entries(_write(tmp_path / "refs.json", content))


def test_reference_files_must_not_mix_functionals(tmp_path, make_entry):
    entries = [make_entry("Li", -1.9), make_entry("F2", -1.8), make_entry("Li", -2.3, "r2SCAN")]
    with pytest.raises(InputError, match=r"mixes functionals or input sets: GGA / PAW_PBE ENCUT=520 \(first: item 1.*"
                                         r"r2SCAN / PAW_PBE ENCUT=680 \(first: item 3"):
        read_reference_entries(_write(tmp_path / "mixed.json", [e.as_dict() for e in entries]))
    with pytest.raises(InputError, match=r"item 2 of .*: entry test-F2-None \(F2\) has no run_type"):
        read_reference_entries(_write(tmp_path / "norun.json", [make_entry("Li", -1.9).as_dict(),
                                                                 make_entry("F2", -1.8, None).as_dict()]))


def test_unreadable_reference_files(tmp_path):
    with pytest.raises(InputError, match="cannot be read: No such file or directory"):
        read_reference_entries(tmp_path / "absent.json")
    (tmp_path / "latin1.json").write_bytes(b'[{"energy": "\xe9"}]')
    with pytest.raises(InputError, match="is not UTF-8 text"):
        read_reference_entries(tmp_path / "latin1.json")
