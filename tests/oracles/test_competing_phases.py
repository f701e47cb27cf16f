"""The shipped CHGNet reference set: elements and competing binaries of the demo's chemical space.

Made by ``scripts/make_chgnet_references.py``; CHGNet (ML potential) energies, never DFT.
"""

from __future__ import annotations

import json
import math
import sys
from collections import Counter

import pytest
from pymatgen.core import Composition
from pymatgen.entries.computed_entries import ComputedStructureEntry

pytest.importorskip("chgnet")

from motif_screen import keys  # noqa: E402
from motif_screen.oracles import chgnet  # noqa: E402
from motif_screen.oracles.references import comparable_settings, read_reference_entries  # noqa: E402
from motif_screen.oracles.stability import energy_above_hull, formation_energy_per_atom  # noqa: E402

# Experimental standard enthalpies of formation (kJ/mol of formula unit, 298 K; NIST-JANAF / CRC
# tables) in eV/atom. The Materials Project's MP2020-corrected GGA/GGA+U formation energies, which
# CHGNet is fitted to, are fitted to reproduce such values (MgO -3.05, TiO2 -3.5, CaF2 -4.2 in MP).
KJ_PER_MOL_TO_EV = 1 / 96.485
EXPERIMENT = {
    "MgO": -601.6,
    "TiO2": -944.0,
    "SrO": -592.0,
    "CaO": -634.9,
    "CaF2": -1228.0,
    "LiF": -616.0,
    "Al2O3": -1675.7,
    "ZnO": -350.5,
    "BaO": -548.0,
}
TOLERANCE = 0.5  # eV/atom: CHGNet vs experiment, loosely (its own MAE on formation energies is ~0.03-0.1)


@pytest.fixture(scope="module")
def shipped():
    entries = chgnet.shipped_competing_phases()
    if not entries:
        pytest.skip("no shipped competing phases for this CHGNet model version")
    return entries


@pytest.fixture(scope="module")
def binaries(shipped):
    return {e.composition.reduced_formula: e for e in shipped if not e.composition.is_element}


@pytest.fixture(scope="module")
def elements(shipped):
    return [e for e in shipped if e.composition.is_element]


def test_the_shipped_file_reads_as_reference_entries_with_its_provenance():
    path = chgnet.shipped_competing_phases_file()
    entries = read_reference_entries(path)  # the format `motif-screen references add FILE --source chgnet` takes
    meta = chgnet.shipped_competing_phases_metadata()
    assert meta == json.loads(path.read_text(encoding="utf-8"))["metadata"]
    assert "NOT DFT" in meta["energies"]
    assert meta["chgnet_model_version"] == chgnet.model_version()
    assert meta["chgnet_package_version"] and meta["date"] and meta["prototypes"]
    counts = meta["counts"]
    assert counts["elements"] + counts["compositions_kept"] == len(entries)
    assert counts["compositions_kept"] >= 150
    print(
        f"\n{path.name}: {len(entries)} entries ({counts['elements']} elements, {counts['compositions_kept']} "
        f"binaries of {counts['compositions']} compositions; {counts['relaxations_ok']} polymorphs relaxed)"
    )


def test_every_entry_is_chgnet_on_one_scale(shipped, elements):
    settings = {comparable_settings(e) for e in shipped}
    assert settings == {("CHGNet", f"model {chgnet.model_version()}")}
    for entry in shipped:
        assert entry.parameters["run_type"] == "CHGNet"
        assert entry.parameters["model_version"] == chgnet.model_version()
        assert math.isfinite(entry.energy) and math.isfinite(entry.energy_per_atom)
        if not entry.composition.is_element:
            assert isinstance(entry, ComputedStructureEntry)
            assert entry.data["prototype"] in chgnet.shipped_competing_phases_metadata()["prototypes"]
    # the elements are exactly those the CHGNet oracle uses as its elemental references
    oracle = chgnet.elemental_reference_entries([e.composition.elements[0].symbol for e in elements])
    for entry in elements:
        symbol = entry.composition.elements[0].symbol
        assert entry.energy_per_atom == pytest.approx(oracle[symbol].energy_per_atom, abs=1e-9)


