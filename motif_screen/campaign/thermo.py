"""Formation energies and distances to the convex hull of oracle results, from stored references.

One path for both oracles: VASP results (with ``MaterialsProject2020Compatibility`` where its rules
apply) and the CHGNet stand-in (CHGNet elemental references, never mixed with DFT). Energies are
compared only within one source and one set of comparable settings (functional and input set,
:func:`motif_screen.oracles.references.comparable_settings`). A result whose elements lack a
reference is stored as *awaiting references* and filled in when the reference arrives; a distance
to the hull is recomputed whenever a competing phase lands, and each change is kept in its history.
"""

from __future__ import annotations

import logging
from collections import Counter

import numpy as np
from pymatgen.analysis.phase_diagram import PhaseDiagram
from pymatgen.entries.computed_entries import ComputedEntry, ComputedStructureEntry

from motif_screen import keys
from motif_screen.db.documents import ReferenceEntry, utcnow
from motif_screen.db.repository import Repository
from motif_screen.oracles.chgnet import shipped_competing_phases
from motif_screen.oracles.references import comparable_settings
from motif_screen.oracles.stability import corrected, energy_above_hull, formation_energy_per_atom

log = logging.getLogger(__name__)
CHANGE_TOLERANCE = 1e-6  # eV/atom: a distance to the hull that moves less than this has not changed


def entry_from_dict(data: dict):
    cls = ComputedStructureEntry if "structure" in data else ComputedEntry
    return cls.from_dict(data)


def _reference_entries(repo: Repository, source: str, functional: str, input_set: str, elements) -> list:
    docs = repo.references(source=source, functional=functional, input_set=input_set, elements=elements)
    return [entry_from_dict(d.entry) for d in docs if d.entry]


def _competing_results(repo: Repository, source: str, functional: str, input_set: str, elements, exclude=None) -> list:
    found = repo.results_of_systems(source, functional, input_set, elements)
    return [entry_from_dict(r.entry) for r in found if r.entry and (exclude is None or r.id != exclude)]


def stability_values(repo: Repository, source: str, entry, exclude=None) -> dict:
    """Formation energy, distance to the hull and what is missing for one result's entry."""
    functional, input_set = comparable_settings(entry)
    elements = sorted(el.symbol for el in entry.composition.elements)
    references = _reference_entries(repo, source, functional, input_set, elements)
    elemental = [e for e in references if len(e.composition.elements) == 1]
    [mine] = corrected([entry])
    e_form, missing = formation_energy_per_atom(mine, corrected(elemental))
    others = corrected(references + _competing_results(repo, source, functional, input_set, elements, exclude))
    hull = (
        energy_above_hull(mine, others)
        if not missing
        else {
            "energy_above_hull": None,
            "decomposition": {},
            "n_entries": len(others),
            "error": f"no reference for {', '.join(missing)} yet",
        }
    )
    return {
        "functional": functional,
        "input_set": input_set,
        "entry": mine.as_dict(),
        keys.FORMATION_ENERGY: e_form,
        keys.ENERGY_ABOVE_HULL: hull["energy_above_hull"],
        "awaiting_references": list(missing),
        "stability": {k: hull[k] for k in ("decomposition", "n_entries", "error")},
    }


def refresh(repo: Repository, source: str, functional: str, input_set: str) -> dict:
    """Recompute formation energies and hull distances of every result with these settings.

    Fills in results that were awaiting a reference, and records each distance to the hull that
    moved (a competing phase arrived) in the result's history. Returns counts.
    """
    counts = {"filled": 0, "moved": 0}
    for result in repo.results_with_settings(source, functional, input_set):
        if not result.entry:
            continue
        values = stability_values(repo, source, entry_from_dict(result.entry), exclude=result.id)
        before = result.energy_above_hull
        after = values[keys.ENERGY_ABOVE_HULL]
        changed = (before is None) != (after is None) or (
            before is not None and after is not None and abs(before - after) > CHANGE_TOLERANCE
        )
        filled = bool(result.awaiting_references) and not values["awaiting_references"]
        if not (changed or filled):
            continue
        counts["filled"] += int(filled)
        counts["moved"] += int(changed and not filled)
        repo.update_result(
            result,
            history={"at": utcnow(), keys.ENERGY_ABOVE_HULL: after, "n_entries": values["stability"]["n_entries"]}
            if changed
            else None,
            candidate_oracle={
                keys.FORMATION_ENERGY: values[keys.FORMATION_ENERGY],
                keys.ENERGY_ABOVE_HULL: after,
                "awaiting_references": values["awaiting_references"],
            },
            **{
                keys.FORMATION_ENERGY: values[keys.FORMATION_ENERGY],
                keys.ENERGY_ABOVE_HULL: after,
                "awaiting_references": values["awaiting_references"],
                "stability": values["stability"],
            },
        )
    if counts["filled"] or counts["moved"]:
        log.info(
            "%s %s %s: %d results filled in, %d distances to the hull moved",
            source,
            functional,
            input_set,
            counts["filled"],
            counts["moved"],
        )
    return counts


def refresh_all(repo: Repository, source: str) -> dict:
    """:func:`refresh` for every set of comparable settings that has results of ``source``."""
    totals = {"filled": 0, "moved": 0}
    for functional, input_set in repo.result_settings(source):
        for k, v in refresh(repo, source, functional, input_set).items():
            totals[k] += v
    return totals


