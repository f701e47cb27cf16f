"""What a reference energy is: which energies may be compared, elemental ground states, user entries.

Energies from different functionals (or from the same functional with different cutoffs or
pseudopotential families) live on different scales, so they are never placed in one convex hull.
:func:`comparable_settings` gives every entry a ``(functional, input_set)`` key; formation
energies and distances to the hull only ever combine entries with equal keys (the Materials
Project's practice: GGA/GGA+U mixed through ``MaterialsProject2020Compatibility``, every other
functional on its own).

:func:`ground_state_structure` is the table of elemental reference states a campaign computes
when the user has none, and :func:`read_reference_entries` reads the references a user already
has (pymatgen entries, e.g. exported from the Materials Project API).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from numbers import Real
from pathlib import Path

from ase.build import bulk
from ase.data import atomic_numbers, covalent_radii
from pymatgen.core import Element, Lattice, Structure
from pymatgen.entries.computed_entries import ComputedEntry, ComputedStructureEntry
from pymatgen.io.ase import AseAtomsAdaptor
from pymatgen.io.vasp.sets import MPRelaxSet, MPScanRelaxSet

from motif_screen.errors import InputError

# --------------------------------------------------------------------------------------------
# comparable settings
# --------------------------------------------------------------------------------------------

GGA = "GGA"  # GGA and GGA+U: one scale once MaterialsProject2020Compatibility has mixed them
CHGNET = "CHGNet"

# Case-normalised spellings of run types (pymatgen's Vasprun.run_type, atomate and the Materials
# Project API write e.g. "R2SCAN" and "r2SCAN" for the same functional). Parts of a run type
# joined by "+" (GGA+U, r2SCAN+rVV10) are normalised one by one; unknown parts are upper-cased.
_CANONICAL = {
    name.upper(): name
    for name in (
        "GGA",
        "PBE",
        "PBEsol",
        "revPBE",
        "AM05",
        "optPBE",
        "optB88",
        "optB86b",
        "LDA",
        "SCAN",
        "r2SCAN",
        "rSCAN",
        "TPSS",
        "revTPSS",
        "HSE03",
        "HSE06",
        "PBE0",
        "B3LYP",
        "HF",
        "U",
        "rVV10",
        CHGNET,
    )
}

# The Materials Project's documented input sets, for entries that carry no INCAR (entries from
# the Materials Project API store run_type, hubbards and potcar_spec, not ENCUT): GGA/GGA+U runs
# use MPRelaxSet (520 eV, PBE POTCARs) and r2SCAN runs MPScanRelaxSet (680 eV, PBE_54 POTCARs).
MP_DEFAULT_INPUT_SETS: dict[str, type[MPRelaxSet] | type[MPScanRelaxSet]] = {GGA: MPRelaxSet, "r2SCAN": MPScanRelaxSet}


def describe_entry(entry) -> str:
    """How messages name an entry: ``entry <entry_id> (<reduced formula>)``."""
    name = getattr(entry, "entry_id", None)
    formula = entry.composition.reduced_formula
    return f"entry {name} ({formula})" if name is not None else f"entry {formula}"


def _functional(run_type) -> str:
    parts = [part.strip() for part in str(run_type).split("+") if part.strip()]
    names = [_CANONICAL.get(part.upper(), part.upper()) for part in parts]
    if names and names[0] == GGA and set(names[1:]) <= {"U"}:
        return GGA
    return "+".join(names)


def _potcar_family(parameters: Mapping, what: str) -> str | None:
    """The POTCAR family as VASP's POTCAR titles name it ("PAW_PBE", "PAW" for LDA), or None.

    Titles name the family, not the release: PBE, PBE_52 and PBE_54 POTCARs are all "PAW_PBE".
    """
    titles = [spec.get("titel") for spec in parameters.get("potcar_spec") or [] if isinstance(spec, Mapping)]
    if not any(titles):
        titles = list(parameters.get("potcar_symbols") or [])
    families = {str(title).split()[0] for title in titles if title and len(str(title).split()) > 1}
    if len(families) > 1:
        raise InputError(f"{what} mixes POTCAR families {sorted(families)}; its energy is on no single scale")
    return families.pop() if families else None


def _encut(parameters: Mapping, what: str) -> float | None:
    value = parameters.get("ENCUT")
    if value is None:
        return None
    try:
        encut = float(value)
    except (TypeError, ValueError):
        raise InputError(f"{what} has ENCUT {value!r}, not a number") from None
    if not (math.isfinite(encut) and encut > 0):
        raise InputError(f"{what} has ENCUT {value!r}; a plane-wave cutoff is a positive number of eV")
    return encut


def comparable_settings(entry_or_parameters) -> tuple[str, str]:
    """``(functional, input_set)``: two energies may be compared only when these are equal.

    ``entry_or_parameters`` is a pymatgen ``ComputedEntry`` / ``ComputedStructureEntry`` or its
    ``parameters`` dict (``run_type`` and, for VASP runs, ``ENCUT`` and ``potcar_spec`` or
    ``potcar_symbols``, as :func:`~motif_screen.oracles.taskdocs.entry_from_taskdoc` stores them).

    ``functional``: ``"GGA"`` for GGA and GGA+U runs (MaterialsProject2020Compatibility puts them
    on one scale), ``"CHGNet"`` for CHGNet, otherwise the case-normalised run type
    (``"PBEsol"``, ``"r2SCAN"``, ``"SCAN"``, ``"HSE06"``, ``"r2SCAN+rVV10"`` ...).

    ``input_set``: what else must match, as ``"<POTCAR family> ENCUT=<cutoff>"``, e.g.
    ``"PAW_PBE ENCUT=520"``: the plane-wave cutoff and the POTCAR family named by the POTCAR titles
    (titles do not tell PBE from PBE_54 releases; the per-element POTCAR choice is checked by
    MaterialsProject2020Compatibility for GGA entries). Both are the same for every material run
    with one atomate preset, so they are material-independent. For CHGNet: ``"model <version>"``
    from ``parameters["model_version"]``.

    Entries without ``ENCUT`` or POTCAR titles (entries exported from the Materials Project API
    carry neither an INCAR nor always titles) take the Materials Project's documented defaults
    for their run type: GGA/GGA+U -> MPRelaxSet (ENCUT 520 eV, PBE POTCARs), r2SCAN ->
    MPScanRelaxSet (ENCUT 680 eV, PBE_54 POTCARs), read from pymatgen's input sets. Any other run
    type without them is an InputError: there is no documented default to assume.
    """
    parameters: Mapping
    if isinstance(entry_or_parameters, ComputedEntry):
        parameters, what = entry_or_parameters.parameters or {}, describe_entry(entry_or_parameters)
    elif isinstance(entry_or_parameters, Mapping):
        parameters, what = entry_or_parameters, "an entry"
    else:
        raise InputError(
            f"comparable_settings needs a pymatgen ComputedEntry or its parameters dict, "
            f"not {type(entry_or_parameters).__name__}"
        )
    run_type = parameters.get("run_type")
    functional = _functional(run_type) if run_type is not None else ""
    if not functional:
        raise InputError(f"{what} has no run_type in its parameters, so the functional it was computed with is unknown")
    if functional == CHGNET:
        version = parameters.get("model_version")
        if not version:
            raise InputError(f"{what} is a CHGNet entry without parameters['model_version']; CHGNet versions differ")
        return functional, f"model {version}"

    encut, family = _encut(parameters, what), _potcar_family(parameters, what)
    if encut is None or family is None:
        default = MP_DEFAULT_INPUT_SETS.get(functional)
        if default is None:
            lacking = " and ".join(n for n, v in (("ENCUT", encut), ("POTCAR titles", family)) if v is None)
            raise InputError(
                f"{what} ({run_type}) has no {lacking} in its parameters and the Materials Project has no "
                f"default input set for {functional}; add them to the entry's parameters"
            )
        encut = float(default.CONFIG["INCAR"]["ENCUT"]) if encut is None else encut
        family = family or "PAW_" + default.CONFIG["POTCAR_FUNCTIONAL"].split("_")[0]
    return functional, f"{family} ENCUT={encut:g}"


# --------------------------------------------------------------------------------------------
# elemental ground states
# --------------------------------------------------------------------------------------------

BOX = 12.0  # Å: vacuum box edge for molecules and atoms
GAS_DIMERS = {"H": 0.74, "N": 1.10, "O": 1.21, "F": 1.42, "Cl": 1.99}  # bond lengths, Å
NOBLE_GASES = ("He", "Ne", "Ar", "Kr", "Xe", "Rn")
PROTOTYPES = ("fcc", "bcc", "sc", "diamond")  # simple lattices for prototype_structure


class MissingPrototypeError(InputError):
    """The element's ground state is not in the shipped table; the user can supply a structure."""


