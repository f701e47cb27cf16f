"""MP2020 corrections, formation energies and distances to the hull, checked against pymatgen itself."""

from __future__ import annotations

import copy

import pytest
from pymatgen.analysis.phase_diagram import PhaseDiagram
from pymatgen.entries.compatibility import MaterialsProject2020Compatibility

from motif_screen.errors import InputError
from motif_screen.oracles.stability import corrected, energy_above_hull, formation_energy_per_atom
from motif_screen.oracles.taskdocs import entry_from_taskdoc


@pytest.fixture(scope="module")
def lif(real_runs):
    """The real PBEsol and r2SCAN LiF entries, as atomate task documents give them."""
    return {
        "PBEsol": entry_from_taskdoc(real_runs["PBESol_pre_opt_for_SCAN_LiF"][1]),
        "r2SCAN": entry_from_taskdoc(real_runs["SCAN_structure_optimization_LiF"][1]),
    }


def like(entry, make_entry, formula, energy_per_atom, entry_id=None):
    """An entry of ``formula`` with the comparable settings of ``entry`` (same run type, cutoff, POTCARs)."""
    potcars = {spec["titel"].split()[1].split("_")[0]: spec for spec in entry.parameters["potcar_spec"]}
    other = make_entry(formula, energy_per_atom, entry.parameters["run_type"], entry_id=entry_id,
                       ENCUT=entry.parameters["ENCUT"])
    other.parameters["potcar_spec"] = [potcars[el.symbol] for el in other.composition.elements]
    return other


def mp2020_reference(entries):
    """What pymatgen's MaterialsProject2020Compatibility makes of copies of ``entries``."""
    return MaterialsProject2020Compatibility().process_entries(copy.deepcopy(entries), on_error="raise")


@pytest.fixture
def iron_oxide(make_entry):
    """Fe2O3 (GGA+U) with Fe and O2 (GGA) references, as the Materials Project exports them.

    Energies of about the Materials Project's size: with MP2020 the formation energy comes out near
    the experimental −1.71 eV/atom, without it near −0.5.
    """
    fe2o3 = make_entry("Fe2O3", -6.85, "GGA+U", is_hubbard=True, hubbards={"Fe": 5.3, "O": 0.0})
    fe2o3.data["oxide_type"] = "oxide"  # Materials Project entries carry it
    return fe2o3, [make_entry("Fe", -8.47), make_entry("O2", -4.95)]


# --- corrections ----------------------------------------------------------------------------


def test_gga_and_gga_u_entries_get_mp2020_corrections(iron_oxide):
    fe2o3, refs = iron_oxide
    fixed = corrected([fe2o3, *refs])
    expected = mp2020_reference([fe2o3, *refs])
    assert [e.energy for e in fixed] == [e.energy for e in expected]
    names = {adj.name for adj in fixed[0].energy_adjustments}
    assert names == {"MP2020 anion correction (oxide)", "MP2020 GGA/GGA+U mixing correction (Fe)"}
    assert fixed[0].energy < fixed[0].uncorrected_energy
    assert fe2o3.energy_adjustments == [] and fe2o3.energy == fe2o3.uncorrected_energy  # inputs untouched


def test_real_gga_run_passes_the_potcar_check(real_runs):
    al = entry_from_taskdoc(real_runs["Al_nscf_uniform"][1])  # PAW_PBE Al: the Materials Project's POTCAR
    (fixed,) = corrected([al])
    assert fixed.energy == al.uncorrected_energy and fixed.energy_adjustments == []  # elements: no correction


def test_other_functionals_come_back_uncorrected(lif, make_entry):
    r2scan_export = make_entry("LiF", -4.8, "r2SCAN")
    r2scan_export.energy_adjustments = copy.deepcopy(mp2020_reference([make_entry("LiF", -4.8)])[0].energy_adjustments)
    assert r2scan_export.correction != 0  # as a mixed-scheme export may carry
    fixed = corrected([lif["PBEsol"], r2scan_export])
    assert len(fixed) == 2
    assert fixed[0].energy == lif["PBEsol"].uncorrected_energy
    assert fixed[1].energy == r2scan_export.uncorrected_energy and fixed[1].energy_adjustments == []


def test_entries_mp2020_rejects_are_named(make_entry, iron_oxide):
    wrong_potcar = make_entry("LiF", -4.9, potcar_spec=[{"titel": "PAW_PBE Li 17Jan2003"}, {"titel": "PAW_PBE F 08Apr2002"}])
    with pytest.raises(InputError, match=r"MaterialsProject2020Compatibility rejects entry test-LiF-GGA \(LiF\): Incompatible POTCAR"):
        corrected([wrong_potcar])
    fe2o3, _ = iron_oxide
    fe2o3.parameters["hubbards"] = {"Fe": 4.0, "O": 0.0}
    with pytest.raises(InputError, match=r"rejects entry test-Fe2O3-GGA\+U \(Fe2O3\): Invalid U value of 4.0 on Fe"):
        corrected([fe2o3])
    no_potcar = make_entry("LiF", -4.9, potcar_spec=None)
    with pytest.raises(InputError, match=r"cannot check entry test-LiF-GGA \(LiF\): it has no POTCAR titles"):
        corrected([no_potcar])