def test_binaries_are_charge_balanced_in_common_oxidation_states_and_unique(shipped, binaries):
    formulas = [e.composition.reduced_formula for e in shipped]
    assert len(formulas) == len(set(formulas)), [f for f, n in Counter(formulas).items() if n > 1]
    assert len({e.entry_id for e in shipped}) == len(shipped)
    for formula in binaries:
        comp = Composition(formula)
        assert len(comp.elements) == 2, formula
        anion = next(el for el in comp.elements if el.symbol in {"O", "N", "F", "S", "Cl", "Se"})
        cation = next(el for el in comp.elements if el != anion)
        anion_charges = [q for q in anion.common_oxidation_states if q < 0]
        assert any(
            comp[cation] * q + comp[anion] * p == 0
            for q in cation.common_oxidation_states
            if q > 0
            for p in anion_charges
        ), f"{formula} is not charge balanced in common oxidation states"


def test_energies_are_sane(binaries, elements):
    refs = list(elements)
    for formula, entry in binaries.items():
        e_form, missing = formation_energy_per_atom(entry, refs)
        assert not missing, formula
        assert -5.5 < e_form < 3.0, f"{formula}: formation energy {e_form:.2f} eV/atom"
        structure = entry.structure
        assert structure.volume / len(structure) > 4.0, formula


@pytest.mark.parametrize("formula", sorted(EXPERIMENT))
def test_formation_energies_of_known_compounds_match_experiment_loosely(formula, binaries, elements):
    if formula not in binaries:
        pytest.skip(f"{formula} is not in the shipped set")
    entry = binaries[formula]
    e_form, _ = formation_energy_per_atom(entry, elements)
    expected = EXPERIMENT[formula] * KJ_PER_MOL_TO_EV / Composition(formula).num_atoms
    print(
        f"\n{formula} ({entry.data['prototype']}): CHGNet {e_form:.3f} eV/atom, experiment {expected:.3f} "
        f"(difference {e_form - expected:+.3f})"
    )
    assert e_form < 0
    assert e_form == pytest.approx(expected, abs=TOLERANCE)


def test_the_lowest_polymorph_is_the_one_kept(binaries):
    polymorphs = chgnet.shipped_competing_phases_metadata()["polymorphs_eV_per_atom"]
    for formula, entry in binaries.items():
        assert entry.energy_per_atom == pytest.approx(min(polymorphs[formula].values()), abs=1e-4)
        assert polymorphs[formula][entry.data["prototype"]] == pytest.approx(entry.energy_per_atom, abs=1e-4)


def test_a_filter_by_elements_and_another_model_version_gives_no_entry(shipped):
    sr_ti_o = chgnet.shipped_competing_phases(["Sr", "Ti", "O"])
    assert {e.composition.reduced_formula for e in sr_ti_o} >= {"Sr", "Ti", "O2", "SrO", "TiO2"}
    assert all({el.symbol for el in e.composition.elements} <= {"Sr", "Ti", "O"} for e in sr_ti_o)
    assert chgnet.shipped_competing_phases(version="not-a-chgnet-version") == []


@pytest.mark.slow
def test_srtio3_sits_on_or_below_the_hull_of_its_binaries(perovskites):
    """CHGNet-relaxed cubic SrTiO3 against SrO + TiO2 + elements (no ternaries in the set).

    Experiment: SrO + TiO2 -> SrTiO3 releases about 1.4 eV per formula unit (-0.28 eV/atom), so
    the distance to a hull of binaries only is expected to be negative, of that size.
    """
    result = chgnet.chgnet_relax(perovskites["SrTiO3"], fmax=0.1, steps=60)
    entry = chgnet.entry_of(result)
    hull = energy_above_hull(entry, chgnet.shipped_competing_phases(["Sr", "Ti", "O"]))
    print(f"\nSrTiO3: {hull['energy_above_hull']:.3f} eV/atom from the hull; decomposes into {hull['decomposition']}")
    assert hull["error"] is None
    assert set(hull["decomposition"]) == {"SrO", "TiO2"}
    assert -0.6 < hull["energy_above_hull"] < 0.05