def _element(symbol: str) -> Element:
    try:
        return Element(symbol)
    except (ValueError, KeyError):
        raise InputError(f"{symbol!r} is not an element symbol") from None


def ground_state_structure(symbol: str) -> Structure:
    """The elemental reference structure of ``symbol``, from a small table of ground-state prototypes.

    H, N, O, F, Cl: the diatomic molecule (bond lengths in ``GAS_DIMERS``) in a cubic box of
    ``BOX`` Å; noble gases: one atom in that box; every other element: ASE's reference state
    (``ase.build.bulk(symbol)``: bcc Li, diamond C and Si, hcp Ti, rhombohedral Bi ...).
    Elements whose reference state ASE cannot build (B, P, S, Mn, Ga, Se, Br, Te, I, Pa, Pu and
    the elements ASE has no state for) raise :class:`MissingPrototypeError` (an InputError)
    naming the element: the user supplies its structure instead.
    """
    _element(symbol)
    if symbol in GAS_DIMERS:
        d = GAS_DIMERS[symbol]
        return Structure(
            Lattice.cubic(BOX), [symbol, symbol], [[0.0, 0.0, 0.0], [0.0, 0.0, d]], coords_are_cartesian=True
        )
    if symbol in NOBLE_GASES:
        return Structure(Lattice.cubic(BOX), [symbol], [[0, 0, 0]])
    try:
        return AseAtomsAdaptor.get_structure(bulk(symbol))
    except (ValueError, KeyError, TypeError, NotImplementedError, RuntimeError):
        raise MissingPrototypeError(
            f"no ground-state prototype is shipped for {symbol} (ASE cannot build its reference state); "
            f"supply a structure for {symbol}'s reference yourself"
        ) from None


