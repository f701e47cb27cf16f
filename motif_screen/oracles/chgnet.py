"""The local oracle for machines without VASP: CHGNet relaxations (extra ``mlip``).

Every value here is a machine-learned-potential estimate, labelled ``source="chgnet"`` — never
presented as DFT. Formation energies use elemental references computed with CHGNet too (same
model, same error model): bulk elements from ``ase.build.bulk`` (ASE's reference states), the
gaseous elements as molecules (H2, N2, O2, F2, Cl2) or atoms (noble gases) in a box; elements
whose reference state ASE cannot build (B, P, S, Ga, Mn ...) take the lowest-energy of relaxed
fcc/bcc/sc/diamond prototypes, an upper bound on the true reference (recorded in the cache).
References are relaxed once and cached in a JSON file keyed by model version.

Competing phases: :func:`shipped_competing_phases` reads the reference set shipped with the package
(``chgnet_competing_phases.json``, made by ``scripts/make_chgnet_references.py``): the elemental
references above plus the binary oxides, sulfides, nitrides and fluorides of the shipped model's
cations in their common oxidation states, each the lowest-energy of a few common prototypes relaxed
with CHGNet — so that a CHGNet distance to the hull of an ABX3 candidate has its binaries to
compete with. CHGNet energies all, never DFT.

CHGNet is loaded once per process (its weights ship in the wheel, so no network is needed).
Measured on a 2-core machine: a prediction takes ~0.1 s for small cells, so a relaxation is
bounded by ``steps`` × that.
"""

from __future__ import annotations

import copy
import json
import os
import time
from collections.abc import Iterable, Mapping
from functools import lru_cache
from pathlib import Path

from motif_screen import keys
from motif_screen.errors import InputError, ModelError
from motif_screen.oracles.references import (
    GAS_DIMERS,
    NOBLE_GASES,
    PROTOTYPES,
    MissingPrototypeError,
    ground_state_structure,
    prototype_structure,
    read_reference_entries,
)
from motif_screen.structures.validity import FUSED_BOND_FRACTION, closest_pair

SOURCE = keys.SOURCE_CHGNET
DEFAULT_FMAX = 0.1  # eV/Å
DEFAULT_STEPS = 200
REFERENCE_FMAX = 0.05
REFERENCE_STEPS = 300
CACHE_NAME = "chgnet_references.json"
COMPETING_PHASES_NAME = "chgnet_competing_phases.json"


@lru_cache(maxsize=1)
def load_chgnet():
    """The pretrained CHGNet, loaded once per process."""
    try:
        from chgnet.model import CHGNet
    except ImportError as exc:
        raise ModelError("the CHGNet oracle needs the `mlip` extra: pip install 'motif_screen[mlip]'") from exc
    from motif_screen.settings import get_settings

    return CHGNet.load(verbose=False, use_device=get_settings().device)


@lru_cache(maxsize=1)
def _optimizer():
    from chgnet.model import StructOptimizer

    return StructOptimizer(model=load_chgnet(), use_device=None)


def model_version() -> str:
    return str(load_chgnet().version)