def reference_key(origin: str, source: str, settings: str, formula: str) -> str:
    return f"{origin}|{source}|{settings}|{formula}"


def store_reference(
    repo: Repository, source: str, entry, *, origin: str, key: str | None = None, **fields
) -> tuple[ReferenceEntry, bool]:
    """Store one reference entry (elemental or a competing phase) under its comparable settings."""
    functional, input_set = comparable_settings(entry)
    composition = entry.composition
    formula = composition.reduced_formula
    elements = sorted(el.symbol for el in composition.elements)
    key = key or reference_key(
        origin, source, f"{functional}/{input_set}", f"{formula}:{entry.entry_id or round(entry.energy_per_atom, 6)}"
    )
    return repo.add_reference(
        key,
        source=source,
        functional=functional,
        input_set=input_set,
        formula=formula,
        elements=elements,
        chemsys="-".join(elements),
        is_elemental=len(elements) == 1,
        energy=float(entry.uncorrected_energy),
        energy_per_atom=float(entry.uncorrected_energy) / composition.num_atoms,
        entry=entry.as_dict(),
        origin=origin,
        status="computed",
        **fields,
    )


def chgnet_reference_key(entry) -> str:
    """The key of a CHGNet reference: elements as the oracle stores them, shipped phases by formula and prototype."""
    version = entry.parameters["model_version"]
    composition = entry.composition
    if composition.is_element:
        return reference_key("computed", keys.SOURCE_CHGNET, version, composition.elements[0].symbol)
    prototype = (getattr(entry, "data", None) or {}).get("prototype", "")
    return reference_key("shipped", keys.SOURCE_CHGNET, version, f"{composition.reduced_formula}:{prototype}")


def ensure_shipped_chgnet_references(repo: Repository) -> int:
    """Store the shipped CHGNet reference set (elements and competing binaries) once; returns how many were new.

    Idempotent and cheap once done (two look-ups): the set is stored whole the first time, keyed so
    that its elements coincide with the references the CHGNet oracle stores itself. Entries of
    another CHGNet model version than the running one are not stored (their energies are on
    another scale). CHGNet energies, ``source="chgnet"``: never mixed with DFT references.
    """
    entries = shipped_competing_phases()
    if not entries:
        return 0
    entry_keys = [chgnet_reference_key(entry) for entry in entries]
    if repo.reference(entry_keys[-1]) is not None and repo.reference(entry_keys[0]) is not None:
        return 0
    added = sum(
        store_reference(repo, keys.SOURCE_CHGNET, entry, origin="computed", key=key)[1]
        for entry, key in zip(entries, entry_keys, strict=True)
    )
    log.info("stored %d shipped CHGNet reference entries (%d new)", len(entries), added)
    return added


class KnownHull:
    """The convex hull of what is known for one source and set of comparable settings: references
    and successful results. Answers, per composition, the formation energy (eV/atom) of the hull
    there — so a predicted formation energy becomes a predicted distance to the hull.

    Phase diagrams are built per chemical system and cached; a system with an element that has no
    reference is measured against the elements only (its hull formation energy is 0).
    """

    def __init__(self, entries: list):
        self.entries = entries
        self._by_system: dict[tuple[str, ...], PhaseDiagram | None] = {}

    def _diagram(self, system: tuple[str, ...]) -> PhaseDiagram | None:
        if system not in self._by_system:
            inside = [e for e in self.entries if {el.symbol for el in e.composition.elements} <= set(system)]
            terminals = {e.composition.elements[0].symbol for e in inside if len(e.composition.elements) == 1}
            self._by_system[system] = PhaseDiagram(inside) if terminals >= set(system) else None
        return self._by_system[system]

    def covers(self, composition) -> bool:
        """Whether every element of ``composition`` has a reference here (else its hull is the elements' 0)."""
        return self._diagram(tuple(sorted(el.symbol for el in composition.elements))) is not None

    def formation_energies(self, compositions) -> np.ndarray:
        out = np.zeros(len(compositions))
        for k, comp in enumerate(compositions):
            system = tuple(sorted(el.symbol for el in comp.elements))
            diagram = self._diagram(system)
            if diagram is None:
                continue
            fractions = comp.fractional_composition
            mu = sum(float(x) * diagram.el_refs[el].energy_per_atom for el, x in fractions.items())
            out[k] = diagram.get_hull_energy_per_atom(comp) - mu
        return out


def known_hull(repo: Repository, source: str) -> KnownHull:
    """The hull a campaign of ``source`` screens against: for CHGNet its shipped references and
    results; for VASP the settings most references were computed with (none yet: elements only)."""
    if source == keys.SOURCE_CHGNET:
        ensure_shipped_chgnet_references(repo)
    refs = repo.references(source=source)
    if not refs:
        return KnownHull([])
    settings = Counter((r.functional, r.input_set) for r in refs).most_common(1)[0][0]
    entries = [entry_from_dict(r.entry) for r in refs if (r.functional, r.input_set) == settings and r.entry]
    entries += [entry_from_dict(r.entry) for r in repo.results_with_settings(source, *settings) if r.entry]
    return KnownHull(corrected(entries))