# --- formation energy -----------------------------------------------------------------------


def test_formation_energy_of_real_lif_is_pymatgens(lif, make_entry):
    entry = lif["PBEsol"]
    refs = [like(entry, make_entry, "Li", -1.85, "Li-bcc"), like(entry, make_entry, "Li", -1.90, "Li-fcc"),
            like(entry, make_entry, "F2", -1.80, "F2")]
    value, missing = formation_energy_per_atom(entry, refs)
    assert missing == []
    assert value == PhaseDiagram([*refs, entry]).get_form_energy_per_atom(entry)
    assert value == pytest.approx((-9.84833027 - (-1.90 - 1.80)) / 2, abs=1e-10)  # the lowest Li reference


def test_formation_energy_uses_mp2020_corrected_entries(iron_oxide):
    fe2o3, refs = iron_oxide
    value, missing = formation_energy_per_atom(fe2o3, refs)
    processed = mp2020_reference([fe2o3, *refs])
    assert missing == [] and value == PhaseDiagram(processed).get_form_energy_per_atom(processed[0])
    assert value == pytest.approx(-1.81, abs=0.01)
    assert value != PhaseDiagram([fe2o3, *refs]).get_form_energy_per_atom(fe2o3)  # the correction counts


def test_formation_energy_is_never_a_guess(lif, make_entry):
    entry = lif["PBEsol"]
    assert formation_energy_per_atom(entry, [like(entry, make_entry, "Li", -1.9)]) == (None, ["F"])
    assert formation_energy_per_atom(entry, [like(entry, make_entry, "LiF2", -3.0)]) == (None, ["F", "Li"])
    with pytest.raises(InputError, match="different functionals or input sets cannot be compared: PBEsol .* r2SCAN"):
        formation_energy_per_atom(entry, [like(entry, make_entry, "Li", -1.9), like(lif["r2SCAN"], make_entry, "F2", -1.8)])


# --- energy above hull ----------------------------------------------------------------------


@pytest.fixture
def lif_system(lif, make_entry):
    """The real r2SCAN LiF and a small Li–F set of the same settings: Li, F2 and a hypothetical Li2F."""
    entry = lif["r2SCAN"]
    return entry, [like(entry, make_entry, "Li", -2.30), like(entry, make_entry, "F2", -1.15),
                   like(entry, make_entry, "Li2F", -2.92)]


def _pymatgen(entry, others):
    decomposition, e_hull = PhaseDiagram(others).get_decomp_and_e_above_hull(entry, allow_negative=True)
    return e_hull, {phase.composition.reduced_formula: amount for phase, amount in decomposition.items()}


def test_a_new_stable_phase_lies_below_the_hull(lif_system):
    entry, others = lif_system
    result = energy_above_hull(entry, others)
    e_hull, decomposition = _pymatgen(entry, others)
    assert result == {"energy_above_hull": e_hull, "decomposition": decomposition, "n_entries": 3, "error": None}
    assert e_hull < 0 and set(decomposition) == {"Li2F", "F2"}


def test_a_competing_polymorph_puts_it_above_the_hull(lif_system, make_entry):
    entry, others = lif_system
    others = [*others, like(entry, make_entry, "LiF", -4.90, "LiF-rival")]
    result = energy_above_hull(entry, others)
    e_hull, decomposition = _pymatgen(entry, others)
    assert result["energy_above_hull"] == e_hull == pytest.approx(-4.82294842 + 4.90, abs=1e-8)
    assert result["decomposition"] == decomposition == {"LiF": 1.0} and result["error"] is None


def test_hull_keeps_to_the_chemical_system_and_leaves_the_entry_out(lif_system, make_entry):
    entry, others = lif_system
    extra = [like(entry, make_entry, "Li", -2.30, "Li-again"), copy.deepcopy(entry)]  # same entry_id: left out
    extra.append(make_entry("Al", -3.0, "r2SCAN"))
    result = energy_above_hull(entry, [*others, *extra])
    assert result["n_entries"] == 4 and result["energy_above_hull"] == _pymatgen(entry, others)[0]


def test_no_hull_is_an_error_message_not_an_exception(lif_system, lif, make_entry):
    entry, others = lif_system
    result = energy_above_hull(entry, others[:1])
    assert result == {"energy_above_hull": None, "decomposition": {}, "n_entries": 1,
                      "error": "no elemental reference for F among the 1 entries of the F-Li system: "
                               "the convex hull needs every terminal element"}
    broken = like(entry, make_entry, "F2", float("nan"), "F2-nan")
    result = energy_above_hull(entry, [others[0], broken])
    assert result["energy_above_hull"] is None and "entry F2-nan (F2) has a non-finite energy" in result["error"]
    mixed = energy_above_hull(entry, [*others, like(lif["PBEsol"], make_entry, "F2", -1.8)])
    assert mixed["energy_above_hull"] is None and "cannot be compared: r2SCAN" in mixed["error"]
    wrong_potcar = make_entry("Li", -1.9, potcar_spec=[{"titel": "PAW_PBE Li 17Jan2003"}])
    gga = energy_above_hull(make_entry("LiF", -4.9), [wrong_potcar, make_entry("F2", -1.8)])
    assert gga["energy_above_hull"] is None and "Incompatible POTCAR" in gga["error"]