def prototype_structure(symbol: str, lattice: str) -> Structure:
    """``symbol`` on a simple lattice (one of ``PROTOTYPES``), lattice constant from its covalent radius.

    A starting point to relax when the ground state is not in the table, never a ground state.
    """
    _element(symbol)
    if lattice not in PROTOTYPES:
        raise InputError(f"unknown prototype lattice {lattice!r}; expected one of {', '.join(PROTOTYPES)}")
    r = float(covalent_radii[atomic_numbers[symbol]])
    a = {"fcc": 2 * 2**0.5 * r, "bcc": 4 * r / 3**0.5, "sc": 2 * r, "diamond": 8 * r / 3**0.5}[lattice]
    return AseAtomsAdaptor.get_structure(bulk(symbol, lattice, a=a))


# --------------------------------------------------------------------------------------------
# reference entries a user brings
# --------------------------------------------------------------------------------------------

_ENTRY_CLASSES: dict[str, type[ComputedEntry]] = {
    "ComputedEntry": ComputedEntry,
    "ComputedStructureEntry": ComputedStructureEntry,
}


def _entry_from_dict(item, where: str):
    if not isinstance(item, Mapping):
        raise InputError(f"{where} is a {type(item).__name__}, not a pymatgen entry (a JSON object)")
    cls_name = item.get("@class") or ("ComputedStructureEntry" if "structure" in item else "ComputedEntry")
    if cls_name not in _ENTRY_CLASSES:
        raise InputError(f"{where} is a {cls_name}; expected a ComputedEntry or ComputedStructureEntry")
    energy = item.get("energy")
    if energy is None:
        raise InputError(f"{where} has no energy")
    if isinstance(energy, bool) or not isinstance(energy, Real) or not math.isfinite(energy):
        raise InputError(f"{where} has energy {energy!r}; a reference needs a finite energy in eV")
    try:
        entry = _ENTRY_CLASSES[cls_name].from_dict(dict(item))
    except (KeyError, ValueError, TypeError, AttributeError) as exc:
        raise InputError(f"{where} is not a readable {cls_name}: {type(exc).__name__}: {exc}") from None
    if entry.composition.num_atoms <= 0:
        raise InputError(f"{where} has an empty composition")
    return entry


def read_reference_entries(path: str | os.PathLike) -> list[ComputedEntry | ComputedStructureEntry]:
    """Read reference entries from a JSON file: a list of entries, or ``{"entries": [...]}``.

    Each item is a pymatgen ``ComputedEntry`` or ``ComputedStructureEntry`` ``as_dict()`` (what
    ``json.dump([e.as_dict() for e in mpr.get_entries(...)])`` writes for Materials Project
    entries). UTF-8, with or without a byte-order mark. All entries must share one
    :func:`comparable_settings` key. Anything else — an unreadable or non-JSON file, an item that
    is not an entry, an entry without a finite energy, entries of different functionals or input
    sets — raises one :class:`~motif_screen.errors.InputError` and nothing is returned.
    """
    path = Path(path).expanduser()
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise InputError(f"reference entries file {path} is not UTF-8 text") from None
    except OSError as exc:
        raise InputError(f"reference entries file {path} cannot be read: {exc.strerror or exc}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(
            f"reference entries file {path} is not JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})"
        ) from None
    items = data.get("entries") if isinstance(data, dict) else data
    if not isinstance(items, list):
        raise InputError(
            f'reference entries file {path} holds neither a list of entries nor an object with an "entries" list'
        )
    if not items:
        raise InputError(f"reference entries file {path} contains no entries")
    entries = [_entry_from_dict(item, f"item {i + 1} of {path}") for i, item in enumerate(items)]
    settings: dict[tuple[str, str], str] = {}
    for i, entry in enumerate(entries):
        try:
            key = comparable_settings(entry)
        except InputError as exc:
            raise InputError(f"item {i + 1} of {path}: {exc}") from None
        settings.setdefault(key, f"item {i + 1}, {describe_entry(entry)}")
    if len(settings) > 1:
        listed = "; ".join(
            f"{functional} / {input_set} (first: {first})" for (functional, input_set), first in settings.items()
        )
        raise InputError(
            f"reference entries file {path} mixes functionals or input sets: {listed}. "
            "Energies of different settings cannot share a convex hull: give one file per setting"
        )
    return entries