def test_the_campaign_stores_the_shipped_set_once_and_measures_hulls_against_it(db, shipped):
    from motif_screen.campaign import thermo
    from motif_screen.db.repository import Repository

    repo = Repository(db)
    assert thermo.ensure_shipped_chgnet_references(repo) == len(shipped)
    assert thermo.ensure_shipped_chgnet_references(repo) == 0  # once
    stored = repo.references(source=keys.SOURCE_CHGNET)
    assert len(stored) == len(shipped)
    assert {d.formula for d in repo.references(source=keys.SOURCE_CHGNET, elements=["Sr", "Ti", "O"])} >= {
        "SrO",
        "TiO2",
    }
    # the elements share their keys with the references the CHGNet oracle stores for a candidate
    version = chgnet.model_version()
    assert repo.reference(thermo.reference_key("computed", keys.SOURCE_CHGNET, version, "Sr")) is not None
    # a candidate result (here: SrO itself, moved 0.05 eV/atom up) is measured against the shipped phases
    sro = next(e for e in shipped if e.composition.reduced_formula == "SrO")
    probe = ComputedStructureEntry(
        sro.structure, sro.energy + 0.05 * sro.composition.num_atoms, parameters=dict(sro.parameters)
    )
    values = thermo.stability_values(repo, keys.SOURCE_CHGNET, probe)
    assert values[keys.ENERGY_ABOVE_HULL] == pytest.approx(0.05, abs=1e-6)
    assert values["awaiting_references"] == []


# --------------------------------------------------------------------------------------------
# the script that made the set (no CHGNet run here)
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def script():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "scripts" / "make_chgnet_references.py"
    spec = importlib.util.spec_from_file_location("make_chgnet_references", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop(spec.name, None)


def test_every_prototype_decorates_to_its_stoichiometry_at_the_ionic_bond_length(script):
    import numpy as np

    for proto in script.PROTOTYPES:
        n_a, n_x = script.stoichiometry(proto)
        structure = script.decorate(proto, "Mg", "O", 2.1)
        comp = structure.composition
        assert comp["Mg"] * n_x == comp["O"] * n_a, proto.name
        d = structure.distance_matrix
        np.fill_diagonal(d, np.inf)
        mg = [i for i, s in enumerate(structure) if s.specie.symbol == "Mg"]
        o = [i for i, s in enumerate(structure) if s.specie.symbol == "O"]
        assert d[np.ix_(mg, o)].min() == pytest.approx(2.1, abs=1e-6), proto.name
        assert d.min() > 1.2, proto.name  # no two atoms on top of each other (a wrong Wyckoff setting would)


def test_the_work_list_follows_common_oxidation_states_and_relevance(script):
    jobs, skipped = script.work_list(["Mg", "Ti", "Sr", "Nb", "K"], ["O", "F"], "relevant", 2)
    formulas = {j.formula for j in jobs}
    assert formulas == {"MgO", "TiO2", "SrO", "Nb2O5", "K2O", "MgF2", "SrF2", "KF"}  # no TiF4, NbF5: no ABF3 has them
    assert {j.prototype for j in jobs if j.formula == "TiO2"} >= {"rutile", "fluorite", "CdI2"}
    assert {j.prototype for j in jobs if j.formula == "Nb2O5"} == {"V2O5"}
    assert skipped == []
    everything, skipped = script.work_list(["Ti", "Nb"], ["F"], "all", 2)
    assert {j.formula for j in everything} == {"TiF4"} and skipped == [{"formula": "NbF5", "stoichiometry": "A1X5"}]


def test_the_work_file_resumes_without_redoing_a_relaxation(script, tmp_path, monkeypatch):
    jobs, _ = script.work_list(["Mg"], ["O"], "relevant", 1)
    calls = []

    def fake_run(job, fmax, steps):
        calls.append(job.key)
        return {"key": job.key, "formula": job.formula, "prototype": job.prototype, "status": "failed",
                "error": "test", "seconds": 0.0}  # fmt: skip

    monkeypatch.setattr(script, "run_job", fake_run)
    work = tmp_path / "work.jsonl"
    script.run(jobs, work, 0.05, 10, None, retry_failed=False)
    assert calls == [j.key for j in jobs]
    with work.open("a") as fh:
        fh.write('{"key": "cut short')  # an interrupted write is ignored
    script.run(jobs, work, 0.05, 10, None, retry_failed=False)
    assert len(calls) == len(jobs)  # nothing run again
    script.run(jobs, work, 0.05, 10, None, retry_failed=True)
    assert len(calls) == 2 * len(jobs)  # failed ones again, when asked
