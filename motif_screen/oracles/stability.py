"""Formation energies and distances to the convex hull, as the Materials Project computes them.

Entries come in uncorrected (atomate task documents, user files, Materials Project exports) and
are corrected here with pymatgen's ``MaterialsProject2020Compatibility`` where its rules apply
(GGA/GGA+U: U mixing, anion corrections), then compared only with entries of the same
:func:`~motif_screen.oracles.references.comparable_settings`.
"""

from __future__ import annotations

import copy
import math
import textwrap
from collections.abc import Iterable, Sequence
from functools import lru_cache
from typing import Any

from pymatgen.analysis.phase_diagram import PhaseDiagram
from pymatgen.core import DummySpecies, Element, Species
from pymatgen.entries.compatibility import CompatibilityError, MaterialsProject2020Compatibility
from pymatgen.entries.computed_entries import ComputedEntry

from motif_screen.errors import InputError
from motif_screen.oracles.references import GGA, comparable_settings, describe_entry


@lru_cache(maxsize=1)
def _mp2020() -> MaterialsProject2020Compatibility:
    # check_potcar=True, by symbol (check_potcar_hash=False, pymatgen's default): the correction
    # scheme is fitted to the Materials Project's POTCAR choice (Li_sv, Fe_pv ...), and another
    # choice shifts the energy. Symbols come from the POTCAR titles vasprun.xml records (atomate's
    # potcar_spec, also with use_potcar_spec / fake VASP, whose outputs carry titles but no POTCAR
    # files) and from Materials Project exports; hashes would need the POTCAR files themselves.
    return MaterialsProject2020Compatibility(check_potcar=True, check_potcar_hash=False)


def corrected(entries: Iterable[ComputedEntry]) -> list[ComputedEntry]:
    """Copies of ``entries``, corrected where MaterialsProject2020Compatibility applies.

    GGA and GGA+U entries get the MP2020 energy adjustments (GGA/GGA+U mixing, anion and
    oxide-type corrections; earlier adjustments are replaced); entries of every other functional
    come back uncorrected (no energy adjustments), never dropped. The inputs are not modified.
    A GGA entry MP2020 rejects (a POTCAR that is not the Materials Project's, a U value that is
    not MP's, no POTCAR information to check) raises InputError naming the entry and the reason.
    """
    out = []
    for entry in entries:
        functional, _ = comparable_settings(entry)
        entry = copy.deepcopy(entry)
        entry.energy_adjustments = []
        if functional == GGA:
            try:
                _mp2020().process_entry(entry, inplace=True, on_error="raise")
            except CompatibilityError as exc:
                raise InputError(
                    f"MaterialsProject2020Compatibility rejects {describe_entry(entry)}: "
                    f"{textwrap.shorten(str(exc), 300)}"
                ) from None
            except KeyError:  # PotcarCorrection reads parameters["potcar_symbols"] when there is no potcar_spec
                raise InputError(
                    f"MaterialsProject2020Compatibility cannot check {describe_entry(entry)}: it has no POTCAR "
                    "titles (parameters 'potcar_spec' or 'potcar_symbols') to compare with the Materials Project's"
                ) from None
        out.append(entry)
    return out


def _check_consistent(entries: Sequence[ComputedEntry]) -> None:
    """InputError unless every entry has a finite energy and all share one comparable_settings key."""
    for entry in entries:
        if not math.isfinite(entry.uncorrected_energy):
            raise InputError(f"{describe_entry(entry)} has a non-finite energy ({entry.uncorrected_energy})")
    settings = {comparable_settings(entry): entry for entry in entries}
    if len(settings) > 1:
        listed = "; ".join(f"{f} / {s} ({describe_entry(e)})" for (f, s), e in settings.items())
        raise InputError(f"entries of different functionals or input sets cannot be compared: {listed}")


def _elemental_references(entries: Iterable[ComputedEntry]) -> dict[Element | Species | DummySpecies, ComputedEntry]:
    """The lowest-energy-per-atom single-element entry of each element (PhaseDiagram's el_refs)."""
    refs: dict[Element | Species | DummySpecies, ComputedEntry] = {}
    for entry in entries:
        if entry.composition.is_element:
            element = entry.composition.elements[0]
            if element not in refs or entry.energy_per_atom < refs[element].energy_per_atom:
                refs[element] = entry
    return refs


