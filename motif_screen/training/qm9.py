"""QM9 (130,831 small organic molecules) from the ``qm9pack`` wheel, as pymatgen Molecules.

Why not ``import qm9pack``: its ``__init__`` imports ``pkg_resources`` (gone from recent
setuptools), so we only locate its ``data/qm9_part{1,2,3}.csv`` and read them with pandas.

Parsing 130k coordinate strings takes tens of seconds, so the parsed arrays are cached once as an
``.npz`` under ``~/.cache/motif_screen`` (``$XDG_CACHE_HOME`` respected); the cache name carries
the sizes of the CSV files, so a different qm9pack version gets a fresh cache.

Units: the CSV stores energies (HOMO, LUMO, gap, ZPVE, U0, U, H, G) in hartree; we return them in
eV. Dipole is in debye, polarizability in bohr³, ⟨R²⟩ in bohr², Cv in cal/(mol K), unchanged.
"""

from __future__ import annotations

import importlib.util
import os
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from pymatgen.core import Molecule

from motif_screen.errors import ConfigError, InputError

HARTREE_TO_EV = 27.211386245988  # CODATA 2018

CSV_PARTS = ("qm9_part1.csv", "qm9_part2.csv", "qm9_part3.csv")
ELEMENT_SYMBOLS = ("H", "C", "N", "O", "F")  # every element QM9 contains
_SYMBOL_TO_Z = {"H": 1, "C": 6, "N": 7, "O": 8, "F": 9}


@dataclass(frozen=True)
class Qm9Target:
    column: str  # column in the qm9pack CSV
    factor: float  # multiply the file value by this to get `unit`
    unit: str


# The 12 standard QM9 targets under their usual short names (as in the QM9 paper / PyG).
QM9_TARGETS: dict[str, Qm9Target] = {
    "mu": Qm9Target("Dipole_debye", 1.0, "D"),
    "alpha": Qm9Target("Polarizability_bohr3", 1.0, "bohr^3"),
    "homo": Qm9Target("HOMO_au", HARTREE_TO_EV, "eV"),
    "lumo": Qm9Target("LUMO_au", HARTREE_TO_EV, "eV"),
    "gap": Qm9Target("HOMO_LUMO_gap_au", HARTREE_TO_EV, "eV"),
    "r2": Qm9Target("R2_bohr2", 1.0, "bohr^2"),
    "zpve": Qm9Target("ZPVE_au", HARTREE_TO_EV, "eV"),
    "u0": Qm9Target("InternalEnergy_0K_au", HARTREE_TO_EV, "eV"),
    "u298": Qm9Target("InternalEnergy_298K_au", HARTREE_TO_EV, "eV"),
    "h298": Qm9Target("Enthalphy_298K_au", HARTREE_TO_EV, "eV"),
    "g298": Qm9Target("GibbsFreeEnergy_298K_au", HARTREE_TO_EV, "eV"),
    "cv": Qm9Target("Heatcapacity_Cv_cal_mol_K", 1.0, "cal/(mol K)"),
}

_CACHE_FORMAT = 1


def qm9_data_dir() -> Path:
    """The ``data`` folder of the installed qm9pack wheel, without importing the package."""
    spec = importlib.util.find_spec("qm9pack")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError("QM9 needs the qm9pack package: install the qm9 extra (pip install 'motif_screen[qm9]').")
    for location in spec.submodule_search_locations:
        data = Path(location) / "data"
        if all((data / part).is_file() for part in CSV_PARTS):
            return data
    raise ConfigError(
        "qm9pack is installed but its data/qm9_part{1,2,3}.csv files are missing: reinstall the qm9 extra."
    )


def _cache_dir() -> Path:
    root = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(root) / "motif_screen"


def _cache_path(data_dir: Path) -> Path:
    sizes = "-".join(str((data_dir / part).stat().st_size) for part in CSV_PARTS)
    return _cache_dir() / f"qm9_v{_CACHE_FORMAT}_{sizes}.npz"


def _parse_number_lists(cells: Iterable[str]) -> np.ndarray:
    """Flatten strings like ``"[[1.,2.,3.],[4.,5.,6.]]"`` into one float array (one C-level parse)."""
    joined = ",".join(cells).replace("[", "").replace("]", "")
    return np.array(joined.split(","), dtype=np.float64)


def _parse_csvs(data_dir: Path) -> dict[str, np.ndarray]:
    columns = ["Index", "N_atoms", "Elements", "XYZ_Ang"] + [t.column for t in QM9_TARGETS.values()]
    frames = [pd.read_csv(data_dir / part, usecols=columns) for part in CSV_PARTS]
    frame = pd.concat(frames, ignore_index=True)
    n_atoms = frame["N_atoms"].to_numpy(dtype=np.int64)

    symbols = ",".join(frame["Elements"]).replace("[", "").replace("]", "").replace("'", "").split(",")
    numbers = np.array([_SYMBOL_TO_Z[s.strip()] for s in symbols], dtype=np.int8)
    coords = _parse_number_lists(frame["XYZ_Ang"])
    if numbers.size != n_atoms.sum() or coords.size != 3 * n_atoms.sum():
        raise ConfigError(f"qm9pack CSV files in {data_dir} are inconsistent (atom counts disagree).")

    arrays = {
        "index": frame["Index"].to_numpy(dtype=np.int64),
        "n_atoms": n_atoms,
        "atomic_numbers": numbers,
        "positions": coords.reshape(-1, 3),
    }
    for name, target in QM9_TARGETS.items():
        arrays[f"target_{name}"] = frame[target.column].to_numpy(dtype=np.float64) * target.factor
    return arrays