def chgnet_relax(structure, fmax: float = DEFAULT_FMAX, steps: int = DEFAULT_STEPS, relax_cell: bool = True) -> dict:
    """Relax ``structure`` with CHGNet (FIRE, cell included) for at most ``steps`` steps.

    Returns ``energy`` (eV, total), ``energy_per_atom``, ``final_structure`` (pymatgen),
    ``converged`` (max force < fmax), ``max_force``, ``steps``, ``seconds``, ``source``,
    ``model_version``.
    """
    import numpy as np
    from pymatgen.core import Structure

    if not isinstance(structure, Structure):
        raise InputError(f"the CHGNet oracle needs a periodic pymatgen Structure, got {type(structure).__name__}")
    if not structure.is_ordered:
        raise InputError(
            f"structure {structure.composition.reduced_formula} is disordered; CHGNet needs an ordered cell"
        )
    if fmax <= 0 or steps < 1:
        raise InputError(f"fmax must be > 0 and steps >= 1 (got fmax={fmax}, steps={steps})")
    start = time.perf_counter()
    result = _optimizer().relax(structure, fmax=fmax, steps=int(steps), relax_cell=relax_cell, verbose=False)
    trajectory = result["trajectory"]
    final = result["final_structure"]
    energy = float(trajectory.energies[-1])
    forces = np.asarray(trajectory.forces[-1])
    max_force = float(np.linalg.norm(forces, axis=1).max()) if len(forces) else 0.0
    if not np.isfinite(energy):
        raise ModelError(f"CHGNet returned a non-finite energy for {structure.composition.reduced_formula}")
    ratio, pair = closest_pair(final)
    if ratio < FUSED_BOND_FRACTION:  # not a structure: its energy would train and judge as if it were
        raise ModelError(
            f"CHGNet's relaxation of {structure.composition.reduced_formula} ended with atoms fused ({pair}, "
            f"{ratio:.2f} of their covalent radii, below {FUSED_BOND_FRACTION}): no value recorded"
        )
    return {
        "energy": energy,
        "energy_per_atom": energy / len(final),
        "final_structure": final,
        "converged": max_force < fmax,
        "max_force": max_force,
        "steps": len(trajectory.energies),
        "seconds": time.perf_counter() - start,
        "source": SOURCE,
        "model_version": model_version(),
    }


# --------------------------------------------------------------------------------------------
# elemental references and formation energies
# --------------------------------------------------------------------------------------------


def reference_structure(symbol: str):
    """The reference state of an element as a pymatgen Structure (molecules/atoms in a box).

    :func:`~motif_screen.oracles.references.ground_state_structure`, or None when that table has
    no prototype for the element (B, P, S, Ga, Mn ...): then :func:`elemental_references` takes
    the lowest of simple prototypes.
    """
    try:
        return ground_state_structure(symbol)
    except MissingPrototypeError:
        return None


def _relaxed_reference(symbol: str) -> dict:
    is_box = symbol in GAS_DIMERS or symbol in NOBLE_GASES
    ref = reference_structure(symbol)
    if ref is not None:
        relaxed = chgnet_relax(ref, fmax=REFERENCE_FMAX, steps=REFERENCE_STEPS, relax_cell=not is_box)
        state = "molecule in a box" if symbol in GAS_DIMERS else "atom in a box" if is_box else "bulk (ase.build.bulk)"
        return {"energy_per_atom": relaxed["energy_per_atom"], "state": state, "converged": relaxed["converged"]}
    best = None
    for lattice in PROTOTYPES:
        relaxed = chgnet_relax(prototype_structure(symbol, lattice), fmax=REFERENCE_FMAX, steps=REFERENCE_STEPS)
        if best is None or relaxed["energy_per_atom"] < best["energy_per_atom"]:
            best = {
                "energy_per_atom": relaxed["energy_per_atom"],
                "converged": relaxed["converged"],
                "state": (
                    f"lowest of {'/'.join(PROTOTYPES)} prototypes ({lattice}); ASE's reference state is not buildable"
                ),
            }
    assert best is not None  # PROTOTYPES is not empty
    return best


def default_cache_file() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "motif_screen" / CACHE_NAME


def _read_cache(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def _write_cache(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True), encoding="utf-8")
    os.replace(tmp, path)


def shipped_references_file() -> Path:
    """The reference table shipped with the package (computed with this module, CHGNet 0.3.0)."""
    return Path(__file__).with_name(CACHE_NAME)


def elemental_references(
    elements: Iterable[str], cache_file: str | os.PathLike | None = None, *, use_shipped: bool = True
) -> dict[str, float]:
    """CHGNet energy per atom of each element's reference state (relaxed once, then cached).

    Looked up in the cache file (default ``~/.cache/motif_screen``), then in the table shipped
    with the package for the same model version; only elements in neither are relaxed and added
    to the cache. Entries (JSON, keyed by CHGNet model version, then element) also record which
    state was used and whether its relaxation converged.
    """
    path = Path(cache_file).expanduser() if cache_file else default_cache_file()
    version = model_version()
    cache = _read_cache(path)
    table = cache.setdefault(version, {})
    shipped = _read_cache(shipped_references_file()).get(version, {}) if use_shipped else {}
    changed = False
    for symbol in sorted(set(elements)):
        if symbol in table or symbol in shipped:
            continue
        table[symbol] = _relaxed_reference(symbol)
        changed = True
    if changed:
        _write_cache(path, cache)
    return {symbol: (table.get(symbol) or shipped[symbol])["energy_per_atom"] for symbol in set(elements)}