def formation_energy_per_atom(
    entry: ComputedEntry, references: Iterable[ComputedEntry]
) -> tuple[float | None, list[str]]:
    """Formation energy per atom (eV/atom) of ``entry`` against elemental ``references``.

    Both are corrected (:func:`corrected`), then, as ``PhaseDiagram.get_form_energy_per_atom``
    does, (E − Σ nᵢ μᵢ) / N with μᵢ the lowest energy per atom among the single-element entries
    of each element (compounds in ``references`` are ignored). Returns ``(value, [])``, or
    ``(None, missing_elements)`` when an element of ``entry`` has no reference — never a guess.
    References must share the entry's comparable settings and have finite energies (InputError
    otherwise, as for entries MP2020 rejects).
    """
    references = list(references)
    _check_consistent([entry, *references])
    target, *refs = corrected([entry, *references])
    el_refs = _elemental_references(refs)
    comp = target.composition
    missing = sorted(el.symbol for el in comp.elements if el not in el_refs)
    if missing:
        return None, missing
    reference_energy = sum(comp[el] * el_refs[el].energy_per_atom for el in comp.elements)
    return float((target.energy - reference_energy) / comp.num_atoms), []


def energy_above_hull(entry: ComputedEntry, others: Iterable[ComputedEntry]) -> dict:
    """Distance (eV/atom) of ``entry`` to the convex hull of ``others`` in its chemical system.

    ``others``: references, competing phases and other results, all of the entry's comparable
    settings, the entry itself excluded by the caller (an entry of ``others`` with the entry's
    ``entry_id`` is left out). All are corrected (:func:`corrected`); those whose elements lie in
    the entry's chemical system build a pymatgen ``PhaseDiagram``, and
    ``get_decomp_and_e_above_hull(entry, allow_negative=True)`` gives the distance: negative means
    below every known phase (a new stable phase).

    Returns ``{"energy_above_hull": float | None, "decomposition": {reduced formula: fraction},
    "n_entries": entries in the phase diagram, "error": str | None}``. When no hull can be built
    (a terminal element without a reference, a non-finite energy, mixed settings, an entry MP2020
    rejects) ``energy_above_hull`` is None and ``error`` says why; nothing is raised.
    """
    result: dict[str, Any] = {"energy_above_hull": None, "decomposition": {}, "n_entries": 0, "error": None}
    others = [o for o in others if entry.entry_id is None or o.entry_id != entry.entry_id]
    try:
        _check_consistent([entry, *others])
        target, *pool = corrected([entry, *others])
    except InputError as exc:
        result["error"] = str(exc)
        return result
    chemsys = set(target.composition.elements)
    system = "-".join(sorted(el.symbol for el in chemsys))
    pool = [o for o in pool if set(o.composition.elements) <= chemsys]
    result["n_entries"] = len(pool)
    el_refs = _elemental_references(pool)
    missing = sorted(el.symbol for el in chemsys if el not in el_refs)
    if missing:
        result["error"] = (
            f"no elemental reference for {', '.join(missing)} among the {len(pool)} entries of the {system} "
            "system: the convex hull needs every terminal element"
        )
        return result
    try:
        # pymatgen annotates `elements` as Element only; the composition's own keys are what it compares
        diagram = PhaseDiagram(pool, elements=sorted(chemsys))  # type: ignore[arg-type]
        decomposition, e_above_hull = diagram.get_decomp_and_e_above_hull(target, allow_negative=True)
    except (ValueError, RuntimeError, KeyError) as exc:  # pymatgen's own failure modes (qhull: RuntimeError)
        result["error"] = f"the convex hull of the {system} system cannot be built: {exc}"
        return result
    # with on_error="raise" (the default) pymatgen raises instead of returning (None, None)
    assert decomposition is not None and e_above_hull is not None
    fractions: dict[str, float] = {}
    for phase, fraction in decomposition.items():
        formula = phase.composition.reduced_formula
        fractions[formula] = fractions.get(formula, 0.0) + float(fraction)
    result.update(energy_above_hull=float(e_above_hull), decomposition=fractions)
    return result