def load_qm9_arrays() -> dict[str, np.ndarray]:
    """All of QM9 as flat arrays (parsed once, then read from the cache in well under a second).

    Keys: ``index`` (QM9 id), ``n_atoms``, ``offsets`` (start of each molecule in the flat arrays),
    ``atomic_numbers``, ``positions`` (Å), and ``target_<name>`` for every name in QM9_TARGETS.
    """
    data_dir = qm9_data_dir()
    cache = _cache_path(data_dir)
    if cache.is_file():
        with np.load(cache) as stored:
            arrays = {key: stored[key] for key in stored.files}
    else:
        arrays = _parse_csvs(data_dir)
        cache.parent.mkdir(parents=True, exist_ok=True)
        # write-then-rename: several processes may build the cache at once.
        with tempfile.NamedTemporaryFile(dir=cache.parent, suffix=".npz", delete=False) as handle:
            np.savez(handle, allow_pickle=False, **arrays)  # numeric arrays; np.load reads them without pickles
        os.replace(handle.name, cache)
    arrays["offsets"] = np.concatenate([[0], np.cumsum(arrays["n_atoms"])[:-1]])
    return arrays


def _select(
    n_atoms: np.ndarray,
    n: int | None,
    min_atoms: int | None,
    max_atoms: int | None,
    atom_counts: Iterable[int] | None,
    seed: int,
    order: str = "random",
) -> np.ndarray:
    keep = np.ones(n_atoms.shape, dtype=bool)
    if min_atoms is not None:
        keep &= n_atoms >= min_atoms
    if max_atoms is not None:
        keep &= n_atoms <= max_atoms
    if atom_counts is not None:
        keep &= np.isin(n_atoms, np.fromiter(atom_counts, dtype=np.int64))
    chosen = np.flatnonzero(keep)
    if n is not None:
        if n < 0:
            raise InputError(f"load_qm9: n must be >= 0, got {n}.")
        if n < chosen.size and order == "first":
            chosen = chosen[:n]
        elif n < chosen.size:
            chosen = np.sort(np.random.default_rng(seed).choice(chosen, size=n, replace=False))
    return chosen


def load_qm9(
    n: int | None = None,
    min_atoms: int | None = None,
    max_atoms: int | None = None,
    atom_counts: Iterable[int] | None = None,
    seed: int = 0,
    targets: Sequence[str] = ("gap",),
    exclude: Iterable[int] | None = None,
    order: str = "random",
):
    """QM9 molecules (pymatgen ``Molecule``) and their targets, optionally filtered and subsampled.

    ``min_atoms``/``max_atoms``/``atom_counts`` filter by number of atoms (hydrogens included);
    ``n`` draws that many molecules at random (``seed``) from what passes the filter — all of them
    when fewer exist, so callers should check ``len``; ``order="first"`` takes the first ``n`` in
    database order instead (the TFN missing-atom training set). ``exclude`` lists QM9 indices to leave out
    (to keep train and test sets disjoint). Targets are in the units of QM9_TARGETS (energies in
    eV). Each molecule carries ``properties["qm9_index"]``.

    Returns ``(molecules, {target: np.ndarray})`` in QM9 order.
    """
    unknown = [t for t in targets if t not in QM9_TARGETS]
    if unknown:
        raise InputError(f"Unknown QM9 target(s) {unknown}; choose from {sorted(QM9_TARGETS)}.")
    if order not in ("random", "first"):
        raise InputError(f"load_qm9: order must be 'random' or 'first', got {order!r}.")
    arrays = load_qm9_arrays()
    n_atoms = arrays["n_atoms"]
    if exclude is not None:
        excluded = np.isin(arrays["index"], np.fromiter(exclude, dtype=np.int64))
        n_atoms = np.where(excluded, -1, n_atoms)  # -1 never passes an atom-count filter
        if min_atoms is None and max_atoms is None and atom_counts is None:
            min_atoms = 1
    chosen = _select(n_atoms, n, min_atoms, max_atoms, atom_counts, seed, order)

    molecules = []
    for row in chosen:
        start, count = arrays["offsets"][row], arrays["n_atoms"][row]
        molecule = Molecule(
            arrays["atomic_numbers"][start : start + count].astype(int).tolist(),
            arrays["positions"][start : start + count],
        )
        molecule.properties["qm9_index"] = int(arrays["index"][row])
        molecules.append(molecule)
    values = {name: arrays[f"target_{name}"][chosen].copy() for name in targets}
    return molecules, values


def count_by_atoms(atom_counts: Iterable[int]) -> int:
    """How many QM9 molecules have one of these atom counts (to report 'all that exist')."""
    n_atoms = load_qm9_arrays()["n_atoms"]
    return int(np.isin(n_atoms, np.fromiter(atom_counts, dtype=np.int64)).sum())