def formation_energy_per_atom(composition, energy: float, references: Mapping[str, float]) -> float | None:
    """(E − Σ nᵢ μᵢ) / N; None when a reference is missing (never a guess)."""
    from pymatgen.core import Composition

    comp = Composition(composition)
    total = 0.0
    for element, amount in comp.get_el_amt_dict().items():
        if element not in references or references[element] is None:
            return None
        total += amount * float(references[element])
    return (float(energy) - total) / comp.num_atoms


def chgnet_oracle(
    structure, fmax: float = DEFAULT_FMAX, steps: int = DEFAULT_STEPS, cache_file: str | os.PathLike | None = None
) -> dict:
    """Relax, then add the CHGNet formation energy per atom (references from the same model)."""
    result = chgnet_relax(structure, fmax=fmax, steps=steps)
    elements = [el.symbol for el in structure.composition.elements]
    refs = elemental_references(elements, cache_file)
    result[keys.FORMATION_ENERGY] = formation_energy_per_atom(
        result["final_structure"].composition, result["energy"], refs
    )
    return result


def entry_of(result: dict):
    """A relaxation's result as a pymatgen entry, labelled CHGNet with its model version (never DFT)."""
    from pymatgen.entries.computed_entries import ComputedStructureEntry

    return ComputedStructureEntry(
        result["final_structure"],
        result["energy"],
        parameters={"run_type": "CHGNet", "model_version": result["model_version"]},
    )


def elemental_reference_entries(elements: Iterable[str], cache_file: str | os.PathLike | None = None) -> dict:
    """element -> a one-atom ComputedEntry at the CHGNet energy per atom of its reference state."""
    from pymatgen.entries.computed_entries import ComputedEntry

    version = model_version()
    return {
        element: ComputedEntry(
            element,
            energy,
            parameters={"run_type": "CHGNet", "model_version": version},
            entry_id=f"chgnet-{version}-{element}",
        )
        for element, energy in elemental_references(elements, cache_file).items()
    }


# --------------------------------------------------------------------------------------------
# the shipped competing phases
# --------------------------------------------------------------------------------------------


def shipped_competing_phases_file() -> Path:
    """The CHGNet reference set shipped with the package (elements and competing binary phases)."""
    return Path(__file__).with_name(COMPETING_PHASES_NAME)


@lru_cache(maxsize=1)
def _shipped_competing_phases() -> tuple[dict, tuple]:
    path = shipped_competing_phases_file()
    if not path.exists():
        return {}, ()
    metadata = json.loads(path.read_text(encoding="utf-8")).get("metadata") or {}
    return metadata, tuple(read_reference_entries(path))


def shipped_competing_phases_metadata() -> dict:
    """How the shipped set was made: CHGNet version, date, prototypes, counts, every polymorph's energy."""
    return copy.deepcopy(_shipped_competing_phases()[0])


def shipped_competing_phases(elements: Iterable[str] | None = None, version: str | None = None) -> list:
    """The shipped CHGNet reference entries: elements (``ComputedEntry``) and binaries (``ComputedStructureEntry``).

    Each is labelled ``run_type="CHGNet"`` with its model version. Only entries of CHGNet model
    ``version`` (default: the one this process runs) are returned — another model's energies are
    on another scale — so the list is empty when the shipped set was made with another model.
    ``elements``: only entries whose elements all lie within these. Copies: callers may modify them.
    """
    version = version or model_version()
    allowed = None if elements is None else set(elements)
    out = []
    for entry in _shipped_competing_phases()[1]:
        if entry.parameters.get("model_version") != version:
            continue
        if allowed is not None and not {el.symbol for el in entry.composition.elements} <= allowed:
            continue
        out.append(copy.deepcopy(entry))
    return out
